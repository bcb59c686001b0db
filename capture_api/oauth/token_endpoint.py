"""Requests to one token endpoint (RFC 6749 section 3.2), made by authlib's ``OAuth2Client``.

authlib builds each grant's body (``authorization_code`` with PKCE ``code_verifier``,
``refresh_token``, ``client_credentials``), authenticates the client (``client_auth``), parses
the answer into an ``OAuth2Token`` (``expires_at`` from ``expires_in``) and keeps the old
refresh token when a refresh answer has none (RFC 6749 section 6). The framework-neutral
``authlib.oauth2.client.OAuth2Client`` runs on our ``httpx.Client``; authlib's httpx
subclass is a deprecated module and would own its own connection pool.

Ours: the one compliance hook that reads a failed answer (RFC 6749 5.2 error, transient
statuses) into our error tree before authlib parses, and the Bearer check (RFC 6750: we can
only use Bearer tokens), which authlib does not make.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import httpx

from capture_api.oauth._http import host, is_transient, json_object
from capture_api.oauth.client_auth import ClientCredentials, HttpxClientAuth
from capture_api.oauth.errors import (
    OAuthProtocolError,
    OAuthRefused,
    OAuthUnavailable,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.oauth2.base import OAuth2Error
    from authlib.oauth2.client import OAuth2Client

__all__ = ["Token", "TokenEndpoint"]

#: A token response as authlib's ``OAuth2Token`` (a dict with ``expires_at`` added).
Token = dict[str, Any]


class _HttpxOAuth2Client(OAuth2Client):  # type: ignore[misc]
    """authlib's client with its client authentication applied as an ``httpx.Auth``."""

    client_auth_class = HttpxClientAuth


class TokenEndpoint:
    """One token endpoint, one client: each method is one POST and returns an OAuth2Token.

    ``server`` names the other side in messages (``"the EHR"``, ``"the archive"``). A fresh
    authlib client per request keeps this object free of shared mutable state (thread-safe).
    """

    def __init__(
        self,
        url: str,
        credentials: ClientCredentials,
        http: httpx.Client,
        *,
        server: str = "the authorization server",
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.http = http
        self.server = server

    def authorization_code(self, code: str, code_verifier: str, redirect_uri: str) -> Token:
        """RFC 6749 4.1.3 with RFC 7636 4.5 (SMART app-launch.html "Obtain access token")."""
        return self._request(
            lambda client: client.fetch_token(
                self.url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
            )
        )

    def refresh(self, refresh_token: str) -> Token:
        """RFC 6749 6; the old refresh token stays when the answer carries none."""
        return self._request(
            lambda client: client.refresh_token(self.url, refresh_token=refresh_token)
        )

    def client_credentials(self, scope: str | None) -> Token:
        """RFC 6749 4.4 (SMART backend-services.html "Obtaining an access token")."""
        return self._request(
            lambda client: client.fetch_token(
                self.url, grant_type="client_credentials", scope=scope or None
            )
        )

    def _request(self, call: Callable[[Any], Any]) -> Token:
        secret, method = self.credentials.authlib_arguments()
        client = _HttpxOAuth2Client(
            self.http,
            client_id=self.credentials.client_id,
            client_secret=secret,
            token_endpoint_auth_method=method,
        )
        client.register_compliance_hook("access_token_response", self._check_answer)
        client.register_compliance_hook("refresh_token_response", self._check_answer)
        try:
            token = call(client)
        except httpx.HTTPError as exc:
            raise OAuthUnavailable(
                f"could not reach {self.server}'s token endpoint at {host(self.url)} "
                f"({type(exc).__name__})"
            ) from exc
        except OAuth2Error as exc:  # an "error" member in a 200 answer
            raise OAuthRefused(
                self.server, status=200, error=exc.error, description=exc.description
            ) from exc
        except (ValueError, TypeError) as exc:  # e.g. expires_in that is not a number
            raise OAuthProtocolError(f"{self.server}'s token response is not usable") from exc
        return self._bearer(token)

    def _check_answer(self, response: httpx.Response) -> httpx.Response:
        """authlib's ``access_token_response``/``refresh_token_response`` hook."""
        status = response.status_code
        if status == 200:
            json_object(response, f"{self.server}'s token response")
            return response
        if is_transient(status):
            raise OAuthUnavailable(f"{self.server}'s token endpoint answered HTTP {status}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            raise OAuthRefused(self.server, status=status)
        description = body.get("error_description")
        raise OAuthRefused(
            self.server,
            status=status,
            error=body["error"],
            description=description if isinstance(description, str) else None,
        )

    def _bearer(self, token: Token) -> Token:
        """RFC 6749 5.1 / RFC 6750: an access_token, of a type we can send (Bearer).

        A missing ``token_type`` counts as Bearer, as authlib's ``TokenAuth`` reads it.
        """
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthProtocolError(f"{self.server}'s token response has no access_token")
        token_type = token.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise OAuthProtocolError(
                f"{self.server} issued a token type capture cannot use (not Bearer)"
            )
        return token
