"""The errors of the OAuth client, as one tree (callers translate them into their own)::

    OAuthError (a CaptureError)
    ├── OAuthUnavailable     transient: unreachable, timeout, HTTP 5xx/408/429 -> retry later
    ├── OAuthRefused         the token endpoint answered an RFC 6749 5.2 error (our grant or
    │                        credentials were refused) -> do not retry with the same ones
    ├── OAuthMisconfigured   our side: a secret or key is missing or unusable
    ├── OAuthProtocolError   the server answered, but not per the protocol (not JSON, no
    │                        token_endpoint, no PKCE S256, no access_token, not Bearer)
    └── IdTokenRejected      an OpenID Connect id_token failed verification

Messages are sentences for a person; they name the server (``"the EHR"``, ``"the archive"``)
as the caller labelled it and never contain a token, a secret or a key.
"""

from __future__ import annotations

from capture_api.exceptions import CaptureError


class OAuthError(CaptureError):
    """Base of every OAuth client failure."""


class OAuthUnavailable(OAuthError):
    """The server could not be reached or answered 5xx/408/429: a later retry may work."""


class OAuthRefused(OAuthError):
    """The token endpoint refused the request (RFC 6749 section 5.2).

    ``detail`` is ``"error: description"`` (or ``"HTTP 401"`` when the answer had no error
    code) so a caller can say it in its own words: a refused sign-in, refused backend
    credentials, a refused archive client.
    """

    def __init__(
        self,
        server: str,
        *,
        status: int,
        error: str | None = None,
        description: str | None = None,
    ) -> None:
        self.status = status
        self.error = error[:64] if error else None  # error codes are short ASCII (5.2)
        self.description = description[:200] if description else None
        super().__init__(f"{server}'s token endpoint refused the request ({self.detail})")

    @property
    def detail(self) -> str:
        if self.error is None:
            return f"HTTP {self.status}"
        return f"{self.error}: {self.description}" if self.description else self.error


class OAuthMisconfigured(OAuthError):
    """Our own configuration cannot work (a missing secret, an unreadable key)."""


class OAuthProtocolError(OAuthError):
    """The server answered something the protocol does not allow (its side must change)."""


class IdTokenRejected(OAuthError):
    """The id_token is not one we can believe (signature, iss, aud, azp, exp, nonce)."""
