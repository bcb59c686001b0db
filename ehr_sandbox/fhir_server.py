"""A small, faithful FHIR R4 (4.0.1) resource server for the sandbox, under ``/fhir``.

It serves the synthetic resources in ``SandboxState`` and behaves like a SMART EHR where it
matters to capture, so the client is tested against the answers a real EHR gives:

* JSON only, ``Content-Type: application/fhir+json`` (FHIR R4 http.html#mime-type).
* ``GET /fhir/metadata``: a CapabilityStatement (R4 capabilitystatement.html) advertising the
  interactions below and the SMART ``oauth-uris`` security extension (SMART App Launch 2,
  conformance; STANDARDS.md section 4). ``/fhir/.well-known/smart-configuration`` is served by
  the auth module, not here.
* read: ``GET /fhir/Patient/{id}``, ``/fhir/Encounter/{id}``, ``/fhir/Practitioner/{id}``
  (R4 http.html#read); unknown id -> 404 with an OperationOutcome.
* search-type: ``GET /fhir/Patient?identifier=[system]|[value]`` (R4 search.html#token) ->
  a ``searchset`` Bundle (R4 bundle.html). Supports ``system|value``, ``value`` (any system),
  ``system|`` (any value in that system), ``|value`` (no system) and comma-separated ORs.
  Unknown parameters are refused with 400 instead of ignored (R4 search.html#errors allows
  either); a server that silently ignores ``identifier`` would return *every* patient, which
  is exactly the failure the client must survive, but the sandbox should make mistakes loud.
* Authorization (RFC 6750, SMART App Launch 2 scopes-and-launch-context): every request but
  ``metadata`` (public, as FHIR R4 http.html#capabilities and SMART discovery expect) needs
  ``Authorization: Bearer <token>`` known to ``state.tokens`` and not expired, else 401 with
  ``WWW-Authenticate: Bearer`` and an OperationOutcome. Scopes are ``patient|user|system/
  <Type|*>.<cruds>`` (v2) or ``.read|.write|.*`` (v1). ``patient/`` scopes confine access to
  the token's patient compartment (the Patient itself; Encounters whose subject is that
  patient); other patients answer 403. ``user/`` and ``system/`` scopes reach any record.
  Granular scopes (``...?param=value``) are not granted here: refusing is the safe reading.

* create (R4 http.html#create, 3.1.0.8.1 conditional create): ``POST /fhir/Media`` and
  ``/fhir/DocumentReference`` (and ``/fhir/Observation``, a measured wound) with
  ``If-None-Exist: identifier=system|value``: no match -> stored,
  201 with ``Location``; one match -> 200 with the existing resource; several -> 412. Bodies are
  validated with the ``fhir.resources`` R4B models (400 OperationOutcome otherwise). Needs a
  ``c`` permission (``system/Media.c``, ``.cu``, v1 ``.write``; or ``user/`` / ``patient/``,
  the latter only for the token's patient). Then read ``GET /fhir/Media/{id}`` and search
  ``GET /fhir/Media?identifier=...&patient=...`` (same for DocumentReference). Test knobs in
  ``state.extra``: ``fhir_posts`` (POST counts per type), ``fhir_created`` (the stored
  resources), ``fhir_write_fault`` ((status, text): answer every POST so, as an
  OperationOutcome). ``enable_writes(state)`` advertises them in the CapabilityStatement
  (``create`` + ``conditionalCreate: true``; ``conditional=False`` for a server without it);
  off by default, so the statement existing clients see is unchanged.

Read-only resources are served as stored; they are validated against the R4B models once, in
the tests, not at runtime.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from ehr_sandbox import data
from ehr_sandbox.state import SandboxState
from ehr_sandbox.tokens import TokenInfo

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
_SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_SEARCH_PARAMS = frozenset({"identifier", "_format"})
WRITABLE_TYPES = ("Media", "DocumentReference", "Observation")
_WRITE_SEARCH_PARAMS = frozenset({"identifier", "patient", "_format"})
#: R4B models used to validate what clients POST (these three are as in R4).
_R4B_MODELS: dict[str, Any] = {
    "Media": Media,
    "DocumentReference": DocumentReference,
    "Observation": Observation,  # the WoundSize panel of a measured wound (issue 16)
}
#: Conditional create must check-and-insert atomically (R4 http.html 3.1.0.8.1).
_WRITE_LOCK = threading.Lock()
#: v1 scope suffixes and their v2 equivalents (SMART App Launch 2, scopes-and-launch-context).
_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}


class FhirProblem(Exception):
    """An answer other than 200: status, OperationOutcome code and text, extra headers."""

    def __init__(
        self, status: int, code: str, text: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text
        self.headers = headers or {}


def operation_outcome(code: str, text: str, severity: str = "error") -> dict[str, Any]:
    """An OperationOutcome with one issue (R4 operationoutcome.html; codes: issue-type)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


def _fhir(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


class _FhirRoute(APIRoute):
    """Renders ``FhirProblem`` as an OperationOutcome.

    A router cannot register exception handlers on the app (``ehr_sandbox.app`` owns that),
    so the conversion happens per route.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except FhirProblem as exc:
                return _fhir(operation_outcome(exc.code, exc.text), exc.status, exc.headers)

        return handle


# --- scopes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """One SMART resource scope: level (patient/user/system), resource type, permissions."""

    level: str
    resource: str
    permissions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """Parse ``level/Type.perms``; None for non-resource or granular scopes."""
        if "/" not in text or "?" in text:
            return None
        level, _, rest = text.partition("/")
        resource, dot, perms = rest.rpartition(".")
        if level not in {"patient", "user", "system"} or not dot or not resource:
            return None
        perms = _V1_PERMISSIONS.get(perms, perms)
        if not perms or any(c not in "cruds" for c in perms):
            return None
        return cls(level, resource, frozenset(perms))

    def grants(self, resource: str, permission: str) -> bool:
        return self.resource in {resource, "*"} and permission in self.permissions


def _levels(token: TokenInfo, resource: str, permission: str) -> set[str]:
    """The scope levels under which the token may do ``permission`` on ``resource``."""
    scopes = (Scope.parse(s) for s in token.scopes)
    return {s.level for s in scopes if s is not None and s.grants(resource, permission)}


# --- the router ------------------------------------------------------------------------------


def router(state: SandboxState) -> APIRouter:
    """The FHIR endpoints, bound to one sandbox's state."""
    api = APIRouter(prefix="/fhir", tags=["FHIR R4"], route_class=_FhirRoute)
    if "fhir_writable" not in state.extra:  # like an EHR that takes photos into the chart
        enable_writes(state)

    def authenticate(request: Request) -> TokenInfo:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise FhirProblem(
                401,
                "login",
                "an access token is required",
                {"WWW-Authenticate": 'Bearer realm="fhir"'},
            )
        info = state.tokens.lookup(token.strip())
        if info is None:
            raise FhirProblem(
                401,
                "login",
                "the access token is invalid or expired",
                {"WWW-Authenticate": 'Bearer realm="fhir", error="invalid_token"'},
            )
        return info

    def authorize(token: TokenInfo, resource: str, permission: str) -> set[str]:
        levels = _levels(token, resource, permission)
        if not levels:
            verb = "search" if permission == "s" else "read"
            raise FhirProblem(
                403,
                "forbidden",
                f"the token's scopes do not allow {verb} of {resource}",
                {"WWW-Authenticate": 'Bearer realm="fhir", error="insufficient_scope"'},
            )
        if levels == {"patient"} and not token.patient:
            raise FhirProblem(403, "forbidden", "patient scopes were granted without a patient")
        return levels

    def in_compartment(token: TokenInfo, levels: set[str], patient_id: str | None) -> bool:
        """user/system scopes reach every record; patient scopes only the token's patient."""
        return bool(levels - {"patient"}) or (
            patient_id is not None and patient_id == token.patient
        )

    def read(store: dict[str, dict[str, Any]], resource: str, rid: str) -> dict[str, Any]:
        found = store.get(rid)
        if found is None:
            raise FhirProblem(404, "not-found", f"{resource}/{rid} is not known")
        return copy.deepcopy(found)

    @api.get("/metadata")
    def metadata() -> JSONResponse:
        """The CapabilityStatement; public, as FHIR and SMART expect (no token needed)."""
        return _fhir(capability_statement(state))

    @api.get("/Patient/{rid}")
    def read_patient(rid: str, request: Request) -> JSONResponse:
        token = authenticate(request)
        levels = authorize(token, "Patient", "r")
        resource = read(state.patients, "Patient", rid)
        if not in_compartment(token, levels, rid):
            raise FhirProblem(403, "forbidden", f"the token does not allow reading Patient/{rid}")
        return _fhir(resource)

    @api.get("/Encounter/{rid}")
    def read_encounter(rid: str, request: Request) -> JSONResponse:
        token = authenticate(request)
        levels = authorize(token, "Encounter", "r")
        resource = read(state.encounters, "Encounter", rid)
        subject = str(resource.get("subject", {}).get("reference", ""))
        patient = subject.removeprefix("Patient/") if subject.startswith("Patient/") else None
        if not in_compartment(token, levels, patient):
            raise FhirProblem(403, "forbidden", f"the token does not allow reading Encounter/{rid}")
        return _fhir(resource)

    @api.get("/Practitioner/{rid}")
    def read_practitioner(rid: str, request: Request) -> JSONResponse:
        """Practitioners are not patient data: any Practitioner read scope, or the fhirUser."""
        token = authenticate(request)
        if token.fhir_user not in {f"Practitioner/{rid}", f"{state.fhir_base}/Practitioner/{rid}"}:
            authorize(token, "Practitioner", "r")
        return _fhir(read(data.PRACTITIONERS, "Practitioner", rid))

    @api.get("/Patient")
    def search_patient(request: Request) -> JSONResponse:
        token = authenticate(request)
        levels = authorize(token, "Patient", "s")
        unknown = sorted(set(request.query_params) - _SEARCH_PARAMS)
        if unknown:
            raise FhirProblem(400, "not-supported", f"unsupported search parameter {unknown[0]}")
        wanted = [_token_terms(v) for v in request.query_params.getlist("identifier")]
        matches = [
            copy.deepcopy(p)
            for pid, p in sorted(state.patients.items())
            if in_compartment(token, levels, pid)
            and all(any(_has_identifier(p, s, v) for s, v in terms) for terms in wanted)
        ]
        return _fhir(_searchset(state, "Patient", matches, str(request.url)))

    # --- writes: conditional create of Media / DocumentReference ------------------------------

    def created(resource_type: str) -> dict[str, dict[str, Any]]:
        store: dict[str, dict[str, dict[str, Any]]] = state.extra.setdefault("fhir_created", {})
        return store.setdefault(resource_type, {})

    def subject_patient(resource: dict[str, Any]) -> str | None:
        ref = str((resource.get("subject") or {}).get("reference", ""))
        return ref.removeprefix("Patient/") if ref.startswith("Patient/") else None

    async def conditional_create(resource_type: str, request: Request) -> JSONResponse:
        """R4 http.html#create and 3.1.0.8.1 conditional create (If-None-Exist)."""
        counts: dict[str, int] = state.extra.setdefault("fhir_posts", {})
        with _WRITE_LOCK:
            counts[resource_type] = counts.get(resource_type, 0) + 1
        token = authenticate(request)
        levels = _levels(token, resource_type, "c")
        if not levels:
            raise FhirProblem(
                403,
                "forbidden",
                f"the token's scopes do not allow create of {resource_type}",
                {"WWW-Authenticate": 'Bearer realm="fhir", error="insufficient_scope"'},
            )
        fault = state.extra.get("fhir_write_fault")
        if fault:
            status, text = fault
            raise FhirProblem(int(status), "processing" if status >= 500 else "invalid", text)
        try:
            body = await request.json()
        except ValueError as exc:
            raise FhirProblem(400, "structure", "the body is not JSON") from exc
        if not isinstance(body, dict) or body.get("resourceType") != resource_type:
            raise FhirProblem(400, "invalid", f"the body is not a {resource_type}")
        body.pop("id", None)
        try:
            _R4B_MODELS[resource_type].model_validate(body)
        except ValidationError as exc:
            raise FhirProblem(400, "invalid", f"{resource_type} is invalid: {exc}") from exc
        if not in_compartment(token, levels, subject_patient(body)):
            raise FhirProblem(403, "forbidden", "the token does not allow writing for this patient")
        condition = request.headers.get("if-none-exist")
        with _WRITE_LOCK:
            existing = created(resource_type)
            if condition:
                wanted = _condition_terms(condition)
                matches = [
                    r
                    for r in existing.values()
                    if all(any(_has_identifier(r, s, v) for s, v in t) for t in wanted)
                ]
                if len(matches) > 1:
                    raise FhirProblem(
                        412, "duplicate", f"{len(matches)} {resource_type} resources match"
                    )
                if matches:
                    return _fhir(copy.deepcopy(matches[0]), 200)
            rid = secrets.token_hex(8)
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            meta = dict(body.get("meta") or {})
            meta.update({"versionId": "1", "lastUpdated": now})
            stored = {"resourceType": resource_type, "id": rid, **body, "meta": meta}
            existing[rid] = stored
        location = f"{state.fhir_base}/{resource_type}/{rid}/_history/1"
        return _fhir(copy.deepcopy(stored), 201, {"Location": location, "ETag": 'W/"1"'})

    def search_created(resource_type: str, request: Request) -> JSONResponse:
        token = authenticate(request)
        levels = authorize(token, resource_type, "s")
        unknown = sorted(set(request.query_params) - _WRITE_SEARCH_PARAMS)
        if unknown:
            raise FhirProblem(400, "not-supported", f"unsupported search parameter {unknown[0]}")
        wanted = [_token_terms(v) for v in request.query_params.getlist("identifier")]
        patients = {p.removeprefix("Patient/") for p in request.query_params.getlist("patient")}
        with _WRITE_LOCK:
            candidates = [copy.deepcopy(r) for r in created(resource_type).values()]
        matches = [
            r
            for r in candidates
            if in_compartment(token, levels, subject_patient(r))
            and all(any(_has_identifier(r, s, v) for s, v in t) for t in wanted)
            and (not patients or subject_patient(r) in patients)
        ]
        return _fhir(_searchset(state, resource_type, matches, str(request.url)))

    def read_created(resource_type: str, rid: str, request: Request) -> JSONResponse:
        token = authenticate(request)
        levels = authorize(token, resource_type, "r")
        with _WRITE_LOCK:
            resource = read(created(resource_type), resource_type, rid)
        if not in_compartment(token, levels, subject_patient(resource)):
            raise FhirProblem(403, "forbidden", f"the token does not allow reading {resource_type}")
        return _fhir(resource)

    async def update(resource_type: str, rid: str, request: Request) -> JSONResponse:
        """R4 http.html#update of a resource created here (the id must exist: no upsert)."""
        counts: dict[str, int] = state.extra.setdefault("fhir_puts", {})
        with _WRITE_LOCK:
            counts[resource_type] = counts.get(resource_type, 0) + 1
        token = authenticate(request)
        levels = _levels(token, resource_type, "u")
        if not levels:
            raise FhirProblem(
                403, "forbidden", f"the token's scopes do not allow update of {resource_type}"
            )
        fault = state.extra.get("fhir_write_fault")
        if fault:
            status, text = fault
            raise FhirProblem(int(status), "processing" if status >= 500 else "invalid", text)
        try:
            body = await request.json()
        except ValueError as exc:
            raise FhirProblem(400, "structure", "the body is not JSON") from exc
        if not isinstance(body, dict) or body.get("resourceType") != resource_type:
            raise FhirProblem(400, "invalid", f"the body is not a {resource_type}")
        if body.get("id") != rid:
            raise FhirProblem(400, "invalid", "the body's id is not the URL's id")
        try:
            _R4B_MODELS[resource_type].model_validate(body)
        except ValidationError as exc:
            raise FhirProblem(400, "invalid", f"{resource_type} is invalid: {exc}") from exc
        with _WRITE_LOCK:
            existing = created(resource_type)
            old = read(existing, resource_type, rid)
            if not in_compartment(token, levels, subject_patient(old)) or not in_compartment(
                token, levels, subject_patient(body)
            ):
                raise FhirProblem(
                    403, "forbidden", "the token does not allow writing for this patient"
                )
            version = str(int((old.get("meta") or {}).get("versionId", "1")) + 1)
            meta = dict(body.get("meta") or {})
            meta.update(
                {
                    "versionId": version,
                    "lastUpdated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                }
            )
            stored = {**body, "meta": meta}
            existing[rid] = stored
        return _fhir(copy.deepcopy(stored), 200, {"ETag": f'W/"{version}"'})

    @api.put("/Media/{rid}")
    async def update_media(rid: str, request: Request) -> JSONResponse:
        return await update("Media", rid, request)

    @api.put("/DocumentReference/{rid}")
    async def update_document_reference(rid: str, request: Request) -> JSONResponse:
        return await update("DocumentReference", rid, request)

    @api.post("/Media")
    async def create_media(request: Request) -> JSONResponse:
        return await conditional_create("Media", request)

    @api.post("/DocumentReference")
    async def create_document_reference(request: Request) -> JSONResponse:
        return await conditional_create("DocumentReference", request)

    @api.post("/Observation")
    async def create_observation(request: Request) -> JSONResponse:
        return await conditional_create("Observation", request)

    @api.get("/Observation")
    def search_observation(request: Request) -> JSONResponse:
        return search_created("Observation", request)

    @api.get("/Observation/{rid}")
    def read_observation(rid: str, request: Request) -> JSONResponse:
        return read_created("Observation", rid, request)

    @api.get("/Media")
    def search_media(request: Request) -> JSONResponse:
        return search_created("Media", request)

    @api.get("/DocumentReference")
    def search_document_reference(request: Request) -> JSONResponse:
        return search_created("DocumentReference", request)

    @api.get("/Media/{rid}")
    def read_media(rid: str, request: Request) -> JSONResponse:
        return read_created("Media", rid, request)

    @api.get("/DocumentReference/{rid}")
    def read_document_reference(rid: str, request: Request) -> JSONResponse:
        return read_created("DocumentReference", rid, request)

    return api


# --- search helpers --------------------------------------------------------------------------


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash; unescape ``\\, \\| \\$ \\\\``.

    R4 search.html#escaping: ``,``, ``|``, ``$`` and ``\\`` in values are backslash-escaped.
    """
    parts, current, chars = [], [], iter(text)
    for ch in chars:
        if ch == "\\":
            current.append(ch)
            current.append(next(chars, ""))
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for ch in chars:
        out.append(next(chars, "") if ch == "\\" else ch)
    return "".join(out)


def _token_terms(param: str) -> list[tuple[str | None, str | None]]:
    """``identifier`` values as (system, value); None = any. ``|v``: system must be absent."""
    terms: list[tuple[str | None, str | None]] = []
    for term in _split_unescaped(param, ","):
        pieces = _split_unescaped(term, "|")
        if len(pieces) == 1:
            terms.append((None, _unescape(pieces[0])))
        else:
            system, value = _unescape(pieces[0]), _unescape("|".join(pieces[1:]))
            terms.append((system, value or None))
    return terms


def _condition_terms(condition: str) -> list[list[tuple[str | None, str | None]]]:
    """``If-None-Exist`` is a search query string (R4 http.html 3.1.0.8.1); only identifier."""
    params = parse_qsl(condition, keep_blank_values=True)
    if not params:
        raise FhirProblem(400, "invalid", "If-None-Exist is empty")
    terms = []
    for name, value in params:
        if name != "identifier":
            raise FhirProblem(400, "not-supported", f"unsupported If-None-Exist parameter {name}")
        terms.append(_token_terms(value))
    return terms


def _has_identifier(resource: dict[str, Any], system: str | None, value: str | None) -> bool:
    for ident in resource.get("identifier", []):
        if value is not None and ident.get("value") != value:
            continue
        if system is None or (system == "" and "system" not in ident):
            return True
        if system and ident.get("system") == system:
            return True
    return False


def _searchset(
    state: SandboxState, resource: str, matches: list[dict[str, Any]], self_url: str
) -> dict[str, Any]:
    """A searchset Bundle with total and ``search.mode = match`` (R4 bundle.html, 3.1.1.5)."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "total": len(matches),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{state.fhir_base}/{resource}/{m['id']}",
                "resource": m,
                "search": {"mode": "match"},
            }
            for m in matches
        ],
    }


def capability_statement(state: SandboxState) -> dict[str, Any]:
    """What this server does (R4 capabilitystatement.html), with SMART's OAuth endpoints.

    The ``oauth-uris`` extension on ``rest.security`` is how SMART v1 clients discovered the
    endpoints; SMART 2 prefers ``.well-known/smart-configuration`` but keeps this for old
    clients (SMART App Launch 2, conformance.html).
    """
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "publisher": "capture EHR sandbox (synthetic data only)",
        "kind": "instance",
        "software": {"name": "capture ehr_sandbox"},
        "implementation": {"description": "capture EHR sandbox", "url": state.fhir_base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": _SMART_OAUTH_URIS,
                            "extension": [
                                {
                                    "url": "authorize",
                                    "valueUri": f"{state.base_url}/auth/authorize",
                                },
                                {"url": "token", "valueUri": f"{state.base_url}/auth/token"},
                            ],
                        }
                    ],
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "identifier",
                                "definition": "http://hl7.org/fhir/SearchParameter/"
                                "Patient-identifier",
                                "type": "token",
                            }
                        ],
                    },
                    {"type": "Encounter", "interaction": [{"code": "read"}]},
                    {"type": "Practitioner", "interaction": [{"code": "read"}]},
                    *_writable_resources(state),
                ],
            }
        ],
    }


def enable_writes(
    state: SandboxState,
    types: tuple[str, ...] = WRITABLE_TYPES,
    *,
    conditional: bool = True,
) -> None:
    """Advertise create (+ ``conditionalCreate``) of ``types`` in the CapabilityStatement.

    The sandbox advertises Media and DocumentReference with conditional create by default;
    tests call this to advertise less (e.g. no conditional create). The POST endpoints answer
    either way: a client that honours the CapabilityStatement, as capture's notifier does,
    will not use what is not advertised.
    """
    writable: dict[str, bool] = state.extra.setdefault("fhir_writable", {})
    for resource_type in types:
        writable[resource_type] = conditional


def _writable_resources(state: SandboxState) -> list[dict[str, Any]]:
    """Writable types: create with conditionalCreate (R4 capabilitystatement.html)."""
    writable: dict[str, bool] = state.extra.get("fhir_writable", {})
    return [
        {
            "type": resource_type,
            "interaction": [
                {"code": "create"},
                {"code": "read"},
                {"code": "update"},
                {"code": "search-type"},
            ],
            "conditionalCreate": conditional,
            "searchParam": [
                {
                    "name": "identifier",
                    "definition": f"http://hl7.org/fhir/SearchParameter/{resource_type}-identifier",
                    "type": "token",
                },
                {
                    "name": "patient",
                    "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
                    "type": "reference",
                },
            ],
        }
        for resource_type, conditional in sorted(writable.items())
    ]
