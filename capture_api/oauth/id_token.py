"""OpenID Connect id_token verification (OIDC Core 3.1.3.7), as SMART App Launch 2.2 asks
before an app believes ``fhirUser`` (app-launch.html, scopes-and-launch-context.html).

joserfc checks the signature against the server's ``jwks_uri`` keys and the registered claims
(``iss`` = the server's issuer, our client_id in ``aud``, ``exp``, ``sub``, ``nonce`` = the one
we sent). Kept by hand: the ``azp`` rule for several audiences (OIDC Core 3.1.3.7 steps 4-5),
which joserfc's claim registry has no notion of. authlib's own id_token classes sit on the
deprecated ``authlib.jose``.
"""

from __future__ import annotations

from typing import Any

import httpx
from joserfc import errors as jose_errors
from joserfc import jwk, jwt

from capture_api.oauth._http import get_json
from capture_api.oauth.discovery import SmartConfiguration
from capture_api.oauth.errors import IdTokenRejected, OAuthProtocolError

#: Algorithms we accept (OIDC Core default RS256, plus the SMART asymmetric pair and ES256).
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
#: Allowed clock skew when checking exp/iat.
CLOCK_SKEW_SECONDS = 60


def verify_id_token(
    id_token: str,
    config: SmartConfiguration,
    http: httpx.Client,
    *,
    client_id: str,
    nonce: str | None,
    server: str = "the EHR",
) -> dict[str, Any]:
    """The verified claims of ``id_token``; ``IdTokenRejected`` says which check failed."""
    if not config.jwks_uri or not config.issuer:
        raise OAuthProtocolError(
            f"{server} sent an id_token but publishes no issuer/jwks_uri to verify it"
        )
    document = get_json(http, config.jwks_uri, f"{server}'s signing key set (JWKS)")
    expected: dict[str, Any] = {
        "iss": {"essential": True, "value": config.issuer},
        "aud": {"essential": True, "value": client_id},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }
    if nonce is not None:
        expected["nonce"] = {"essential": True, "value": nonce}
    try:
        keys = jwk.KeySet.import_key_set(document)  # type: ignore[arg-type]
        token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
        jwt.JWTClaimsRegistry(leeway=CLOCK_SKEW_SECONDS, **expected).validate(token.claims)
    except jose_errors.BadSignatureError as exc:
        raise IdTokenRejected(
            f"{server}'s identity token has an invalid signature: sign-in refused"
        ) from exc
    except jose_errors.ClaimError as exc:
        if exc.claim != "nonce":
            raise _refused(server, exc) from exc
        raise IdTokenRejected(
            f"{server}'s identity token does not match this sign-in (nonce)"
        ) from exc
    except (jose_errors.JoseError, ValueError, KeyError, TypeError) as exc:
        raise _refused(server, exc) from exc
    claims = dict(token.claims)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenRejected(f"{server}'s identity token is meant for another app")
    return claims


def _refused(server: str, exc: Exception) -> IdTokenRejected:
    return IdTokenRejected(f"{server}'s identity token was refused ({type(exc).__name__}: {exc})")
