"""Record every PHI request in the audit trail, centrally, after its response has been sent.

A pure ASGI middleware (outermost, so a 401/403/413/429 from the security layers is recorded
too). For an audited request (``capture_api.audit.audited_routes``) it notes, while the
request runs, only what costs nothing: status, a JSON answer's ids (bodies up to 64 KiB),
Set-Cookie. Once the last byte of the response is out, it writes one row in a worker thread:

* action (named by the route), BALP action (by method), outcome (2xx/3xx success, 4xx minor
  failure 4, 5xx serious failure 8), the route template and status;
* actor: the session's fhirUser (EHR mode), ``integration`` (no EHR registered: the trusted
  integration caller), or nobody (a request without a session in EHR mode);
* the patient (MRN and issuer) from the context the request concerned: the path's
  ``context_id``, the capture's context, the ``context_id`` query parameter, or the ids in
  the JSON answer (a new context or capture); for sign-in, the session's own context;
* client address, a hash of the user agent, and the X-Request-Id (taken from the request
  when it sends a sane one, else made; returned in the response so a complaint can be traced;
  the domain events the request records carry it too, ``trail.REQUEST_ID``).

A request refused before routing (CSRF guard, rate limit, body size) is matched to its route
here, so its row still names the route, the context, the photo and the patient it aimed at.
A route that shows several patients (the worklist) names them (``shown_patients``): the
request is then one row per patient, so an export for any of them finds it.
The session is read from the Cookie header the one way the app reads it
(``capture_api.context.cookies.session_cookie``).

Uploads are not slowed: the row is written after the 202 has been sent, and the photo body
is never looked at. A failed write is logged without PHI and counted (``trail.failed_writes``);
the request has already succeeded by then.

Status reads (a capture's or a context's captures' status, the event stream) are folded:
one row per reader, photo and ``CAPTURE_AUDIT_READ_WINDOW_SECONDS`` window, not one commit
per poll (``capture_api.audit.read_window`` says why that still shows who saw what).

The middleware also starts and stops syslog forwarding with the app (lifespan).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capture_api.audit import chain, forwarding, trail
from capture_api.audit.audited_routes import UNMATCHED, action_for, is_audited, route_template
from capture_api.audit.events import Outcome
from capture_api.audit.fhir_audit import INTEGRATION_ACTOR
from capture_api.audit.read_window import ReadWindow
from capture_api.audit.subjects import Subject, subject_of
from capture_api.config import Settings
from capture_api.context.cookies import SESSION_COOKIE, session_cookie
from capture_api.context.sessions import session_id
from capture_api.store import sessions as session_rows
from capture_api.store.db import Database
from capture_api.store.records import AuditEventRecord, UserSession

log = logging.getLogger("capture.audit")

JSON_LIMIT = 64 * 1024
WRITER_THREADS = 4
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ID_FIELDS = ("context_id", "capture_id", "sop_instance_uid")
_SESSION_CONTEXT_ACTIONS = ("login", "logout", "session")
#: Where a route lists the patients it showed (``shown_patients``), in ``request.state``.
_SHOWN = "audit_patients"


def shown_patients(request: Request, patients: list[tuple[str, str | None]]) -> None:
    """Say which patients (MRN, issuer) this request showed: one audit row each."""
    request.state.audit_patients = list(dict.fromkeys(patients))


@dataclass
class _Exchange:
    """What one request and its response told us (no bodies kept but small JSON answers)."""

    method: str
    request_id: str
    client_ip: str | None
    user_agent_hash: str | None
    cookie_session: str | None
    query: dict[str, list[str]]
    status: int | None = None
    set_cookie_session: str | None = None
    json_body: bytearray = field(default_factory=bytearray)
    json_ok: bool = False


class AuditMiddleware:
    """Audit every PHI request; forward the trail to syslog while the app runs."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.ehr_mode = bool(settings.ehrs)
        self._writers: anyio.CapacityLimiter | None = None  # made in the event loop
        self._reads = ReadWindow(settings.audit_read_window_seconds)
        forwarding.attach(settings)  # before the lifespan: the outbox may record at start-up
        chain.configure(settings)  # CAPTURE_AUDIT_CHAIN_KEY for this database's rows

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if scope["type"] != "http" or not is_audited(scope["path"], scope["method"]):
            await self.app(scope, receive, send)
            return
        exchange = _begin(scope)
        actor_before = None
        if scope["path"] == "/logout" and exchange.cookie_session:
            # the session row is gone once the request ran: read its user first
            actor_before = await anyio.to_thread.run_sync(
                _session_row, _engine(scope), exchange.cookie_session
            )

        async def observe(message: Message) -> None:
            _observe(exchange, message)
            await send(message)

        request_id = trail.REQUEST_ID.set(exchange.request_id)  # for the domain events
        try:
            try:
                await self.app(scope, receive, observe)
            except Exception:
                exchange.status = exchange.status or 500
                await self._record(scope, exchange, actor_before)
                raise
            await self._record(scope, exchange, actor_before)
        finally:
            trail.REQUEST_ID.reset(request_id)

    def _lifespan_send(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete" and not forwarding.is_attached(
                self.settings
            ):
                forwarding.attach(self.settings)  # a second lifespan of the same app
            if message["type"] == "lifespan.shutdown.complete":
                await anyio.to_thread.run_sync(forwarding.detach, self.settings)
            await send(message)

        return wrapped

    async def _record(
        self, scope: Scope, exchange: _Exchange, actor_before: UserSession | None
    ) -> None:
        engine = _engine(scope)
        if engine is None:
            return
        if self._writers is None:  # own limiter: audit writes take none of the routes' tokens
            self._writers = anyio.CapacityLimiter(WRITER_THREADS)
        try:
            await anyio.to_thread.run_sync(
                self._write, engine, scope, exchange, actor_before, limiter=self._writers
            )
        except Exception as exc:  # the response is out: never turn it into an error now
            log.error("audit event for a request not recorded (%s)", type(exc).__name__)

    def _write(
        self,
        engine: Database,
        scope: Scope,
        exchange: _Exchange,
        actor_before: UserSession | None,
    ) -> None:
        if "route" not in scope:  # refused before routing: find what it aimed at
            scope = _routed(scope)
        template = route_template(scope)
        action = action_for(template) if template else "api"
        sid = exchange.set_cookie_session or exchange.cookie_session
        user = actor_before or (_session_row(engine, sid) if sid else None)
        ids = _ids(scope, exchange)
        if not ids.get("context_id") and user and action in _SESSION_CONTEXT_ACTIONS:
            ids["context_id"] = user.context_id
        subject = _subject(engine, ids, exchange)
        status = exchange.status or 500
        values: dict[str, Any] = {
            "action": action,
            "outcome": _outcome(status).value,
            "actor": _actor(user, self.ehr_mode),
            "session_id": user.id if user else None,
            "patient": subject.patient,
            "patient_issuer": subject.patient_issuer,
            "context_id": subject.context_id,
            "capture_id": subject.capture_id,
            "sop_instance_uid": ids.get("sop_instance_uid") or subject.sop_instance_uid,
            "study_uid": subject.study_uid,
            "method": exchange.method,
            "route": template or UNMATCHED,
            "http_status": status,
            "client_ip": exchange.client_ip,
            "user_agent_hash": exchange.user_agent_hash,
            "request_id": exchange.request_id,
            "detail": _query_text(exchange) if action == "audit-export" else None,
        }
        if self._reads.folds(values):
            return  # the same reader read the same status within the window: one row says it
        shown = (scope.get("state") or {}).get(_SHOWN)
        if not shown:
            trail.append(engine, AuditEventRecord(**values))
            return
        for patient, issuer in shown:  # one row per patient the answer showed
            trail.append(
                engine,
                AuditEventRecord(**(values | {"patient": patient, "patient_issuer": issuer})),
            )


# --- while the request runs (no I/O) --------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _set_cookie(header: str) -> str | None:
    """The new session cookie a ``Set-Cookie`` header gives (None: another cookie, or the
    session cookie being cleared). Its first ``name=value`` pair is read like a request's."""
    first = header.split(";", 1)[0]
    name = first.split("=", 1)[0].strip()
    return session_cookie(first) if name == SESSION_COOKIE else None


def _begin(scope: Scope) -> _Exchange:
    request_id = _header(scope, b"x-request-id")
    if request_id is None or not _REQUEST_ID.match(request_id):
        request_id = uuid.uuid4().hex
    agent = _header(scope, b"user-agent")
    cookie = session_cookie(_header(scope, b"cookie"))  # read as the app reads it
    client = scope.get("client")
    query = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))
    return _Exchange(
        method=str(scope["method"]).upper(),
        request_id=request_id,
        client_ip=str(client[0])[:64] if client else None,
        user_agent_hash=hashlib.sha256(agent.encode()).hexdigest()[:16] if agent else None,
        cookie_session=session_id(cookie) if cookie else None,
        query=query,
    )


def _observe(exchange: _Exchange, message: Message) -> None:
    """Note the status, a new session cookie and a small JSON answer; tag the request id."""
    if message["type"] == "http.response.start":
        exchange.status = int(message["status"])
        headers = list(message.get("headers") or [])
        for name, value in headers:
            lowered = bytes(name).lower()
            if lowered == b"content-type":
                media = bytes(value).split(b";")[0].strip().lower()
                exchange.json_ok = media == b"application/json" and exchange.status < 300
            elif lowered == b"set-cookie":
                new = _set_cookie(bytes(value).decode("latin-1"))
                if new:
                    exchange.set_cookie_session = session_id(new)
        if not any(bytes(n).lower() == b"x-request-id" for n, _ in headers):
            headers.append((b"x-request-id", exchange.request_id.encode("ascii")))
            message["headers"] = headers
    elif message["type"] == "http.response.body" and exchange.json_ok:
        body = bytes(message.get("body", b""))
        if len(exchange.json_body) + len(body) > JSON_LIMIT:
            exchange.json_ok = False  # too large to be a single context or capture: skip
            exchange.json_body.clear()
        else:
            exchange.json_body += body


# --- after the response (in a worker thread) -----------------------------------------------------


def _routed(scope: Scope) -> Scope:
    """The scope as the router would have completed it (route, path parameters), or as is."""
    path, method = str(scope.get("path", "")), scope.get("method")
    for route in iter_route_contexts(getattr(scope.get("app"), "routes", ())):
        regex = getattr(route, "path_regex", None)
        found = regex.match(path) if regex is not None else None
        if found is None or (route.methods and method not in route.methods):
            continue
        convertors = getattr(route, "param_convertors", {})
        params = {
            name: convertors[name].convert(value) if name in convertors else value
            for name, value in found.groupdict().items()
        }
        return {**scope, "route": route, "path_params": params}
    return scope


def _engine(scope: Scope) -> Database | None:
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    engine = getattr(runtime, "engine", None)
    return engine if isinstance(engine, Database) else None


def _session_row(engine: Database | None, sid: str) -> UserSession | None:
    """The session (for its user), or None; never raises (the request must go on)."""
    if engine is None:
        return None
    try:
        return session_rows.get(engine, sid)
    except Exception as exc:
        log.error("audit: session not read (%s)", type(exc).__name__)
        return None


def _actor(user: UserSession | None, ehr_mode: bool) -> str | None:
    if user is not None:
        return user.fhir_user or f"session {user.id[:12]}"
    return None if ehr_mode else INTEGRATION_ACTOR


def _outcome(status: int) -> Outcome:
    if status >= 500:
        return Outcome.FAILED
    return Outcome.REFUSED if status >= 400 else Outcome.SUCCESS


def _ids(scope: Scope, exchange: _Exchange) -> dict[str, str | None]:
    """context/capture/SOP ids from the path, the query, else the JSON answer."""
    params = scope.get("path_params") or {}
    ids: dict[str, str | None] = {k: _text(params.get(k)) for k in _ID_FIELDS}
    if not ids["context_id"] and exchange.query.get("context_id"):
        ids["context_id"] = _text(exchange.query["context_id"][0][:64])
    answer = _json(exchange)
    for key in _ID_FIELDS:
        ids[key] = ids[key] or _text(answer.get(key))
    return ids


def _json(exchange: _Exchange) -> dict[str, Any]:
    if not exchange.json_ok or not exchange.json_body:
        return {}
    try:
        parsed = json.loads(bytes(exchange.json_body))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _text(value: object) -> str | None:
    """An id as the trail keeps it: text, no control characters (a database refuses NUL)."""
    if not isinstance(value, str | int):
        return None
    cleaned = "".join(c for c in str(value) if c.isprintable())[:128]
    return cleaned or None


def _subject(engine: Database, ids: dict[str, str | None], exchange: _Exchange) -> Subject:
    context_id, capture_id = ids.get("context_id"), ids.get("capture_id")
    if context_id or capture_id:
        return subject_of(engine, context_id=context_id, capture_id=capture_id)
    patient = _json(exchange).get("patient")
    if isinstance(patient, dict) and isinstance(patient.get("id"), str):
        return Subject(patient=patient["id"][:64])  # e.g. a worklist claim's answer
    return Subject()


def _query_text(exchange: _Exchange) -> str | None:
    """The export's filters, kept as the query of the audit-export event (A.5.3 Query)."""
    pairs = [f"{k}={v}" for k, values in sorted(exchange.query.items()) for v in values]
    return "&".join(pairs)[:1000] or None
