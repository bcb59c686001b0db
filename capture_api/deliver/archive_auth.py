"""How we prove who we are to the DICOMweb archive: none, Basic, a static Bearer, or OAuth2.

PS3.18 leaves authentication to the HTTP layer (it defines no scheme of its own); archives in
practice use HTTP Basic (RFC 7617), a static Bearer token (RFC 6750), or OAuth2 access tokens
from a client-credentials grant (RFC 6749 section 4.4). Every kind is an ``httpx.Auth``, so the
DICOMweb client does not care which one it has.

All authlib use stays in this module (RECIPES.md: authlib 1.9 warns about its own deprecations,
and its httpx integration is itself deprecated), so it can be swapped without touching the
archive client. Tokens and secrets never appear in logs or exception messages.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Generator
from typing import Any

import httpx
from pydantic import SecretStr

from capture_api.config import ArchiveAuthKind, Settings
from capture_api.exceptions import ArchiveAuthFailed, ArchiveUnavailable

with warnings.catch_warnings():
    # authlib.deprecate installs an "always" filter for its own warning class at import time;
    # catch_warnings confines that (and any import-time deprecation notice) to this block.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]
    from authlib.oauth2.rfc6749 import OAuth2Token  # type: ignore[import-untyped]
    from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
        prepare_token_request,
    )

__all__ = ["BearerAuth", "OAuth2ClientCredentialsAuth", "auth_from_settings", "credentials_hint"]

#: Refresh a token this many seconds before it expires, so a request never carries a stale one.
_EXPIRY_LEEWAY_SECONDS = 30


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


class OAuth2ClientCredentialsAuth(httpx.Auth):
    """Access tokens from an OAuth2 client-credentials grant (RFC 6749 section 4.4).

    The token is fetched on first use, cached, and fetched again shortly before it expires.
    When the archive still answers 401 (token revoked, or the archive restarted with new keys)
    we fetch a fresh token once and retry the request once; a second 401 is the archive's answer.
    The client authenticates to the token endpoint with HTTP Basic (``client_secret_basic``,
    which RFC 6749 section 2.3.1 requires every authorization server to support).
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
        self._token_url = token_url
        self._client_auth = ClientAuth(client_id, client_secret, "client_secret_basic")
        self._scope = scope
        self._http = client or httpx.Client(timeout=timeout)
        self._owns_http = client is None
        self._lock = threading.Lock()
        self._token: Any = None  # authlib OAuth2Token (a dict with expires_at)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == httpx.codes.UNAUTHORIZED:
            request.headers["Authorization"] = f"Bearer {self._access_token(stale=token)}"
            yield request

    def _access_token(self, stale: str | None = None) -> str:
        """The cached token, or a new one if it is expiring or is the ``stale`` one."""
        with self._lock:  # one fetch at a time, however many outbox threads ask
            token = self._token
            if (
                token is None
                or token.is_expired(_EXPIRY_LEEWAY_SECONDS)
                or (stale is not None and token["access_token"] == stale)
            ):
                token = self._token = self._fetch_token()
            return str(token["access_token"])

    def _fetch_token(self) -> Any:
        """POST the client-credentials grant to the token endpoint (RFC 6749 4.4.2/4.4.3)."""
        body = prepare_token_request("client_credentials", scope=self._scope)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        _, headers, body = self._client_auth.prepare("POST", self._token_url, headers, body)
        try:
            response = self._http.post(self._token_url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ArchiveUnavailable("the archive's token endpoint did not answer in time") from exc
        except httpx.TransportError as exc:
            raise ArchiveUnavailable(f"cannot reach the archive's token endpoint: {exc}") from exc
        return _token_from(response)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentialsAuth(token_url={self._token_url!r})"


def _token_from(response: httpx.Response) -> Any:
    """The token of a successful answer; the error (RFC 6749 5.2) of a failed one, in words."""
    status = response.status_code
    if status == httpx.codes.REQUEST_TIMEOUT or status == 429 or status >= 500:
        raise ArchiveUnavailable(f"the archive's token endpoint answered HTTP {status}")
    payload = _json_object(response)
    if status != httpx.codes.OK or "access_token" not in payload:
        error = payload.get("error") or "no access_token in the answer"
        raise ArchiveAuthFailed(
            f"the archive's token endpoint refused our client credentials (HTTP {status}, "
            f"{error}): {credentials_hint(ArchiveAuthKind.OAUTH2)}"
        )
    token_type = str(payload.get("token_type", "Bearer"))
    if token_type.lower() != "bearer":
        raise ArchiveAuthFailed(f"the token endpoint issued a {token_type!r} token, not Bearer")
    return OAuth2Token(payload)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
