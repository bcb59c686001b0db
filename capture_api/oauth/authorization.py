"""The authorization request of the authorization-code grant with PKCE (RFC 6749 4.1.1,
RFC 7636 4.3), as SMART App Launch STU 2.2 app-launch.html "Obtain authorization code" wants it.

authlib's ``OAuth2Client.create_authorization_url`` builds the URL and the S256
``code_challenge`` from our verifier; ``authlib.common.security.generate_token`` makes the
random values. What stays for the caller: keeping ``state``, ``code_verifier`` and ``nonce``
server-side until the callback (capture keeps them in its database), then
``TokenEndpoint.authorization_code`` and ``verify_id_token``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from capture_api.oauth.discovery import SmartConfiguration
from capture_api.oauth.errors import OAuthProtocolError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.common.security import generate_token
    from authlib.oauth2.client import OAuth2Client


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and the values to keep until the callback (not in repr)."""

    url: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    nonce: str | None = field(repr=False)


def random_token(bits: int) -> str:
    """An unguessable URL-safe value; authlib's alphabet has ~5.95 bits per character."""
    return str(generate_token(int(bits / 5.9) + 1))


def authorization_request(
    config: SmartConfiguration,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    audience: str,
    launch: str | None = None,
    server: str = "the EHR",
) -> AuthorizationRequest:
    """The authorization URL (app-launch.html) and the secrets behind it.

    ``state`` carries 256 bits (the spec asks for at least 122); the PKCE verifier 256 bits
    (RFC 7636 4.1: 43..128 characters), sent as an S256 challenge only; ``aud`` is the FHIR
    base; ``launch`` is the EHR's launch id; a ``nonce`` is added when ``openid`` is asked so
    the id_token can be tied to this request (OIDC Core 3.1.2.1).
    """
    if config.authorization_endpoint is None:
        raise OAuthProtocolError(f"{server}'s SMART configuration has no authorization_endpoint")
    state, verifier = random_token(256), random_token(256)
    nonce = random_token(128) if "openid" in scope.split() else None
    client = OAuth2Client(
        None,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge_method="S256",
    )
    url, _ = client.create_authorization_url(
        config.authorization_endpoint,
        state=state,
        code_verifier=verifier,
        aud=audience,
        launch=launch,
        nonce=nonce,
    )
    return AuthorizationRequest(str(url), state, verifier, nonce)
