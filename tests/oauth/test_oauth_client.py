"""capture's one OAuth client (``capture_api.oauth``) against the EHR sandbox over real HTTP:
one discovery per issuer shared by the launch, session refresh and notifications; one
client-credentials token cache that reuses, expires and invalidates; RFC 6749 2.3.1 Basic;
the SMART private_key_jwt assertion; the error tree; and the package's layering."""

from __future__ import annotations

import ast
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwk, jwt

import capture_api.oauth
from capture_api import oauth
from capture_api.api.app import create_app
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.context.sessions import COOKIE_NAME, SessionStore
from capture_api.context.smart import SmartClient
from capture_api.notify.backend_auth import BackendTokens
from capture_api.oauth import _http
from capture_api.oauth import discovery as discovery_module
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.server import SandboxServer
from tests.security.browser import launch_from_ehr

APP = "http://testserver"
CALLBACK = f"{APP}/launch/callback"
SECRET = "p%41ss:w/rd+ &"  # RFC 6749 2.3.1: only form-urlencoding gets this through intact
SCOPES = "launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs"


@pytest.fixture(scope="module")
def ehr() -> Iterator[SandboxServer]:
    with SandboxServer(app_launch_url=f"{APP}/launch") as sandbox:
        register_client(sandbox.state, "capture-oauth", CALLBACK, secret=SECRET)
        yield sandbox


@pytest.fixture(autouse=True)
def reset_knobs(ehr: SandboxServer) -> Iterator[None]:
    yield
    for knob in ("token_ttl", "backend_token_ttl", "backend_tokens_issued"):
        ehr.state.extra.pop(knob, None)


@pytest.fixture
def discoveries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SMART configuration GET made through ``capture_api.oauth`` (the real one runs)."""
    fetched: list[str] = []
    real = _http.get_json  # the function discovery imported; the patch replaces its name there

    def counting(http: httpx.Client, url: str, what: str) -> dict[str, Any]:
        fetched.append(url)
        return real(http, url, what)

    monkeypatch.setattr(discovery_module, "get_json", counting)
    return fetched


def registration(ehr: SandboxServer, **changes: Any) -> EhrRegistration:
    values: dict[str, Any] = {
        "iss": ehr.fhir_base,
        "client_id": "capture-oauth",
        "auth_method": ClientAuthMethod.CLIENT_SECRET_BASIC,
        "client_secret": SECRET,
        "scopes": SCOPES,
        "notify": ["Media"],
    }
    return EhrRegistration(**{**values, **changes})


def issued(ehr: SandboxServer) -> int:
    return int(ehr.state.extra.get("backend_tokens_issued", {}).get("capture-oauth", 0))


# --- one discovery ---------------------------------------------------------------------------


def test_launch_refresh_and_notifications_share_one_discovery(
    ehr: SandboxServer, tmp_path: Path, discoveries: list[str]
) -> None:
    """The runtime's Discovery serves the launch (authorize + code exchange), the session's
    refresh and the notification worker's backend token: one GET for all of them."""
    ehr.state.extra["token_ttl"] = 2  # under the refresh margin: the next use refreshes
    settings = Settings(
        data_dir=tmp_path,
        worker_enabled=False,
        public_url=APP,
        ehrs=[registration(ehr)],
        cookie_secure=False,
    )
    with TestClient(create_app(settings), base_url=APP) as client:
        client.app.state.on_launch = lambda row: None  # type: ignore[attr-defined]
        launch_from_ehr(client, ehr)
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        store = SessionStore(runtime.engine, runtime.settings, discovery=runtime.discovery)
        row = store.get(client.cookies.get(COOKIE_NAME))
        assert row is not None
        first = row.access_token
        assert store.access_token(row) != first  # refreshed, with client_secret_basic
        assert runtime.notifier is not None
        token = runtime.notifier.tokens.get(settings.ehrs[0])
        info = ehr.state.tokens.lookup(token)
        assert info is not None and info.scope.startswith("system/")
    assert discoveries == [f"{ehr.fhir_base}/.well-known/smart-configuration"]


def test_discovery_is_fetched_again_after_its_ttl(
    ehr: SandboxServer, discoveries: list[str]
) -> None:
    now = [1000.0]
    shared = oauth.Discovery(ttl=60, clock=lambda: now[0])
    settings = Settings(public_url=APP, ehrs=[registration(ehr)])
    with SmartClient(settings, discovery=shared) as smart:
        smart.begin(ehr.fhir_base, None)
        with httpx.Client() as http:
            BackendTokens(http, shared).get(settings.ehrs[0])
        assert len(discoveries) == 1
        now[0] += 61
        assert smart.discover(ehr.fhir_base).token_endpoint.endswith("/auth/token")
    assert len(discoveries) == 2


# --- one token cache -------------------------------------------------------------------------


def grant(ehr: SandboxServer, secret: str = SECRET) -> oauth.ClientCredentialsGrant:
    credentials = oauth.ClientCredentials(
        "capture-oauth", oauth.AuthMethod.CLIENT_SECRET_BASIC, secret=secret
    )
    return oauth.ClientCredentialsGrant(
        f"{ehr.state.base_url}/auth/token", credentials, "system/Media.cu", server="the EHR"
    )


def test_token_cache_reuses_then_renews_before_expiry(ehr: SandboxServer) -> None:
    ehr.state.extra["backend_token_ttl"] = 2  # margin = half the lifetime: 1 s
    cache = oauth.TokenCache()
    with httpx.Client() as http:
        token = cache.get(grant(ehr), http)
        assert cache.get(grant(ehr), http) == token  # an equal grant is the same key
        assert issued(ehr) == 1
        time.sleep(1.2)
        renewed = cache.get(grant(ehr), http)
    assert renewed != token and issued(ehr) == 2


def test_token_cache_is_shared_and_invalidated_once(ehr: SandboxServer) -> None:
    cache = oauth.TokenCache()
    with httpx.Client() as http:
        one, two = BackendTokens(http, cache=cache), BackendTokens(http, cache=cache)
        token = one.get(registration(ehr))
        assert two.get(registration(ehr)) == token and issued(ehr) == 1
        two.invalidate(registration(ehr), stale="some-older-token")  # not the cached one
        assert one.get(registration(ehr)) == token and issued(ehr) == 1
        two.invalidate(registration(ehr), stale=token)
        fresh = one.get(registration(ehr))
    assert fresh != token and issued(ehr) == 2


def test_a_different_secret_is_a_different_cache_entry(ehr: SandboxServer) -> None:
    cache = oauth.TokenCache()
    with httpx.Client() as http:
        cache.get(grant(ehr), http)
        with pytest.raises(oauth.OAuthRefused) as refused:
            cache.get(grant(ehr, secret="wrong"), http)
    assert refused.value.error == "invalid_client" and refused.value.status == 401
    assert str(refused.value).startswith("the EHR's token endpoint refused the request")


def test_client_secret_basic_is_form_urlencoded(ehr: SandboxServer) -> None:
    """RFC 6749 2.3.1; authlib's own encoder sends the secret raw, and ``%41`` would arrive
    as ``A`` at a server that decodes as the RFC says (the sandbox does)."""
    request = httpx.Request("POST", "http://as.example/token", content=b"grant_type=x")
    signed = next(grant(ehr).credentials.client_auth().auth_flow(request))
    encoded = base64.b64encode(b"capture-oauth:p%2541ss%3Aw%2Frd%2B%20%26").decode()
    assert signed.headers["authorization"] == f"Basic {encoded}"
    assert signed.content == b"grant_type=x"
    with httpx.Client() as http:
        token = oauth.TokenCache().get(grant(ehr), http)
    assert ehr.state.tokens.lookup(token) is not None


# --- private_key_jwt -------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "alg"), [("RSA", "RS384"), ("EC", "ES384")])
def test_private_key_jwt_assertion_follows_smart(kind: str, alg: str) -> None:
    key: jwk.RSAKey | jwk.ECKey = (
        jwk.RSAKey.generate_key(2048) if kind == "RSA" else jwk.ECKey.generate_key("P-384")
    )
    credentials = oauth.ClientCredentials(
        "capture-jwt",
        oauth.AuthMethod.PRIVATE_KEY_JWT,
        private_key_pem=key.as_pem(private=True),
        key_id="k-1",
    )
    token_url = "https://ehr.example/auth/token"
    first = jwt.decode(oauth.client_assertion(credentials, token_url), key, algorithms=[alg])
    second = jwt.decode(oauth.client_assertion(credentials, token_url), key, algorithms=[alg])
    assert first.header == {"alg": alg, "typ": "JWT", "kid": "k-1"}
    claims = first.claims
    assert claims["iss"] == claims["sub"] == "capture-jwt" and claims["aud"] == token_url
    assert 0 < claims["exp"] - time.time() <= 300  # client-confidential-asymmetric: <= 5 min
    assert claims["jti"] != second.claims["jti"] and len(claims["jti"]) >= 32


def test_a_p256_key_is_refused_for_private_key_jwt() -> None:
    pem = jwk.ECKey.generate_key("P-256").as_pem(private=True)
    credentials = oauth.ClientCredentials(
        "c", oauth.AuthMethod.PRIVATE_KEY_JWT, private_key_pem=pem
    )
    with pytest.raises(oauth.OAuthMisconfigured, match="ES384 needs a P-384 key"):
        oauth.client_assertion(credentials, "https://ehr.example/token")


# --- errors ----------------------------------------------------------------------------------


def test_a_refused_refresh_names_the_rfc_6749_error(ehr: SandboxServer) -> None:
    with httpx.Client() as http, pytest.raises(oauth.OAuthRefused) as refused:
        oauth.TokenEndpoint(
            f"{ehr.state.base_url}/auth/token", grant(ehr).credentials, http, server="the EHR"
        ).refresh("not-a-refresh-token")
    assert refused.value.error == "invalid_grant" and refused.value.status == 400
    assert "not-a-refresh-token" not in str(refused.value)


@pytest.mark.parametrize("status", [503, 429, 408])
def test_transient_token_answers_are_unavailable(status: int) -> None:
    """A real server here cannot be made to answer these, so a mock transport does."""
    answer = httpx.Response(status, json={"error": "temporarily_unavailable"})
    http = httpx.Client(transport=httpx.MockTransport(lambda _: answer))
    endpoint = oauth.TokenEndpoint(
        "https://as.example/token", oauth.ClientCredentials("c"), http, server="the archive"
    )
    with pytest.raises(oauth.OAuthUnavailable, match=f"the archive's token endpoint .*{status}"):
        endpoint.client_credentials("system/*.write")


def test_a_non_bearer_token_is_refused() -> None:
    answer = httpx.Response(200, json={"access_token": "t", "token_type": "mac"})
    http = httpx.Client(transport=httpx.MockTransport(lambda _: answer))
    endpoint = oauth.TokenEndpoint("https://as.example/token", oauth.ClientCredentials("c"), http)
    with pytest.raises(oauth.OAuthProtocolError, match="not Bearer"):
        endpoint.client_credentials(None)


# --- the package's shape ---------------------------------------------------------------------

ALLOWED = ("capture_api.exceptions", "capture_api.oauth")


def test_oauth_imports_nothing_of_capture_but_its_exceptions() -> None:
    """Layering: callers pass plain values; the package never reaches back into capture."""
    package = Path(capture_api.oauth.__file__).parent
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name == "capture_api" or name.startswith("capture_api."):
                    assert name.startswith(ALLOWED), f"{module.name} imports {name}"


def test_public_names_are_exactly_all() -> None:
    public = {n for n in vars(oauth) if not n.startswith("_")}
    modules = {"authorization", "client_auth", "discovery", "errors", "id_token"}
    modules |= {"token_endpoint", "tokens"}
    assert public - modules == set(oauth.__all__)
