"""How we prove who we are to the DICOMweb archive: none, Basic, a static Bearer, or OAuth2.

PS3.18 leaves authentication to the HTTP layer (it defines no scheme of its own); archives in
practice use HTTP Basic (RFC 7617), a static Bearer token (RFC 6750), or OAuth2 access tokens
from a client-credentials grant (RFC 6749 section 4.4). Every kind is an ``httpx.Auth``, so the
DICOMweb client does not care which one it has.

The OAuth2 kind is ``capture_api.oauth`` (authlib), the one OAuth client of capture, also used
for SMART. Tokens and secrets never appear in logs or exception messages.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx
from pydantic import SecretStr

from capture_api import oauth
from capture_api.config import ArchiveAuthKind, Settings
from capture_api.exceptions import ArchiveAuthFailed, ArchiveUnavailable

__all__ = ["BearerAuth", "OAuth2ClientCredentialsAuth", "auth_from_settings", "credentials_hint"]


def auth_from_settings(settings: Settings) -> httpx.Auth | None:
    """The ``httpx.Auth`` for ``settings.archive_auth``; ValueError names a missing variable."""
    kind = settings.archive_auth
    if kind is ArchiveAuthKind.NONE:
        return None
    if kind is ArchiveAuthKind.BASIC:
        username = _required(settings.archive_username, "CAPTURE_ARCHIVE_USERNAME", kind)
        password = _required(_secret(settings.archive_password), "CAPTURE_ARCHIVE_PASSWORD", kind)
        return httpx.BasicAuth(username, password)
    if kind is ArchiveAuthKind.BEARER:
        return BearerAuth(_required(_secret(settings.archive_token), "CAPTURE_ARCHIVE_TOKEN", kind))
    return OAuth2ClientCredentialsAuth(
        token_url=_required(settings.archive_token_url, "CAPTURE_ARCHIVE_TOKEN_URL", kind),
        client_id=_required(settings.archive_client_id, "CAPTURE_ARCHIVE_CLIENT_ID", kind),
        client_secret=_required(
            _secret(settings.archive_client_secret), "CAPTURE_ARCHIVE_CLIENT_SECRET", kind
        ),
        scope=settings.archive_scope or None,
        timeout=settings.archive_timeout_seconds,
    )


def credentials_hint(kind: ArchiveAuthKind) -> str:
    """Which settings an administrator should check when the archive refuses us."""
    return {
        ArchiveAuthKind.NONE: "the archive wants credentials: set CAPTURE_ARCHIVE_AUTH",
        ArchiveAuthKind.BASIC: "check CAPTURE_ARCHIVE_USERNAME and CAPTURE_ARCHIVE_PASSWORD",
        ArchiveAuthKind.BEARER: "check CAPTURE_ARCHIVE_TOKEN",
        ArchiveAuthKind.OAUTH2: (
            "check CAPTURE_ARCHIVE_CLIENT_ID, CAPTURE_ARCHIVE_CLIENT_SECRET and "
            "CAPTURE_ARCHIVE_SCOPE"
        ),
    }[kind]


def _secret(value: SecretStr | None) -> str | None:
    """The plain text of a pydantic ``SecretStr`` (or None), read only where it is sent."""
    return None if value is None else value.get_secret_value()


def _required(value: str | None, variable: str, kind: ArchiveAuthKind) -> str:
    if not value:
        raise ValueError(f"{variable} is required for archive_auth={kind.value}")
    return value


class BearerAuth(httpx.Auth):
    """A static Bearer token (RFC 6750 section 2.1), e.g. a long-lived service token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:  # never show the token
        return "BearerAuth(token=***)"


class OAuth2ClientCredentialsAuth(oauth.ClientCredentialsAuth):
    """Access tokens from an OAuth2 client-credentials grant (RFC 6749 section 4.4).

    ``capture_api.oauth`` does the work: the token is fetched on first use and reused until
    shortly before it expires; when the archive still answers 401 (token revoked, or the
    archive restarted with new keys) one fresh token is fetched and the request retried once.
    The client authenticates with HTTP Basic (``client_secret_basic``, which RFC 6749 section
    2.3.1 requires every authorization server to support). Here its errors become ours.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        credentials = oauth.ClientCredentials(
            client_id, oauth.AuthMethod.CLIENT_SECRET_BASIC, secret=client_secret
        )
        grant = oauth.ClientCredentialsGrant(token_url, credentials, scope, server="the archive")
        super().__init__(grant, client or httpx.Client(timeout=timeout))
        self._owns_http = client is None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        try:
            yield from super().auth_flow(request)
        except oauth.OAuthUnavailable as exc:
            raise ArchiveUnavailable(str(exc)) from exc
        except oauth.OAuthRefused as exc:
            raise ArchiveAuthFailed(
                f"the archive's token endpoint refused our client credentials ({exc.detail}, "
                f"HTTP {exc.status}): {credentials_hint(ArchiveAuthKind.OAUTH2)}"
            ) from exc
        except oauth.OAuthError as exc:
            raise ArchiveAuthFailed(f"{exc}: {credentials_hint(ArchiveAuthKind.OAUTH2)}") from exc

    def close(self) -> None:
        if self._owns_http:
            self.http.close()
