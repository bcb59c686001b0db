"""CSRF protection for requests that ride on the ``capture_session`` cookie.

The session cookie is sent by the browser whatever page started the request, so any
state-changing request (POST/PUT/PATCH/DELETE) that carries it must also prove it comes from
capture's own page (OWASP CSRF cheat sheet: "signed double-submit" variant, plus Fetch
Metadata and Origin checks as defence in depth):

* ``X-CSRF-Token`` must equal HMAC-SHA256(secret, session id). The page reads it from
  ``GET /api/v1/session`` (a same-origin read another site cannot make) and sends it as a
  header, which a cross-site form cannot set. Nothing is stored: the token follows from the
  session, and it dies with it.
* ``Sec-Fetch-Site`` other than ``same-origin``/``none`` and an ``Origin`` other than
  ``CAPTURE_PUBLIC_URL``'s are refused even with a token. This matters because SameSite=Lax
  does not stop a *same-site* attacker: another application on a sibling host name of the
  hospital's domain.

Requests without the cookie (integration mode, no EHR registered) carry no ambient
authority and are not checked. ``POST /logout`` is also accepted without the token when the
browser proves it is same-origin (``Origin`` or ``Sec-Fetch-Site``), so a plain
``<form method=post action=/logout>`` works and so does logging out of an expired session.

The HMAC key is ``CAPTURE_SECRET_KEY``; unset, a random key is made per process, which is
right for one process but makes tokens differ between replicas or uvicorn workers: every
multi-process deployment must set it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from capture_api.config import Settings
from capture_api.config.origins import origin_of
from capture_api.context.cookies import session_cookie
from capture_api.context.sessions import session_id

CSRF_HEADER = "X-CSRF-Token"
MISSING_OR_INVALID = "missing or invalid CSRF token: reload capture"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Fetch Metadata values of requests made by capture's own pages (or typed by the user).
_SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})
_LOGOUT = "/logout"

log = logging.getLogger("capture.security")

_process_key = secrets.token_bytes(32)


def signing_key(settings: Settings) -> bytes:
    """``CAPTURE_SECRET_KEY``, or this process's random key when it is unset."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return _process_key


def token_for_session(key: bytes, row_id: str) -> str:
    """The CSRF token of a session (by its row id = SHA-256 of the cookie)."""
    mac = hmac.new(key, f"capture-csrf-v1:{row_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def warn_if_key_is_ephemeral(settings: Settings) -> None:
    """One start-up line so an operator learns why tokens fail across replicas."""
    if settings.secret_key is None and settings.ehrs:
        log.warning(
            "CAPTURE_SECRET_KEY is not set: CSRF tokens use a random per-process key; "
            "set it (the same on every replica and worker) when running more than one process"
        )


class CsrfGuard:
    """Pure ASGI middleware: 403 for an unsafe cookie request that fails the checks above."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.key = signing_key(settings)
        self.own_origin = origin_of(settings.public_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            cookie = session_cookie(headers.get("cookie"))
            problem = self.problem(headers, cookie, scope["path"]) if cookie else None
            if problem is not None:
                await _forbidden(send, problem)
                return
        await self.app(scope, receive, send)

    def problem(self, headers: Headers, cookie: str, path: str) -> str | None:
        """Why this request is refused, or None when it may proceed."""
        fetch_site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        cross_site = (fetch_site is not None and fetch_site not in _SAME_ORIGIN_FETCH) or (
            origin is not None and origin.lower() != self.own_origin
        )
        if cross_site:
            return (
                f"cross-site request refused: capture accepts changes only from its own pages "
                f"at {self.own_origin} (reload capture)"
            )
        sent = headers.get(CSRF_HEADER, "")
        expected = token_for_session(self.key, session_id(cookie))
        if hmac.compare_digest(sent.encode(), expected.encode()):
            return None
        proven_same_origin = origin is not None or fetch_site == "same-origin"
        if path == _LOGOUT and proven_same_origin:
            return None
        return MISSING_OR_INVALID


async def _forbidden(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})
