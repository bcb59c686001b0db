"""A small SMART App Launch 2.2 authorization server for the sandbox.

Endpoints (http://hl7.org/fhir/smart-app-launch/STU2.2):

* ``GET /fhir/.well-known/smart-configuration`` -- discovery (conformance.html), always JSON.
* ``GET /`` -- the "EHR": today's encounters, each with a *Launch capture* button
  (``/ehr/launch/{encounter}`` makes a launch id and sends the browser to the app's launch URL
  with ``iss`` and ``launch``: app-launch.html "EHR Launch"). ``?user=prac-vera`` (links on the
  page) chooses who is signed in: Nurse Nina (default, clinician), Dr Vera Okafor
  (clinician + sensitive-viewer) or Otto Berg (auditor); without it the user is
  ``state.extra["sandbox_user"]`` (tests), else Nurse Nina.
* ``GET /auth/authorize`` -- authorization endpoint. Checks client_id, exact redirect_uri,
  ``response_type=code``, ``aud`` = the FHIR base (refused with 400 otherwise), PKCE S256 only
  (``plain`` is refused, as the spec requires), ``state``. EHR launch: context from the launch
  id. Standalone with ``launch/patient``: an HTML patient picker. The user is the one the
  launch was made for (standalone: ``state.extra["sandbox_user"]``, default Nurse Nina,
  ``Practitioner/prac-nina``; a patient id there, e.g. ``pat-ngata``, signs the patient in:
  ``fhirUser`` = ``Patient/pat-ngata``) and consent is automatic.
* ``POST /auth/token`` -- ``authorization_code`` (single-use codes, 60 s, PKCE S256 verified,
  redirect_uri must match) and ``refresh_token``. Client authentication per registration:
  public (``client_id`` in the body), ``client_secret_basic``, or ``private_key_jwt`` (RS384 /
  ES384 assertion verified against the client's JWKS: iss = sub = client_id, aud = token URL,
  exp at most 5 minutes ahead, jti not replayed). Errors per RFC 6749 section 5.2.
  A refresh token is issued only when ``offline_access`` or ``online_access`` was granted
  (scopes-and-launch-context.html); refresh tokens rotate on use.
* ``POST /auth/token`` with ``grant_type=client_credentials`` -- SMART Backend Services
  (backend-services.html): confidential clients only (client_secret_basic or private_key_jwt),
  ``system/`` scopes granted as requested, no refresh token, no launch context; tokens live
  ``backend_token_ttl`` seconds (default 300); ``backend_tokens_issued`` counts them per client.
* ``GET /auth/jwks`` -- the sandbox's public key; id_tokens are RS256 (OIDC default). The
  id_token carries ``fhirUser`` and ``capture_roles`` (the user's capture roles, a JSON list:
  ``data.CAPTURE_ROLES``), as a hospital identity provider configured for capture would.

Test knobs in ``state.extra``: ``token_ttl`` (seconds, default 3600), ``smart_grant_v1``
(answer with v1 ``.read`` scopes), ``smart_faults`` (a set: ``id_token_bad_signature``,
``id_token_wrong_nonce``). ``revoke_refresh_tokens(state)`` revokes every refresh token.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import errors as jose_errors
from joserfc import jwk, jws, jwt

from ehr_sandbox import data
from ehr_sandbox.pages import page
from ehr_sandbox.state import SandboxState
from ehr_sandbox.tokens import TokenInfo

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CODE_TTL = 60.0
LAUNCH_TTL = 300.0
PRACTITIONER_ID = "prac-nina"
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 4.1
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SYSTEM_SCOPE = re.compile(r"^system/([A-Za-z]+|\*)\.([cruds]+|read|write|\*)$")

SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/Patient.rs",
    "patient/Encounter.rs",
    "patient/*.rs",
    "user/Patient.rs",
    "user/Encounter.rs",
    "user/Practitioner.rs",
    "patient/Patient.read",
    "patient/Encounter.read",
]
#: Advertised for SMART Backend Services; granted only by the client_credentials grant.
BACKEND_SCOPES = [
    "system/Media.cu",
    "system/DocumentReference.cu",
    "system/Media.rs",
    "system/DocumentReference.rs",
]
CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "sso-openid-connect",
    "permission-v1",
    "permission-v2",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "context-banner",
]


# --- shared state ------------------------------------------------------------------------------


def _store(state: SandboxState) -> dict[str, Any]:
    """This module's part of ``state.extra`` (created on first use)."""
    extra = state.extra
    extra.setdefault("smart_clients", {})
    extra.setdefault("smart_launches", {})
    extra.setdefault("smart_codes", {})
    extra.setdefault("smart_refresh", {})
    extra.setdefault("smart_jti", {})
    extra.setdefault("smart_lock", threading.Lock())
    if "smart_signing_key" not in extra:
        extra["smart_signing_key"] = jwk.RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        )
    return extra


def register_client(
    state: SandboxState,
    client_id: str,
    redirect_uri: str | list[str],
    secret: str | None = None,
    jwks: Mapping[str, Any] | None = None,
) -> None:
    """Register an app: public (neither), symmetric (``secret``) or asymmetric (``jwks``)."""
    uris = [redirect_uri] if isinstance(redirect_uri, str) else list(redirect_uri)
    _store(state)["smart_clients"][client_id] = {
        "redirect_uris": uris,
        "secret": secret,
        "jwks": jwks,
    }


def revoke_refresh_tokens(state: SandboxState) -> None:
    """Forget every refresh token (tests: the EHR ended the user's grant)."""
    store = _store(state)
    with store["smart_lock"]:
        store["smart_refresh"].clear()


def create_launch(
    state: SandboxState, encounter_id: str, practitioner: str = PRACTITIONER_ID
) -> str:
    """A launch id binding patient + encounter + user (app-launch.html "EHR Launch")."""
    store = _store(state)
    encounter = state.encounters[encounter_id]
    patient = str(encounter["subject"]["reference"]).removeprefix("Patient/")
    launch_id = secrets.token_urlsafe(16)
    with store["smart_lock"]:
        store["smart_launches"][launch_id] = {
            "patient": patient,
            "encounter": encounter_id,
            "practitioner": practitioner,
            "expires": time.time() + LAUNCH_TTL,
        }
    return launch_id


class OAuthError(Exception):
    """RFC 6749 5.2 error response."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        headers = dict(_NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="sandbox"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


def _v1(scope: str) -> str:
    """The same grant in SMART v1 syntax (``.rs`` -> ``.read``), for ``smart_grant_v1``."""
    out = []
    for item in scope.split():
        if re.match(r"^(patient|user|system)/[A-Za-z*]+\.rs$", item):
            item = item[: -len(".rs")] + ".read"
        out.append(item)
    return " ".join(out)


def router(state: SandboxState) -> APIRouter:
    """The authorization server and the EHR page, bound to one sandbox's state."""
    api = APIRouter(tags=["SMART authorization"])
    store = _store(state)
    lock: threading.Lock = store["smart_lock"]
    token_url = f"{state.base_url}/auth/token"

    def fhir_user(user: str) -> str:
        """A practitioner; a patient id (``pat-ngata``) signs in as the patient, as a patient
        portal or the public SMART launcher's patient-standalone launch does."""
        kind = "Patient" if user in state.patients else "Practitioner"
        return f"{state.fhir_base}/{kind}/{user}"

    # --- discovery ---------------------------------------------------------------------------

    @api.get("/fhir/.well-known/smart-configuration")
    def smart_configuration() -> JSONResponse:
        """conformance.html: SHALL be JSON regardless of Accept."""
        return JSONResponse(
            {
                "issuer": state.fhir_base,
                "jwks_uri": f"{state.base_url}/auth/jwks",
                "authorization_endpoint": f"{state.browser_base_url}/auth/authorize",
                "token_endpoint": token_url,
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "token_endpoint_auth_methods_supported": [
                    "none",
                    "client_secret_basic",
                    "private_key_jwt",
                ],
                "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                "scopes_supported": SCOPES_SUPPORTED + BACKEND_SCOPES,
                "response_types_supported": ["code"],
                "capabilities": CAPABILITIES,
                "code_challenge_methods_supported": ["S256"],
            }
        )

    @api.get("/auth/jwks")
    def jwks() -> JSONResponse:
        key: jwk.RSAKey = store["smart_signing_key"]
        return JSONResponse(jwk.KeySet([key]).as_dict(private=False))

    # --- the "EHR" -----------------------------------------------------------------------------

    @api.get("/", response_class=HTMLResponse)
    def ehr_page(user: str | None = None) -> HTMLResponse:
        user = user or signed_in_user()
        if user not in data.PRACTITIONERS:
            return HTMLResponse("unknown user", status_code=404)
        who = html.escape(_display(user))
        choices = " | ".join(
            f"<a href='/?{urlencode({'user': pid})}'>{html.escape(_display(pid))}</a>"
            for pid in data.PRACTITIONERS
            if pid != user
        )
        rows = []
        for eid, encounter in state.encounters.items():
            pid = str(encounter["subject"]["reference"]).removeprefix("Patient/")
            patient = state.patients.get(pid, {})
            name = patient.get("name", [{}])[0]
            label = f"{' '.join(name.get('given', []))} {name.get('family', '')}".strip()
            where = encounter.get("location", [{}])[0].get("location", {}).get("display", "")
            rows.append(
                f"<tr><td>{html.escape(label)}</td><td>{html.escape(str(where))}</td>"
                f"<td><a href='/ehr/launch/{html.escape(eid)}?{urlencode({'user': user})}'>"
                "Launch capture</a></td></tr>"
            )
        standalone = html.escape(f"{state.app_launch_url}?{urlencode({'iss': state.fhir_base})}")
        return page(
            "Sandbox EHR",
            "<h1>Sandbox EHR (synthetic data)</h1><p>Signed in as "
            f"{who} (capture roles: {html.escape(', '.join(data.CAPTURE_ROLES.get(user, [])))}). "
            f"Sign in as: {choices}</p>"
            f"<table>{''.join(rows)}</table>"
            f"<p><a href='{standalone}'>Open capture (standalone launch)</a></p>",
        )

    @api.get("/ehr/launch/{encounter_id}")
    def ehr_launch(encounter_id: str, user: str | None = None) -> Response:
        user = user or signed_in_user()
        if encounter_id not in state.encounters or user not in data.PRACTITIONERS:
            return HTMLResponse("unknown encounter or user", status_code=404)
        launch_id = create_launch(state, encounter_id, user)
        query = urlencode({"iss": state.fhir_base, "launch": launch_id})
        return RedirectResponse(f"{state.app_launch_url}?{query}", status_code=302)

    # --- authorization endpoint ------------------------------------------------------------------

    def authorize_error(redirect_uri: str, st: str | None, error: str, text: str) -> Response:
        params = {"error": error, "error_description": text}
        if st:
            params["state"] = st
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", status_code=302)

    def check_request(q: dict[str, str]) -> Response | None:
        """Errors shown to the user (no redirect) or redirected back (RFC 6749 4.1.2.1)."""
        client = store["smart_clients"].get(q.get("client_id", ""))
        if client is None:
            return HTMLResponse("unknown client_id", status_code=400)
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in client["redirect_uris"]:
            return HTMLResponse("redirect_uri is not registered for this client", 400)
        if q.get("aud", q.get("resource", "")).rstrip("/") != state.fhir_base:
            # app-launch.html: the EHR SHALL check aud is its FHIR base and refuse otherwise.
            return HTMLResponse("aud mismatch: not this EHR's FHIR base URL", status_code=400)
        st = q.get("state")
        if q.get("response_type") != "code":
            return authorize_error(redirect_uri, st, "unsupported_response_type", "code only")
        if not st:
            return authorize_error(redirect_uri, None, "invalid_request", "state is required")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return authorize_error(
                redirect_uri, st, "invalid_request", "PKCE with code_challenge_method=S256 required"
            )
        return None

    def grant_scope(requested: str) -> str:
        supported = set(SCOPES_SUPPORTED)
        granted = [
            s
            for s in requested.split()
            if s in supported or re.match(r"^(patient|user)/[A-Za-z*]+\.(rs|read)$", s)
        ]
        text = " ".join(granted)
        return _v1(text) if state.extra.get("smart_grant_v1") else text

    def issue_code(
        q: dict[str, str], patient: str | None, encounter: str | None, practitioner: str
    ) -> Response:
        code = secrets.token_urlsafe(32)
        with lock:
            store["smart_codes"][code] = {
                "client_id": q["client_id"],
                "redirect_uri": q["redirect_uri"],
                "scope": grant_scope(q.get("scope", "")),
                "code_challenge": q["code_challenge"],
                "nonce": q.get("nonce"),
                "patient": patient,
                "encounter": encounter,
                "practitioner": practitioner,
                "expires": time.time() + CODE_TTL,
            }
        params = {"code": code, "state": q["state"]}
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return RedirectResponse(f"{q['redirect_uri']}{sep}{urlencode(params)}", status_code=302)

    @api.get("/auth/authorize")
    def authorize(request: Request) -> Response:
        q = dict(request.query_params)
        problem = check_request(q)
        if problem is not None:
            return problem
        scopes = q.get("scope", "").split()
        launch_id = q.get("launch")
        if launch_id:
            with lock:
                context = store["smart_launches"].get(launch_id)
            if context is None or context["expires"] < time.time():
                return authorize_error(
                    q["redirect_uri"], q["state"], "invalid_request", "unknown or expired launch"
                )
            return issue_code(q, context["patient"], context["encounter"], context["practitioner"])
        if "launch/patient" in scopes:
            links = []
            for pid, patient in state.patients.items():
                name = patient.get("name", [{}])[0]
                label = f"{' '.join(name.get('given', []))} {name.get('family', '')}".strip()
                href = "/auth/authorize/pick?" + urlencode({**q, "patient": pid})
                links.append(
                    f"<li><a href='{html.escape(href)}'>{html.escape(label)}"
                    f" ({html.escape(pid)})</a></li>"
                )
            return page("Choose a patient", f"<h1>Choose a patient</h1><ul>{''.join(links)}</ul>")
        return issue_code(q, None, None, signed_in_user())

    @api.get("/auth/authorize/pick")
    def pick(request: Request) -> Response:
        q = dict(request.query_params)
        problem = check_request(q)
        if problem is not None:
            return problem
        patient = q.pop("patient", "")
        if patient not in state.patients:
            return authorize_error(q["redirect_uri"], q["state"], "invalid_request", "no patient")
        encounter = None
        if "launch/encounter" in q.get("scope", "").split():
            encounter = next(
                (
                    eid
                    for eid, e in state.encounters.items()
                    if e["subject"]["reference"] == f"Patient/{patient}"
                ),
                None,
            )
        return issue_code(q, patient, encounter, signed_in_user())

    def signed_in_user() -> str:
        """Who launches when no ``?user=`` says (tests: ``state.extra["sandbox_user"]``)."""
        return str(state.extra.get("sandbox_user", PRACTITIONER_ID))

    # --- token endpoint ------------------------------------------------------------------------

    def authenticate(request: Request, form: dict[str, str]) -> str:
        """Client authentication; returns the client_id (RFC 6749 2.3, RFC 7523 2.2)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                raw_id, _, raw_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise OAuthError("invalid_client", "malformed Basic header", 401) from exc
            client_id, secret = unquote(raw_id), unquote(raw_secret)
            client = store["smart_clients"].get(client_id)
            if (
                client is None
                or not client["secret"]
                or not hmac.compare_digest(secret.encode(), client["secret"].encode())
            ):
                raise OAuthError("invalid_client", "client authentication failed", 401)
            return client_id
        if form.get("client_assertion_type") == JWT_BEARER:
            return check_assertion(form.get("client_assertion", ""))
        client_id = form.get("client_id", "")
        client = store["smart_clients"].get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        if client["secret"] or client["jwks"]:
            raise OAuthError("invalid_client", "this client must authenticate", 401)
        return client_id

    def check_assertion(assertion: str) -> str:
        """client-confidential-asymmetric.html "Authenticating to the Token endpoint"."""
        try:
            unverified = jws.extract_compact(assertion.encode())
            claims = json.loads(unverified.payload)
            client_id = str(claims.get("iss", ""))
        except (jose_errors.JoseError, ValueError) as exc:
            raise OAuthError("invalid_client", "malformed client_assertion", 401) from exc
        client = store["smart_clients"].get(client_id)
        if client is None or not client["jwks"]:
            raise OAuthError("invalid_client", "unknown client or no JWKS registered", 401)
        try:
            keys = jwk.KeySet.import_key_set(client["jwks"])
            token = jwt.decode(assertion, keys, algorithms=["RS384", "ES384"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": client_id},
                sub={"essential": True, "value": client_id},
                aud={"essential": True, "value": token_url},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(token.claims)
        except (jose_errors.JoseError, ValueError) as exc:
            raise OAuthError("invalid_client", f"client_assertion refused: {exc}", 401) from exc
        now = time.time()
        if int(token.claims["exp"]) > now + 300 + 5:
            raise OAuthError("invalid_client", "client_assertion exp is over 5 minutes ahead", 401)
        jti = (client_id, str(token.claims["jti"]))
        with lock:
            seen: dict[tuple[str, str], float] = store["smart_jti"]
            for key in [k for k, exp in seen.items() if exp < now]:
                del seen[key]
            if jti in seen:
                raise OAuthError("invalid_client", "client_assertion jti was replayed", 401)
            seen[jti] = float(token.claims["exp"])
        return client_id

    def token_response(
        client_id: str, grant: dict[str, Any], *, with_id_token: bool
    ) -> JSONResponse:
        ttl = int(state.extra.get("token_ttl", 3600))
        scope: str = grant["scope"]
        scopes = set(scope.split())
        access = state.tokens.issue(
            TokenInfo(
                client_id=client_id,
                scope=scope,
                patient=grant["patient"],
                encounter=grant["encounter"],
                fhir_user=fhir_user(grant["practitioner"]),
                expires_at=time.time() + ttl,
            )
        )
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scope,
            "need_patient_banner": True,
        }
        if grant["patient"]:
            body["patient"] = grant["patient"]
        if grant["encounter"]:
            body["encounter"] = grant["encounter"]
            body["fhirContext"] = [{"reference": f"Encounter/{grant['encounter']}"}]
        if scopes & {"offline_access", "online_access"}:
            refresh = secrets.token_urlsafe(32)
            with lock:
                store["smart_refresh"][refresh] = {**grant, "client_id": client_id}
            body["refresh_token"] = refresh
        if with_id_token and "openid" in scopes:
            body["id_token"] = id_token(client_id, grant.get("nonce"), grant["practitioner"])
        return JSONResponse(body, headers=_NO_STORE)

    def id_token(client_id: str, nonce: str | None, practitioner: str) -> str:
        faults: set[str] = state.extra.get("smart_faults", set())
        key: jwk.RSAKey = store["smart_signing_key"]
        if "id_token_bad_signature" in faults:
            key = jwk.RSAKey.generate_key(2048, parameters={"kid": key.kid or "x"})
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": state.fhir_base,
            "aud": client_id,
            "sub": practitioner,
            "fhirUser": fhir_user(practitioner),
            "capture_roles": list(data.CAPTURE_ROLES.get(practitioner, [])),
            "iat": now,
            "exp": now + 3600,
        }
        if nonce:
            claims["nonce"] = "not-the-nonce" if "id_token_wrong_nonce" in faults else nonce
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])

    @api.post("/auth/token")
    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        try:
            client_id = authenticate(request, form)
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                return code_grant(client_id, form)
            if grant_type == "refresh_token":
                return refresh_grant(client_id, form)
            if grant_type == "client_credentials":
                return client_credentials_grant(client_id, form)
            raise OAuthError("unsupported_grant_type", f"{grant_type!r} is not supported")
        except OAuthError as exc:
            return exc.response()

    def code_grant(client_id: str, form: dict[str, str]) -> JSONResponse:
        with lock:
            grant = store["smart_codes"].pop(form.get("code", ""), None)  # single use
        if grant is None or grant["expires"] < time.time():
            raise OAuthError("invalid_grant", "unknown, used or expired code")
        if grant["client_id"] != client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.match(verifier) or not hmac.compare_digest(
            create_s256_code_challenge(verifier), grant["code_challenge"]
        ):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        return token_response(client_id, grant, with_id_token=True)

    def client_credentials_grant(client_id: str, form: dict[str, str]) -> JSONResponse:
        """SMART Backend Services (backend-services.html): confidential clients, system/ scopes.

        The client was authenticated by ``authenticate`` (client_secret_basic or a verified
        private_key_jwt assertion); a public client is refused. ``system/`` scopes are granted
        as requested; others are dropped. No refresh token and no launch context; lifetime
        ``state.extra["backend_token_ttl"]`` (default 300 s: the spec's SHOULD NOT exceed).
        """
        client = store["smart_clients"][client_id]
        if not client["secret"] and not client["jwks"]:
            raise OAuthError(
                "unauthorized_client", "client_credentials needs a confidential client", 401
            )
        granted = " ".join(s for s in form.get("scope", "").split() if _SYSTEM_SCOPE.match(s))
        if not granted:
            raise OAuthError("invalid_scope", "request at least one system/ scope")
        ttl = int(state.extra.get("backend_token_ttl", 300))
        access = state.tokens.issue(
            TokenInfo(client_id=client_id, scope=granted, expires_at=time.time() + ttl)
        )
        with lock:
            counts: dict[str, int] = state.extra.setdefault("backend_tokens_issued", {})
            counts[client_id] = counts.get(client_id, 0) + 1
        body = {"access_token": access, "token_type": "Bearer", "expires_in": ttl, "scope": granted}
        return JSONResponse(body, headers=_NO_STORE)

    def refresh_grant(client_id: str, form: dict[str, str]) -> JSONResponse:
        with lock:
            grant = store["smart_refresh"].pop(form.get("refresh_token", ""), None)  # rotates
        if grant is None or grant["client_id"] != client_id:
            raise OAuthError("invalid_grant", "unknown or revoked refresh token")
        return token_response(client_id, grant, with_id_token=False)

    return api


def _display(practitioner: str) -> str:
    """A user's name as the EHR page shows it ("Dr Vera Okafor")."""
    name = data.PRACTITIONERS[practitioner]["name"][0]
    return " ".join([*name.get("prefix", []), *name.get("given", []), name.get("family", "")])
