"""Access tokens for notifications: SMART Backend Services (client_credentials).

SMART App Launch STU 2.2 backend-services.html: the app finds the EHR's ``token_endpoint`` in
``{iss}/.well-known/smart-configuration`` and POSTs ``grant_type=client_credentials`` with
``scope`` = the registration's ``backend_scopes`` (``system/...``), authenticating as a
confidential client: ``client_secret_basic`` or ``private_key_jwt`` (RS384/ES384,
client-confidential-asymmetric.html). A public client cannot use this grant, so notifications
need a confidential registration.

The protocol, the discovery cache (shared with the clinician's launch) and the token cache
(tokens reused until shortly before ``expires_in`` runs out, never logged or stored) are
``capture_api.oauth``; this module turns an EHR registration into its values and its errors
into ours: ``NotifyAuthError`` (fail the notification) or ``NotifyUnavailable`` (retry).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from capture_api import oauth
from capture_api.config import ClientAuthMethod, EhrRegistration
from capture_api.context.smart import EHR, LaunchError, client_credentials
from capture_api.exceptions import CaptureError

PUBLIC_CLIENT_REASON = (
    "configure a confidential client for notifications: the EHR registration is a public "
    "client, and SMART Backend Services (client_credentials) needs client_secret_basic or "
    "private_key_jwt"
)


class NotifyAuthError(CaptureError):
    """Permanent: misconfiguration or the EHR refused our credentials (not retried)."""


class NotifyUnavailable(CaptureError):
    """Transient: the EHR (FHIR server or token endpoint) could not be reached; retry later."""


class BackendTokens:
    """Backend Services tokens per EHR, over one ``oauth.TokenCache`` (thread-safe)."""

    def __init__(
        self,
        http: httpx.Client,
        discovery: oauth.Discovery | None = None,
        cache: oauth.TokenCache | None = None,
    ) -> None:
        self.http = http
        self.discovery = discovery or oauth.Discovery(server=EHR)
        self.cache = cache or oauth.TokenCache()

    def get(self, registration: EhrRegistration) -> str:
        """A valid access token for ``registration``; fetched when missing or near expiry."""
        with _notify_errors():
            return self.cache.get(self._grant(registration), self.http)

    def invalidate(self, registration: EhrRegistration, stale: str | None = None) -> None:
        """Forget the cached token (the EHR answered 401: it expired or was revoked)."""
        with _notify_errors():
            self.cache.invalidate(self._grant(registration), stale)

    def _grant(self, registration: EhrRegistration) -> oauth.ClientCredentialsGrant:
        """backend-services.html "Obtaining an access token": where, as whom, for what."""
        if registration.auth_method is ClientAuthMethod.NONE:
            raise NotifyAuthError(PUBLIC_CLIENT_REASON)
        try:
            credentials = client_credentials(registration)
        except LaunchError as exc:
            raise NotifyAuthError(str(exc)) from exc
        return oauth.ClientCredentialsGrant(
            self.discovery.get(registration.iss, self.http).token_endpoint,
            credentials,
            registration.backend_scopes,
            server=EHR,
        )


@contextmanager
def _notify_errors() -> Iterator[None]:
    """``capture_api.oauth`` errors -> retry later, or fail with a reason for the admin."""
    try:
        yield
    except oauth.OAuthUnavailable as exc:
        raise NotifyUnavailable(str(exc)) from exc
    except oauth.OAuthRefused as exc:
        raise NotifyAuthError(
            f"the EHR refused capture's backend credentials ({exc.detail})"
        ) from exc
    except oauth.OAuthError as exc:
        raise NotifyAuthError(str(exc)) from exc
