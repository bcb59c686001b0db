"""Client-credentials access tokens, kept until shortly before they expire.

One cache for every client_credentials grant capture makes: SMART Backend Services tokens for
EHR notifications (backend-services.html: tokens SHOULD live at most five minutes) and the
archive's OAuth2 tokens (RFC 6749 4.4). A token is reused until ``margin`` seconds before its
``expires_at`` (authlib's ``OAuth2Token.is_expired``), and dropped when a server answers 401
with it (revoked, or the server restarted). Tokens are never logged or stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from capture_api.oauth.client_auth import ClientCredentials
from capture_api.oauth.token_endpoint import TokenEndpoint

#: Renew this long before expiry, so a token never runs out mid-request.
EXPIRY_MARGIN_SECONDS = 30.0
#: Assumed when a token response has no ``expires_in`` (the backend-services maximum).
DEFAULT_LIFETIME_SECONDS = 300.0


@dataclass(frozen=True)
class ClientCredentialsGrant:
    """What to ask for and where: the cache key (two grants differing in any part never share)."""

    token_endpoint: str
    credentials: ClientCredentials
    scope: str | None = None
    #: Names the server in messages ("the EHR", "the archive").
    server: str = field(default="the authorization server", compare=False)


@dataclass(frozen=True)
class _Cached:
    token: Any = field(repr=False)  # authlib's OAuth2Token: a dict with is_expired()
    leeway: float


class TokenCache:
    """Thread-safe: one fetch per grant at a time, however many threads ask."""

    def __init__(
        self,
        *,
        margin: float = EXPIRY_MARGIN_SECONDS,
        default_lifetime: float = DEFAULT_LIFETIME_SECONDS,
    ) -> None:
        self.margin = margin
        self.default_lifetime = default_lifetime
        self._tokens: dict[ClientCredentialsGrant, _Cached] = {}
        self._locks: dict[ClientCredentialsGrant, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, grant: ClientCredentialsGrant, http: httpx.Client) -> str:
        """A valid access token for ``grant``: the cached one, or a new one when it is missing
        or expires within the margin (half the lifetime for tokens shorter than two margins)."""
        with self._lock_for(grant):
            cached = self._tokens.get(grant)
            if cached is None or cached.token.is_expired(leeway=cached.leeway):
                cached = self._tokens[grant] = self._fetch(grant, http)
            return str(cached.token["access_token"])

    def invalidate(self, grant: ClientCredentialsGrant, stale: str | None = None) -> None:
        """Forget the token (a server answered 401 with it); with ``stale``, only if it is
        still that token, so a token another thread just fetched is kept."""
        with self._lock_for(grant):
            cached = self._tokens.get(grant)
            if cached is not None and stale in (None, cached.token["access_token"]):
                del self._tokens[grant]

    def _fetch(self, grant: ClientCredentialsGrant, http: httpx.Client) -> _Cached:
        endpoint = TokenEndpoint(grant.token_endpoint, grant.credentials, http, server=grant.server)
        token = endpoint.client_credentials(grant.scope)
        if not isinstance(token.get("expires_at"), int):  # authlib sets it from expires_in
            token["expires_at"] = int(time.time() + self.default_lifetime)
        lifetime = max(token["expires_at"] - time.time(), 0.0)
        return _Cached(token, min(self.margin, lifetime / 2))

    def _lock_for(self, grant: ClientCredentialsGrant) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(grant, threading.Lock())


class ClientCredentialsAuth(httpx.Auth):
    """``Authorization: Bearer`` from a client-credentials grant on every request.

    A 401 answer means the server no longer knows the token (revoked, restarted): the token is
    dropped, one fresh token fetched and the request sent once more; a second 401 is the
    server's answer. Token requests use ``http``, not the client this auth is attached to.
    """

    def __init__(
        self,
        grant: ClientCredentialsGrant,
        http: httpx.Client,
        cache: TokenCache | None = None,
    ) -> None:
        self.grant = grant
        self.http = http
        self.cache = cache or TokenCache()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.cache.get(self.grant, self.http)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == httpx.codes.UNAUTHORIZED:
            self.cache.invalidate(self.grant, token)
            request.headers["Authorization"] = f"Bearer {self.cache.get(self.grant, self.http)}"
            yield request

    def __repr__(self) -> str:  # never a token or secret
        return f"{type(self).__name__}(token_endpoint={self.grant.token_endpoint!r})"
