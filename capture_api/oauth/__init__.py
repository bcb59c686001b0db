"""capture's one OAuth 2.0 client: SMART App Launch, SMART Backend Services, the archive.

Built on authlib (grants, client authentication, PKCE, token parsing) and joserfc (JWT, JWK).
It knows nothing of capture's settings, database or routes: callers pass plain values (an
issuer, a ``ClientCredentials``, scopes, an ``httpx.Client``) and translate ``OAuthError``
into their own words. Modules:

* ``discovery``: ``.well-known/smart-configuration`` per issuer, cached (``Discovery``);
* ``client_auth``: none / client_secret_basic / private_key_jwt (``ClientCredentials``);
* ``token_endpoint``: the grants, one POST each (``TokenEndpoint``);
* ``authorization``: the authorization-code request with PKCE S256 and nonce;
* ``id_token``: OpenID Connect id_token verification;
* ``tokens``: client-credentials tokens reused until near expiry (``TokenCache``), and the
  ``httpx.Auth`` that sends them and retries once after a 401 (``ClientCredentialsAuth``);
* ``errors``: the error tree.

Everything importable from here is listed in ``__all__``; the rest is private.
"""

from capture_api.oauth.authorization import AuthorizationRequest, authorization_request
from capture_api.oauth.client_auth import (
    ASSERTION_LIFETIME_SECONDS,
    AuthMethod,
    ClientCredentials,
    client_assertion,
)
from capture_api.oauth.discovery import Discovery, SmartConfiguration
from capture_api.oauth.errors import (
    IdTokenRejected,
    OAuthError,
    OAuthMisconfigured,
    OAuthProtocolError,
    OAuthRefused,
    OAuthUnavailable,
)
from capture_api.oauth.id_token import verify_id_token
from capture_api.oauth.token_endpoint import Token, TokenEndpoint
from capture_api.oauth.tokens import ClientCredentialsAuth, ClientCredentialsGrant, TokenCache

__all__ = [
    "ASSERTION_LIFETIME_SECONDS",
    "AuthMethod",
    "AuthorizationRequest",
    "ClientCredentials",
    "ClientCredentialsAuth",
    "ClientCredentialsGrant",
    "Discovery",
    "IdTokenRejected",
    "OAuthError",
    "OAuthMisconfigured",
    "OAuthProtocolError",
    "OAuthRefused",
    "OAuthUnavailable",
    "SmartConfiguration",
    "Token",
    "TokenCache",
    "TokenEndpoint",
    "authorization_request",
    "client_assertion",
    "verify_id_token",
]
