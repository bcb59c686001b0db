"""How a client proves who it is at a token endpoint: none, client_secret_basic, private_key_jwt.

The three methods SMART App Launch STU 2.2 names (client-public, client-confidential-symmetric,
client-confidential-asymmetric) and SMART Backend Services uses. authlib does the work:
``ClientAuth`` adds ``client_id`` to the body for public clients, and ``PrivateKeyJWT`` builds
the RFC 7523 assertion (iss = sub = client_id, aud = the token URL, a fresh ``jti``; signed by
joserfc). Two small pieces stay ours, each for a reason given where it is:

* ``_client_secret_basic``: authlib's Basic encoder skips RFC 6749 2.3.1's form-urlencoding;
* ``_SmartPrivateKeyJWT``: authlib's assertions live an hour, SMART allows five minutes.

``HttpxClientAuth`` lets authlib's ``ClientAuth`` sign httpx requests. authlib ships one in
``authlib.integrations.httpx_client``, but that module is deprecated (authlib moves to httpx2)
and would tie us to a client we do not use.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx
from joserfc import errors as jose_errors
from joserfc import jwk

from capture_api.oauth.errors import OAuthMisconfigured

with warnings.catch_warnings():
    # authlib.deprecate installs an "always" filter for its own warning class at import time;
    # catch_warnings confines it (and any import-time notice) to this block.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.oauth2.auth import ClientAuth
    from authlib.oauth2.rfc7523 import (
        PrivateKeyJWT,
        private_key_jwt_sign,
    )

#: SMART 2.2 client-confidential-asymmetric: ``exp`` no more than five minutes ahead.
ASSERTION_LIFETIME_SECONDS = 240


class AuthMethod(StrEnum):
    """``token_endpoint_auth_method`` values (RFC 7591 2) that capture speaks."""

    NONE = "none"  # public client: client_id in the body, PKCE only
    CLIENT_SECRET_BASIC = "client_secret_basic"
    PRIVATE_KEY_JWT = "private_key_jwt"  # RS384 (RSA key) or ES384 (P-384 key)


@dataclass(frozen=True)
class ClientCredentials:
    """Who we are to one token endpoint; secrets and keys stay out of ``repr``."""

    client_id: str
    method: AuthMethod = AuthMethod.NONE
    secret: str | None = field(default=None, repr=False)
    private_key_pem: bytes | None = field(default=None, repr=False)
    key_id: str | None = None

    def client_auth(self) -> HttpxClientAuth:
        """The authlib ``ClientAuth`` (as an ``httpx.Auth``) for this client."""
        secret, method = self.authlib_arguments()
        return HttpxClientAuth(self.client_id, secret, method)

    def authlib_arguments(self) -> tuple[Any, Any]:
        """``(client_secret, auth_method)`` as authlib's ``ClientAuth``/``OAuth2Client`` take them.

        For private_key_jwt authlib's "client secret" is the signing key.
        """
        if self.method is AuthMethod.NONE:
            return None, "none"
        if self.method is AuthMethod.CLIENT_SECRET_BASIC:
            if not self.secret:
                raise OAuthMisconfigured("capture is misconfigured: client_secret is missing")
            return self.secret, _client_secret_basic
        key, alg = signing_key(self.private_key_pem)
        return key, _SmartPrivateKeyJWT(alg, self.key_id or key.thumbprint())


def client_assertion(credentials: ClientCredentials, token_endpoint: str) -> str:
    """A private_key_jwt assertion for ``token_endpoint`` (client-confidential-asymmetric.html)."""
    key, alg = signing_key(credentials.private_key_pem)
    signer = _SmartPrivateKeyJWT(alg, credentials.key_id or key.thumbprint())
    return signer.sign(ClientAuth(credentials.client_id, key), token_endpoint)


def signing_key(pem: bytes | None) -> tuple[jwk.RSAKey | jwk.ECKey, str]:
    """The PEM private key and its SMART algorithm: RSA -> RS384, EC P-384 -> ES384.

    SMART 2.2 client-confidential-asymmetric: clients SHALL support RS384 and ES384.
    """
    if pem is None:
        raise OAuthMisconfigured("capture is misconfigured: private_key_file is missing")
    for key_type in (jwk.RSAKey, jwk.ECKey):
        try:
            key = key_type.import_key(pem)
        except (jose_errors.JoseError, ValueError, TypeError):
            continue
        if isinstance(key, jwk.RSAKey):
            return key, "RS384"
        if key.curve_name == "P-384":
            return key, "ES384"
        raise OAuthMisconfigured("capture is misconfigured: ES384 needs a P-384 key")
    raise OAuthMisconfigured("capture is misconfigured: private_key_file is not an RSA or EC key")


class HttpxClientAuth(ClientAuth, httpx.Auth):  # type: ignore[misc]
    """authlib's ``ClientAuth.prepare`` applied to an httpx request (a token endpoint POST)."""

    requires_request_body = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url, headers, body = self.prepare(
            request.method, str(request.url), request.headers, request.content.decode()
        )
        encoded = body.encode() if isinstance(body, str) else body
        headers["Content-Length"] = str(len(encoded))
        yield httpx.Request(
            request.method, url, headers=headers, content=encoded, extensions=request.extensions
        )


def _client_secret_basic(
    auth: Any, method: str, uri: str, headers: Any, body: Any
) -> tuple[str, Any, Any]:
    """HTTP Basic with both parts form-urlencoded first, as RFC 6749 2.3.1 requires.

    Kept by hand: authlib's ``encode_client_secret_basic`` sends them raw, which breaks a
    secret holding ``%`` or ``:`` at servers that decode as the RFC says.
    """
    raw = f"{quote(auth.client_id, safe='')}:{quote(auth.client_secret, safe='')}"
    headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode("ascii")
    return uri, headers, body


class _SmartPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """authlib's ``private_key_jwt`` with SMART's header and lifetime.

    Kept by hand (one override): ``PrivateKeyJWT.sign`` fixes ``exp`` one hour ahead, and
    SMART client-confidential-asymmetric allows at most five minutes; the header carries
    ``typ=JWT`` and our ``kid`` so the EHR picks the key from our JWKS.
    """

    name = AuthMethod.PRIVATE_KEY_JWT.value

    def __init__(self, alg: str, kid: str) -> None:
        super().__init__(alg=alg)
        self.kid = kid

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                header={"typ": "JWT", "kid": self.kid},
                expires_in=ASSERTION_LIFETIME_SECONDS,
            )
        )
