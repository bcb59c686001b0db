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

Resources are served as stored; they are validated against the R4B models once, in the tests,
not at runtime.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from ehr_sandbox import data
from ehr_sandbox.state import SandboxState
from ehr_sandbox.tokens import TokenInfo

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
_SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_SEARCH_PARAMS = frozenset({"identifier", "_format"})
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
        return _fhir(read({data.PRACTITIONER["id"]: data.PRACTITIONER}, "Practitioner", rid))

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
                ],
            }
        ],
    }
