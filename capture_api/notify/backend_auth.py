"""Access tokens for notifications: SMART Backend Services (client_credentials).

SMART App Launch STU 2.2 backend-services.html: the app discovers the EHR's ``token_endpoint``
from ``{iss}/.well-known/smart-configuration`` and POSTs ``grant_type=client_credentials`` with
``scope`` = the registration's ``backend_scopes`` (``system/...``), authenticating as a
confidential client: ``client_secret_basic`` (RFC 6749 2.3.1) or ``private_key_jwt``
(client-confidential-asymmetric.html; the assertion comes from ``smart.client_assertion``:
RS384/ES384, iss = sub = client_id, aud = token URL, exp <= 5 minutes, fresh jti). A public
client cannot use this grant, so notifications need a confidential registration.

Tokens are cached per EHR until shortly before ``expires_in`` runs out (backend tokens SHOULD
live at most 300 s) and are never logged or stored.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from capture_api.config import ClientAuthMethod, EhrRegistration
from capture_api.context.smart import JWT_BEARER, LaunchError, basic_authorization, client_assertion
from capture_api.exceptions import CaptureError

PUBLIC_CLIENT_REASON = (
    "configure a confidential client for notifications: the EHR registration is a public "
    "client, and SMART Backend Services (client_credentials) needs client_secret_basic or "
    "private_key_jwt"
)
#: Renew this long before the EHR's expiry, so a token never runs out mid-request.
EXPIRY_MARGIN_SECONDS = 30.0
#: Used when the token response omits ``expires_in``.
DEFAULT_LIFETIME_SECONDS = 300.0


class NotifyAuthError(CaptureError):
    """Permanent: misconfiguration or the EHR refused our credentials (not retried)."""


class NotifyUnavailable(CaptureError):
    """Transient: the EHR (FHIR server or token endpoint) could not be reached; retry later."""


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


class BackendTokens:
    """Thread-safe cache of client_credentials tokens, one per EHR (``iss``)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self._tokens: dict[str, _Token] = {}
        self._endpoints: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, registration: EhrRegistration) -> str:
        """A valid access token for ``registration``; fetched when missing or near expiry."""
        key = registration.iss.rstrip("/")
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached.expires_at > time.monotonic():
            return cached.value
        token = self._fetch(registration)
        with self._lock:
            self._tokens[key] = token
        return token.value

    def invalidate(self, registration: EhrRegistration) -> None:
        """Forget the cached token (the EHR answered 401: it expired or was revoked)."""
        with self._lock:
            self._tokens.pop(registration.iss.rstrip("/"), None)

    # --- the grant ---------------------------------------------------------------------------

    def token_endpoint(self, registration: EhrRegistration) -> str:
        """``token_endpoint`` from SMART discovery (conformance.html), cached per EHR."""
        key = registration.iss.rstrip("/")
        with self._lock:
            known = self._endpoints.get(key)
        if known:
            return known
        url = f"{key}/.well-known/smart-configuration"
        try:
            response = self.http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise NotifyUnavailable(
                f"the EHR's SMART configuration could not be reached ({type(exc).__name__})"
            ) from exc
        if response.status_code >= 500:
            raise NotifyUnavailable(
                f"the EHR's SMART configuration answered {response.status_code}"
            )
        document = _json(response)
        endpoint = document.get("token_endpoint") if document else None
        if response.status_code != 200 or not isinstance(endpoint, str) or not endpoint:
            raise NotifyAuthError("the EHR's SMART configuration has no token_endpoint")
        with self._lock:
            self._endpoints[key] = endpoint
        return endpoint

    def _fetch(self, registration: EhrRegistration) -> _Token:
        """backend-services.html "Obtaining an access token"."""
        if registration.auth_method is ClientAuthMethod.NONE:
            raise NotifyAuthError(PUBLIC_CLIENT_REASON)
        endpoint = self.token_endpoint(registration)
        form = {"grant_type": "client_credentials", "scope": registration.backend_scopes}
        headers = {"Accept": "application/json"}
        try:
            if registration.auth_method is ClientAuthMethod.CLIENT_SECRET_BASIC:
                if registration.client_secret is None:
                    raise NotifyAuthError("capture is misconfigured: client_secret is missing")
                headers["Authorization"] = basic_authorization(
                    registration.client_id, registration.client_secret.get_secret_value()
                )
            else:
                form["client_assertion_type"] = JWT_BEARER
                form["client_assertion"] = client_assertion(registration, endpoint)
        except LaunchError as exc:
            raise NotifyAuthError(str(exc)) from exc
        try:
            response = self.http.post(endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise NotifyUnavailable(
                f"the EHR's token endpoint could not be reached ({type(exc).__name__})"
            ) from exc
        body = _json(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise NotifyUnavailable(f"the EHR's token endpoint answered {response.status_code}")
        if response.status_code != 200 or body is None:
            raise NotifyAuthError(_refusal(response.status_code, body))
        access = body.get("access_token")
        token_type = body.get("token_type")
        if not isinstance(access, str) or not access:
            raise NotifyAuthError("the EHR's token response has no access_token")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise NotifyAuthError("the EHR issued a token type capture cannot use (not Bearer)")
        expires_in = body.get("expires_in")
        lifetime = (
            float(expires_in) if isinstance(expires_in, int | float) else DEFAULT_LIFETIME_SECONDS
        )
        margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 2)
        return _Token(access, time.monotonic() + lifetime - margin)


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _refusal(status: int, body: dict[str, Any] | None) -> str:
    """RFC 6749 5.2 error -> a sentence (error codes only; never any token material)."""
    if body and isinstance(body.get("error"), str):
        description = body.get("error_description")
        detail = f": {str(description)[:200]}" if isinstance(description, str) else ""
        return f"the EHR refused capture's backend credentials ({str(body['error'])[:64]}{detail})"
    return f"the EHR's token endpoint refused capture's backend credentials (HTTP {status})"
