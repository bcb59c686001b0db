"""SMART App Launch 2.2 for capture: trusted EHRs, launch context, and the clinician's words.

capture is a confidential-or-public *server-side* SMART app (backend-for-frontend): the
browser only carries the redirects, and every token stays in this process and its database.
The OAuth protocol itself (discovery, PKCE, client authentication, token requests, id_token
verification) is ``capture_api.oauth`` (authlib + joserfc); this module adds what is SMART on
capture: which EHRs are registered (``find_registration``), our redirect URI and scopes, the
launch context of the token response, SMART scope semantics, and ``LaunchError`` texts for the
clinician. ``sessions`` keeps the result and ``api.routes.launch`` drives the redirects.

Spec references are to SMART App Launch STU 2.2 (http://hl7.org/fhir/smart-app-launch/STU2.2):

* app-launch.html: EHR launch / standalone launch, ``aud``, token response, launch context;
* scopes-and-launch-context.html: scopes (v1 and v2 syntax) and launch context.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from capture_api import oauth
from capture_api.config import EhrRegistration, Settings
from capture_api.exceptions import CaptureError

DEFAULT_TIMEOUT_SECONDS = 10.0
#: How the EHR is named in messages from ``capture_api.oauth``.
EHR = "the EHR"


class LaunchError(CaptureError):
    """A SMART launch or token call failed; the message is shown to the clinician.

    ``status_code`` is what the launch pages answer with (400 bad request or our settings,
    403 refused or forged, 502 the EHR could not be reached or answered outside the protocol).
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


@contextmanager
def launch_errors() -> Iterator[None]:
    """``capture_api.oauth`` errors -> ``LaunchError`` with the status the launch pages use.

    403 for a refusal (the EHR refused the grant, or its id_token is not believable), 502 for
    an EHR that cannot be reached or answers outside the protocol, 400 for our configuration.
    """
    try:
        yield
    except oauth.OAuthRefused as exc:
        raise LaunchError(f"the EHR refused the sign-in ({exc.detail})", 403) from exc
    except oauth.IdTokenRejected as exc:
        raise LaunchError(str(exc), 403) from exc
    except (oauth.OAuthUnavailable, oauth.OAuthProtocolError) as exc:
        raise LaunchError(str(exc), 502) from exc
    except oauth.OAuthError as exc:
        raise LaunchError(str(exc)) from exc


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
class LaunchRequest:
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


def client_credentials(registration: EhrRegistration) -> oauth.ClientCredentials:
    """How capture authenticates at this EHR's token endpoint (the registration's method)."""
    method = oauth.AuthMethod(registration.auth_method.value)
    pem: bytes | None = None
    if method is oauth.AuthMethod.PRIVATE_KEY_JWT:
        if registration.private_key_file is None:
            raise LaunchError("capture is misconfigured: private_key_file is missing")
        try:
            pem = registration.private_key_file.read_bytes()
        except OSError as exc:
            raise LaunchError("capture is misconfigured: cannot read private_key_file") from exc
    secret = registration.client_secret
    return oauth.ClientCredentials(
        client_id=registration.client_id,
        method=method,
        secret=secret.get_secret_value() if secret is not None else None,
        private_key_pem=pem,
        key_id=registration.private_key_id,
    )


def client_assertion(registration: EhrRegistration, token_endpoint: str) -> str:
    """A private_key_jwt assertion for this registration (client-confidential-asymmetric.html)."""
    with launch_errors():
        return oauth.client_assertion(client_credentials(registration), token_endpoint)


class SmartClient:
    """The HTTP side of SMART for one settings object (use as a context manager).

    ``http`` may be injected (tests use ``httpx.MockTransport``); otherwise one is created
    and closed with the client. ``discovery`` is the process's shared cache of SMART
    configurations (``Runtime.discovery``); without one each client discovers afresh.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        discovery: oauth.Discovery | None = None,
    ) -> None:
        self.settings = settings
        self._own_http = http is None
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self.discovery = discovery or oauth.Discovery(server=EHR)

    def __enter__(self) -> SmartClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def discover(self, iss: str) -> oauth.SmartConfiguration:
        """``{iss}/.well-known/smart-configuration`` (conformance.html), from the cache."""
        with launch_errors():
            return self.discovery.get(iss, self.http)

    def begin(self, iss: str, launch: str | None) -> LaunchRequest:
        """Build the authorization redirect (app-launch.html "Obtain authorization code"):
        PKCE S256, 256-bit ``state``, ``aud`` = the FHIR base (= iss), ``nonce`` with openid."""
        registration = find_registration(self.settings, iss)
        scope = requested_scope(registration, launch)
        with launch_errors():
            request = oauth.authorization_request(
                self.discovery.get(registration.iss, self.http),
                client_id=registration.client_id,
                redirect_uri=redirect_uri(self.settings),
                scope=scope,
                audience=registration.iss,
                launch=launch,
                server=EHR,
            )
        return LaunchRequest(
            url=request.url,
            iss=registration.iss,
            state=request.state,
            code_verifier=request.code_verifier,
            nonce=request.nonce,
            launch=launch,
            scope=scope,
        )

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

        When an id_token comes back it is verified (signature against the EHR's JWKS, iss,
        aud, exp, nonce) before its ``fhirUser`` is believed.
        """
        registration = find_registration(self.settings, iss)
        with launch_errors():
            config = self.discovery.get(registration.iss, self.http)
            token = self._token_endpoint(registration, config).authorization_code(
                code, code_verifier, redirect_uri(self.settings)
            )
            result = _token_result(token, fallback_scope=None)
            claims: dict[str, Any] = {}
            if result.id_token:
                claims = oauth.verify_id_token(
                    result.id_token,
                    config,
                    self.http,
                    client_id=registration.client_id,
                    nonce=nonce,
                    server=EHR,
                )
        asked = requested_scope(registration, launch)
        if not claims and "openid" in result.scope.split() and "openid" in asked.split():
            raise LaunchError("the EHR granted openid but sent no id_token")
        if result.patient is None and any(s.startswith("patient/") for s in result.scope.split()):
            # scopes-and-launch-context.html: with patient/ scopes the EHR SHALL establish
            # a patient in context; without one we cannot know whose photo this is.
            raise LaunchError("the EHR did not say which patient is open: choose a patient")
        return replace(result, fhir_user=_fhir_user(claims), id_token_claims=claims)

    def refresh(self, iss: str, refresh_token: str, previous_scope: str) -> TokenResult:
        """``grant_type=refresh_token`` (app-launch.html "Refresh access token").

        The answer may omit ``scope`` and ``refresh_token`` (RFC 6749 section 6): the old
        values then stay in force (authlib keeps the refresh token, we keep the scope).
        """
        registration = find_registration(self.settings, iss)
        with launch_errors():
            config = self.discovery.get(registration.iss, self.http)
            token = self._token_endpoint(registration, config).refresh(refresh_token)
        return _token_result(token, fallback_scope=previous_scope)

    def _token_endpoint(
        self, registration: EhrRegistration, config: oauth.SmartConfiguration
    ) -> oauth.TokenEndpoint:
        credentials = client_credentials(registration)
        return oauth.TokenEndpoint(config.token_endpoint, credentials, self.http, server=EHR)


def _token_result(token: oauth.Token, fallback_scope: str | None) -> TokenResult:
    """Read a checked token response (app-launch.html "Response body" + launch context).

    ``capture_api.oauth`` already checked ``access_token`` and Bearer; SMART also requires
    ``scope`` in the first answer, and carries the launch context next to the token.
    """
    scope = token.get("scope")
    if not isinstance(scope, str):
        if fallback_scope is None:
            raise LaunchError("the EHR's token response has no scope (SMART requires it)")
        scope = fallback_scope
    expires_in, expires_at = token.get("expires_in"), token.get("expires_at")
    raw_context = token.get("fhirContext")
    context = (
        tuple(c for c in raw_context if isinstance(c, dict))
        if isinstance(raw_context, list)
        else ()
    )
    banner = token.get("need_patient_banner")
    return TokenResult(
        access_token=str(token["access_token"]),
        token_type="Bearer",
        scope=scope,
        expires_in=int(expires_in) if isinstance(expires_in, int | float) else None,
        # authlib's OAuth2Token sets expires_at (epoch seconds) from expires_in.
        expires_at=dt.datetime.fromtimestamp(expires_at, dt.UTC)
        if isinstance(expires_at, int)
        else None,
        refresh_token=_opt_str(token.get("refresh_token")),
        id_token=_opt_str(token.get("id_token")),
        patient=_opt_str(token.get("patient")),
        encounter=_encounter(token.get("encounter"), context),
        fhir_context=context,
        # Absent means unknown: show the banner, the safe choice for a clinical photo.
        need_patient_banner=banner if isinstance(banner, bool) else True,
        smart_style_url=_opt_str(token.get("smart_style_url")),
    )


def _encounter(value: object, context: tuple[Mapping[str, Any], ...]) -> str | None:
    """``encounter``; before SMART 2.1 some servers put it only in ``fhirContext``."""
    encounter = _opt_str(value)
    if encounter is not None:
        return encounter
    for item in context:
        reference = item.get("reference")
        if isinstance(reference, str) and reference.startswith("Encounter/"):
            return reference.removeprefix("Encounter/")
    return None


def _fhir_user(claims: Mapping[str, Any]) -> str | None:
    """``fhirUser`` (SMART 2); ``profile`` was its SMART 1 name."""
    for name in ("fhirUser", "profile"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
