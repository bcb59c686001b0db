"""SMART App Launch 2.2 client: discovery, authorization request, code exchange, refresh.

capture is a confidential-or-public *server-side* SMART app (backend-for-frontend): the
browser only carries the redirects, and every token stays in this process and its database.
This module speaks the protocol and nothing else; ``sessions`` keeps the result and
``api.routes.launch`` drives the redirects.

Spec references are to SMART App Launch STU 2.2 (http://hl7.org/fhir/smart-app-launch/STU2.2):

* conformance.html: ``.well-known/smart-configuration`` discovery;
* app-launch.html: EHR launch / standalone launch, PKCE, ``state``, ``aud``, token response;
* scopes-and-launch-context.html: scopes (v1 and v2 syntax) and launch context;
* client-confidential-asymmetric.html: ``private_key_jwt`` client assertions.

All authlib usage lives in this module (PKCE challenge and random tokens) so the OAuth library
can be swapped in one place; JOSE/JWT work uses joserfc (authlib.jose is deprecated).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc import errors as jose_errors
from joserfc import jwk, jwt

from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.exceptions import CaptureError

#: RFC 7523 section 2.2 client assertion type (SMART client-confidential-asymmetric).
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: SMART 2.2 client-confidential-asymmetric: clients SHALL support RS384 and ES384.
ASSERTION_ALGORITHMS = ("RS384", "ES384")
#: id_token algorithms we accept (OIDC Core default RS256, plus the SMART asymmetric pair).
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
#: The assertion's lifetime; SMART 2.2 requires ``exp`` no more than five minutes ahead.
ASSERTION_LIFETIME_SECONDS = 240
#: Allowed clock skew when checking the id_token's exp/iat.
CLOCK_SKEW_SECONDS = 60
DEFAULT_TIMEOUT_SECONDS = 10.0


class LaunchError(CaptureError):
    """A SMART launch or token call failed; the message is shown to the clinician.

    ``status_code`` is what the launch pages answer with (400 bad request, 403 refused or
    forged, 502 the EHR could not be reached).
    """

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


class SessionExpired(LaunchError):
    """The EHR session cannot be continued (refresh refused, session gone): re-launch."""

    def __init__(
        self,
        message: str = "your EHR session has expired: open capture again from the patient's chart",
    ) -> None:
        super().__init__(message, status_code=401)


# --- discovery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmartConfiguration:
    """The parts of ``.well-known/smart-configuration`` we use (SMART 2.2 conformance.html)."""

    issuer: str | None
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None
    capabilities: frozenset[str]
    code_challenge_methods_supported: frozenset[str]
    token_endpoint_auth_methods_supported: frozenset[str]
    scopes_supported: frozenset[str]

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> SmartConfiguration:
        """Validate a discovery document; refuse servers that cannot do SMART 2 PKCE.

        conformance.html: ``code_challenge_methods_supported`` is REQUIRED and SHALL include
        ``S256`` (and SHALL NOT include ``plain``); app-launch.html: apps SHALL use PKCE S256.
        """
        token = document.get("token_endpoint")
        authorize = document.get("authorization_endpoint")
        if not isinstance(token, str) or not token:
            raise LaunchError("the EHR's SMART configuration has no token_endpoint")
        if not isinstance(authorize, str) or not authorize:
            raise LaunchError("the EHR's SMART configuration has no authorization_endpoint")
        methods = _strings(document.get("code_challenge_methods_supported"))
        if "S256" not in methods:
            raise LaunchError(
                "the EHR does not offer PKCE with S256 (SMART App Launch 2 requires it); "
                "ask the EHR team to enable it"
            )
        issuer = document.get("issuer")
        jwks_uri = document.get("jwks_uri")
        return cls(
            issuer=issuer if isinstance(issuer, str) and issuer else None,
            authorization_endpoint=authorize,
            token_endpoint=token,
            jwks_uri=jwks_uri if isinstance(jwks_uri, str) and jwks_uri else None,
            capabilities=_strings(document.get("capabilities")),
            code_challenge_methods_supported=methods,
            token_endpoint_auth_methods_supported=_strings(
                document.get("token_endpoint_auth_methods_supported")
            ),
            scopes_supported=_strings(document.get("scopes_supported")),
        )


def _strings(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))


# --- scopes ------------------------------------------------------------------------------------

_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$")
#: scopes-and-launch-context.html "Scopes for requesting FHIR resources": v1 -> v2 letters.
_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}


def _permissions(scope: str) -> tuple[str, str, frozenset[str], str] | None:
    match = _RESOURCE_SCOPE.match(scope)
    if match is None:
        return None
    level, resource, perms, query = match.groups()
    perms = _V1_PERMISSIONS.get(perms, perms)
    if any(c not in "cruds" for c in perms):
        return None
    return level, resource, frozenset(perms), query or ""


def scope_allows(granted: str, wanted: str) -> bool:
    """True when the granted scope string covers ``wanted``.

    Servers may answer SMART v2 requests with v1 scopes (``patient/Patient.read``) or with
    wildcards; scopes-and-launch-context.html defines ``.read`` = ``.rs``, ``.write`` =
    ``.cud`` and ``.*`` = ``.cruds``, so these are treated as equivalent. A granular grant
    (``?category=...``) covers only the same granular request.
    """
    granted_set = granted.split()
    if wanted in granted_set:
        return True
    target = _permissions(wanted)
    if target is None:
        return False
    level, resource, perms, query = target
    have: set[str] = set()
    for scope in granted_set:
        parsed = _permissions(scope)
        if parsed is None:
            continue
        g_level, g_resource, g_perms, g_query = parsed
        if g_level == level and g_resource in {resource, "*"} and g_query in {"", query}:
            have |= g_perms
    return perms <= have


# --- the authorization request -----------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep server-side until the callback."""

    url: str
    iss: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    nonce: str | None = field(repr=False)
    launch: str | None
    scope: str


@dataclass(frozen=True)
class TokenResult:
    """A parsed token response (app-launch.html "Response body" + launch context).

    Tokens are excluded from ``repr`` so they never reach a log through an f-string.
    """

    access_token: str = field(repr=False)
    token_type: str
    scope: str
    expires_in: int | None
    expires_at: dt.datetime | None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    patient: str | None = None
    encounter: str | None = None
    fhir_context: tuple[Mapping[str, Any], ...] = ()
    need_patient_banner: bool = True
    smart_style_url: str | None = None
    fhir_user: str | None = None
    #: The id_token's claims, set only after the token was verified (roles are read from them).
    id_token_claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def allows(self, wanted: str) -> bool:
        """Whether the granted scope covers ``wanted`` (v1 and v2 syntax, see scope_allows)."""
        return scope_allows(self.scope, wanted)


def _random(bits: int = 256) -> str:
    """An unguessable URL-safe token; authlib's alphabet has ~5.95 bits per character."""
    return str(generate_token(int(bits / 5.9) + 1))


def find_registration(settings: Settings, iss: str) -> EhrRegistration:
    """The registration for ``iss``; app-launch.html: the app SHALL check iss is one it trusts.

    An unknown iss is refused before anything is fetched from it, so a forged launch link
    cannot make us talk to, or send the clinician to, an arbitrary server.
    """
    wanted = iss.rstrip("/")
    for registration in settings.ehrs:
        if registration.iss.rstrip("/") == wanted:
            return registration
    raise LaunchError("this EHR (iss) is not registered with capture")


def redirect_uri(settings: Settings) -> str:
    """Our registered redirect URI (must match the EHR registration byte for byte)."""
    return f"{settings.public_url.rstrip('/')}/launch/callback"


def requested_scope(registration: EhrRegistration, launch: str | None) -> str:
    """EHR launch asks ``registration.scopes`` (with ``launch``); standalone asks
    ``standalone_scopes`` (``launch/patient``...) -- scopes-and-launch-context.html."""
    return registration.scopes if launch else registration.standalone_scopes


class SmartClient:
    """The HTTP side of SMART for one settings object (use as a context manager).

    ``http`` may be injected (tests use ``httpx.MockTransport``); otherwise one is created
    and closed with the client.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.settings = settings
        self._own_http = http is None
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False)

    def __enter__(self) -> SmartClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    # --- discovery -------------------------------------------------------------------------

    def discover(self, iss: str) -> SmartConfiguration:
        """GET ``{iss}/.well-known/smart-configuration`` (conformance.html).

        The response SHALL be JSON regardless of Accept; anything else (an HTML login page,
        a proxy error) is refused with a readable message.
        """
        url = f"{iss.rstrip('/')}/.well-known/smart-configuration"
        response = self._get(url, "the EHR's SMART configuration")
        if response.status_code != 200:
            raise LaunchError(
                f"the EHR's SMART configuration is not available (HTTP {response.status_code})",
                502,
            )
        document = _json_object(response, "SMART configuration")
        return SmartConfiguration.parse(document)

    # --- step 1: authorization request ------------------------------------------------------

    def begin(self, iss: str, launch: str | None) -> AuthorizationRequest:
        """Build the authorization redirect (app-launch.html "Obtain authorization code").

        ``state`` carries 256 bits (the spec asks for at least 122), ``aud`` is the FHIR
        base (= iss), PKCE is always S256, and a ``nonce`` is added when ``openid`` is
        asked so the id_token can be tied to this request (OIDC Core 3.1.2.1).
        """
        registration = find_registration(self.settings, iss)
        config = self.discover(registration.iss)
        scope = requested_scope(registration, launch)
        state = _random(256)
        verifier = _random(256)  # RFC 7636 4.1: 43..128 chars of [A-Za-z0-9-._~]
        nonce = _random(128) if "openid" in scope.split() else None
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": registration.client_id,
            "redirect_uri": redirect_uri(self.settings),
            "scope": scope,
            "state": state,
            "aud": registration.iss,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if launch:
            params["launch"] = launch
        if nonce:
            params["nonce"] = nonce
        endpoint = config.authorization_endpoint
        separator = "&" if "?" in endpoint else "?"
        return AuthorizationRequest(
            url=f"{endpoint}{separator}{urlencode(params, quote_via=quote)}",
            iss=registration.iss,
            state=state,
            code_verifier=verifier,
            nonce=nonce,
            launch=launch,
            scope=scope,
        )

    # --- step 2: code exchange -------------------------------------------------------------

    def exchange_code(
        self,
        iss: str,
        code: str,
        code_verifier: str,
        *,
        launch: str | None,
        nonce: str | None,
    ) -> TokenResult:
        """POST the code to the token endpoint (app-launch.html "Obtain access token").

        Sends ``grant_type=authorization_code, code, redirect_uri, code_verifier`` and
        authenticates per the registration. When ``openid`` was asked the id_token is
        validated (signature against the EHR's JWKS, iss, aud, exp, nonce) before its
        ``fhirUser`` is believed.
        """
        registration = find_registration(self.settings, iss)
        config = self.discover(registration.iss)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri(self.settings),
            "code_verifier": code_verifier,
        }
        body = self._token_request(registration, config, form)
        asked = requested_scope(registration, launch)
        result = _parse_token_response(body, fallback_scope=None)
        fhir_user = None
        claims: Mapping[str, Any] = {}
        openid_granted = "openid" in result.scope.split()
        if result.id_token:
            claims = self.validate_id_token(result.id_token, registration, config, nonce)
            fhir_user = _fhir_user(claims)
        elif openid_granted and "openid" in asked.split():
            raise LaunchError("the EHR granted openid but sent no id_token")
        if result.patient is None and any(s.startswith("patient/") for s in result.scope.split()):
            # scopes-and-launch-context.html: with patient/ scopes the EHR SHALL establish
            # a patient in context; without one we cannot know whose photo this is.
            raise LaunchError("the EHR did not say which patient is open: choose a patient")
        return _replace(result, fhir_user=fhir_user, id_token_claims=claims)

    def refresh(self, iss: str, refresh_token: str, previous_scope: str) -> TokenResult:
        """``grant_type=refresh_token`` (app-launch.html "Refresh access token").

        The answer may omit ``scope`` and ``refresh_token`` (RFC 6749 section 6): the old
        values then stay in force.
        """
        registration = find_registration(self.settings, iss)
        config = self.discover(registration.iss)
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        body = self._token_request(registration, config, form)
        result = _parse_token_response(body, fallback_scope=previous_scope)
        if result.refresh_token is None:
            result = _replace(result, refresh_token=refresh_token)
        return result

    # --- id_token ----------------------------------------------------------------------------

    def validate_id_token(
        self,
        id_token: str,
        registration: EhrRegistration,
        config: SmartConfiguration,
        nonce: str | None,
    ) -> dict[str, Any]:
        """Verify an OpenID Connect id_token (SMART 2.2 app-launch.html, OIDC Core 3.1.3.7).

        Signature against the server's ``jwks_uri`` keys; ``iss`` equal to the server's
        issuer; our client_id in ``aud`` (and ``azp`` when there are several audiences);
        ``exp`` in the future; ``nonce`` equal to the one we sent.
        """
        if not config.jwks_uri or not config.issuer:
            raise LaunchError(
                "the EHR sent an id_token but publishes no issuer/jwks_uri to verify it"
            )
        response = self._get(config.jwks_uri, "the EHR's signing keys")
        if response.status_code != 200:
            raise LaunchError(
                f"the EHR's signing keys are not available (HTTP {response.status_code})", 502
            )
        try:
            keys = jwk.KeySet.import_key_set(_json_object(response, "JWKS"))  # type: ignore[arg-type]
            token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                leeway=CLOCK_SKEW_SECONDS,
                iss={"essential": True, "value": config.issuer},
                aud={"essential": True, "value": registration.client_id},
                exp={"essential": True},
                sub={"essential": True},
            )
            registry.validate(token.claims)
        except jose_errors.BadSignatureError as exc:
            raise LaunchError(
                "the EHR's identity token has an invalid signature: sign-in refused", 403
            ) from exc
        except (jose_errors.JoseError, ValueError, KeyError, TypeError) as exc:
            raise LaunchError(
                f"the EHR's identity token was refused ({type(exc).__name__}: {exc})", 403
            ) from exc
        claims = dict(token.claims)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != registration.client_id:
            raise LaunchError("the EHR's identity token is meant for another app", 403)
        if nonce is not None:
            sent = claims.get("nonce")
            if not isinstance(sent, str) or not hmac.compare_digest(sent, nonce):
                raise LaunchError(
                    "the EHR's identity token does not match this sign-in (nonce)", 403
                )
        return claims

    # --- plumbing ----------------------------------------------------------------------------

    def _get(self, url: str, what: str) -> httpx.Response:
        try:
            return self.http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise LaunchError(
                f"could not reach {what} at {_host(url)} ({type(exc).__name__})", 502
            ) from exc

    def _token_request(
        self, registration: EhrRegistration, config: SmartConfiguration, form: dict[str, str]
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        form = dict(form)
        method = registration.auth_method
        if method is ClientAuthMethod.NONE:
            form["client_id"] = registration.client_id
        elif method is ClientAuthMethod.CLIENT_SECRET_BASIC:
            if registration.client_secret is None:
                raise LaunchError("capture is misconfigured: client_secret is missing")
            headers["Authorization"] = basic_authorization(
                registration.client_id, registration.client_secret.get_secret_value()
            )
        else:
            form["client_assertion_type"] = JWT_BEARER
            form["client_assertion"] = client_assertion(registration, config.token_endpoint)
        try:
            response = self.http.post(config.token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise LaunchError(
                f"could not reach the EHR's token endpoint at {_host(config.token_endpoint)} "
                f"({type(exc).__name__})",
                502,
            ) from exc
        if response.status_code != 200:
            raise LaunchError(_token_error(response), 403 if response.status_code < 500 else 502)
        return _json_object(response, "token response")


def basic_authorization(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: both parts form-urlencoded before Base64 (many clients forget)."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def client_assertion(registration: EhrRegistration, token_endpoint: str) -> str:
    """A private_key_jwt assertion (SMART 2.2 client-confidential-asymmetric.html).

    Header ``alg`` RS384 (RSA key) or ES384 (P-384 key), ``kid``, ``typ=JWT``; claims
    ``iss`` = ``sub`` = client_id, ``aud`` = the token URL, ``exp`` at most five minutes
    ahead, and a fresh ``jti`` the server uses to detect replay.
    """
    if registration.private_key_file is None:
        raise LaunchError("capture is misconfigured: private_key_file is missing")
    try:
        pem = registration.private_key_file.read_bytes()
    except OSError as exc:
        raise LaunchError("capture is misconfigured: cannot read private_key_file") from exc
    key = _signing_key(pem)
    if isinstance(key, jwk.RSAKey):
        alg = "RS384"
    elif key.curve_name == "P-384":
        alg = "ES384"
    else:
        raise LaunchError("capture is misconfigured: ES384 needs a P-384 key")
    now = int(time.time())
    header = {"alg": alg, "typ": "JWT", "kid": registration.private_key_id or key.thumbprint()}
    claims = {
        "iss": registration.client_id,
        "sub": registration.client_id,
        "aud": token_endpoint,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECONDS,
        "jti": _random(256),
    }
    return jwt.encode(header, claims, key, algorithms=[alg])


def _signing_key(pem: bytes) -> jwk.RSAKey | jwk.ECKey:
    """The PEM private key as a joserfc key (RSA for RS384, EC P-384 for ES384)."""
    for key_type in (jwk.RSAKey, jwk.ECKey):
        try:
            return key_type.import_key(pem)
        except (jose_errors.JoseError, ValueError, TypeError):
            continue
    raise LaunchError("capture is misconfigured: private_key_file is not an RSA or EC key")


def _parse_token_response(body: Mapping[str, Any], fallback_scope: str | None) -> TokenResult:
    """Check and read a token response (app-launch.html "Response body")."""
    access_token = body.get("access_token")
    token_type = body.get("token_type")
    if not isinstance(access_token, str) or not access_token:
        raise LaunchError("the EHR's token response has no access_token")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise LaunchError("the EHR issued a token type capture cannot use (not Bearer)")
    scope = body.get("scope")
    if not isinstance(scope, str):
        if fallback_scope is None:
            raise LaunchError("the EHR's token response has no scope (SMART requires it)")
        scope = fallback_scope
    expires_in = body.get("expires_in")
    lifetime = int(expires_in) if isinstance(expires_in, int | float) else None
    expires_at = (
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime) if lifetime is not None else None
    )
    raw_context = body.get("fhirContext")
    context = (
        tuple(c for c in raw_context if isinstance(c, dict))
        if isinstance(raw_context, list)
        else ()
    )
    encounter = _opt_str(body.get("encounter"))
    if encounter is None:
        # Before SMART 2.1 some servers put the encounter only in fhirContext.
        for item in context:
            reference = item.get("reference")
            if isinstance(reference, str) and reference.startswith("Encounter/"):
                encounter = reference.removeprefix("Encounter/")
                break
    banner = body.get("need_patient_banner")
    return TokenResult(
        access_token=access_token,
        token_type="Bearer",
        scope=scope,
        expires_in=lifetime,
        expires_at=expires_at,
        refresh_token=_opt_str(body.get("refresh_token")),
        id_token=_opt_str(body.get("id_token")),
        patient=_opt_str(body.get("patient")),
        encounter=encounter,
        fhir_context=context,
        # Absent means unknown: show the banner, the safe choice for a clinical photo.
        need_patient_banner=banner if isinstance(banner, bool) else True,
        smart_style_url=_opt_str(body.get("smart_style_url")),
    )


def _replace(result: TokenResult, **changes: Any) -> TokenResult:
    return replace(result, **changes)


def _fhir_user(claims: Mapping[str, Any]) -> str | None:
    """``fhirUser`` (SMART 2); ``profile`` was its SMART 1 name."""
    for name in ("fhirUser", "profile"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        raise LaunchError(f"the EHR's {what} is not JSON ({content_type or 'no content type'})")
    try:
        document = response.json()
    except ValueError as exc:
        raise LaunchError(f"the EHR's {what} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise LaunchError(f"the EHR's {what} is not a JSON object")
    return document


def _token_error(response: httpx.Response) -> str:
    """RFC 6749 5.2 error -> a sentence (never echoing tokens; error codes are ASCII)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = str(body["error"])[:64]
        description = body.get("error_description")
        detail = f": {str(description)[:200]}" if isinstance(description, str) else ""
        return f"the EHR refused the sign-in ({code}{detail})"
    return f"the EHR's token endpoint answered HTTP {response.status_code}"
