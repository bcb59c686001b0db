"""SMART App Launch 2.2 end to end: the capture app (TestClient) against the EHR sandbox over
real loopback HTTP. The test plays the browser and follows every redirect by hand, so each hop
(launch -> authorize -> callback -> /) can be inspected and tampered with."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwk
from sqlmodel import select

from capture_api.api.app import create_app
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.context.sessions import COOKIE_NAME, SessionStore
from capture_api.context.smart import (
    LaunchError,
    SessionExpired,
    SmartClient,
    client_assertion,
    scope_allows,
)
from capture_api.oauth import OAuthProtocolError, SmartConfiguration
from capture_api.store.db import session as db_session
from capture_api.store.records import LaunchState, UserSession
from ehr_sandbox.auth_server import register_client, revoke_refresh_tokens
from ehr_sandbox.server import SandboxServer
from tests.responses import Response
from tests.security.browser import adopt_csrf_token

APP = "http://testserver"
CALLBACK = f"{APP}/launch/callback"
SCOPES = "launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs"
STANDALONE = "launch/patient openid fhirUser online_access patient/Patient.rs patient/Encounter.rs"


@pytest.fixture(scope="module")
def smart_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(app_launch_url=f"{APP}/launch") as sandbox:
        register_client(sandbox.state, "capture-public", CALLBACK)
        register_client(sandbox.state, "capture-basic", CALLBACK, secret="s3cr:et/+&")
        yield sandbox


@pytest.fixture(autouse=True)
def smart_reset_knobs(smart_sandbox: SandboxServer) -> Iterator[None]:
    yield
    for knob in ("token_ttl", "smart_grant_v1", "smart_faults"):
        smart_sandbox.state.extra.pop(knob, None)


AppFactory = Callable[..., TestClient]


@pytest.fixture
def smart_app(smart_sandbox: SandboxServer, tmp_path: Path) -> Iterator[AppFactory]:
    """Build a capture app (with the launch router) for one EHR registration."""
    clients: list[TestClient] = []

    def build(**registration: Any) -> TestClient:
        reg = EhrRegistration(
            iss=registration.pop("iss", smart_sandbox.fhir_base),
            client_id=registration.pop("client_id", "capture-public"),
            scopes=registration.pop("scopes", SCOPES),
            standalone_scopes=registration.pop("standalone_scopes", STANDALONE),
            **registration,
        )
        settings = Settings(
            data_dir=tmp_path / f"app{len(clients)}",
            worker_enabled=False,
            public_url=APP,
            ehrs=[reg],
            cookie_secure=False,  # TestClient speaks http://; the flag is checked separately
            session_idle_seconds=600,
        )
        client = TestClient(create_app(settings), base_url=APP)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


# --- the browser ---------------------------------------------------------------------------------


def _local(url: str) -> str:
    """An absolute URL on the capture app as TestClient wants it."""
    assert url.startswith(APP), url
    return url


def start_ehr_launch(
    client: TestClient, sandbox: SandboxServer, encounter: str = "enc-muller"
) -> str:
    """Click "Launch capture" in the EHR and follow to the authorize URL; returns it."""
    ehr = httpx.get(f"{sandbox.state.base_url}/ehr/launch/{encounter}")
    assert ehr.status_code == 302
    launch_url = ehr.headers["location"]
    assert launch_url.startswith(f"{APP}/launch?")
    response = client.get(_local(launch_url), follow_redirects=False)
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def authorize(url: str) -> str:
    """The EHR's authorization step (auto-approved); returns the redirect back to capture."""
    response = httpx.get(url)
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def finish(client: TestClient, callback_url: str) -> Response:
    response: Response = client.get(_local(callback_url), follow_redirects=False)
    return response


def ehr_launch(
    client: TestClient, sandbox: SandboxServer, encounter: str = "enc-muller"
) -> Response:
    return finish(client, authorize(start_ehr_launch(client, sandbox, encounter)))


def session_json(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/v1/session")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored_session(client: TestClient) -> tuple[SessionStore, UserSession]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    store = SessionStore(runtime.engine, runtime.settings)
    row = store.get(client.cookies.get(COOKIE_NAME))
    assert row is not None
    return store, row


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- EHR launch ----------------------------------------------------------------------------------


def test_ehr_launch_signs_in_with_the_launch_context(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    client = smart_app()
    seen: list[UserSession] = []

    def on_launch(row: UserSession) -> str:
        seen.append(row)
        return "ctx-42"

    client.app.state.on_launch = on_launch  # type: ignore[attr-defined]
    authorize_url = start_ehr_launch(client, smart_sandbox, "enc-okada")
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["aud"] == [smart_sandbox.fhir_base]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 40  # >= 122 bits in base64-ish
    assert "nonce" in query and "launch" in query
    assert "code_verifier" not in query

    response = finish(client, authorize(authorize_url))
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "access_token" not in response.text

    body = session_json(client)
    assert body["iss"] == smart_sandbox.fhir_base
    assert body["patient_fhir_id"] == "pat-okada"
    assert body["encounter_fhir_id"] == "enc-okada"
    assert body["fhir_user"] == f"{smart_sandbox.fhir_base}/Practitioner/prac-nina"
    assert body["need_patient_banner"] is True
    assert body["context_id"] == "ctx-42"
    assert "access_token" not in body and "refresh_token" not in body
    assert seen and seen[0].patient_fhir_id == "pat-okada"

    _, row = stored_session(client)
    info = smart_sandbox.state.tokens.lookup(row.access_token)
    assert info is not None and info.patient == "pat-okada" and info.encounter == "enc-okada"


def test_secure_cookie_flag_follows_settings(smart_app: AppFactory) -> None:
    client = smart_app()
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    settings = runtime.settings.model_copy(update={"cookie_secure": True})
    from fastapi import Response

    response = Response()
    SessionStore(runtime.engine, settings).set_cookie(response, "x")
    header = response.headers["set-cookie"]
    assert "Secure" in header and "HttpOnly" in header
    assert f"Max-Age={settings.session_ttl_seconds}" in header


def test_standalone_launch_uses_the_patient_picker(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    client = smart_app()
    response = client.get(
        "/launch", params={"iss": smart_sandbox.fhir_base}, follow_redirects=False
    )
    assert response.status_code == 302
    authorize_url = response.headers["location"]
    query = parse_qs(urlsplit(authorize_url).query)
    assert "launch" not in query
    assert "launch/patient" in query["scope"][0].split()
    picker = httpx.get(authorize_url)
    assert picker.status_code == 200 and "Choose a patient" in picker.text
    link = next(
        a.split("'")[0].replace("&amp;", "&")
        for a in picker.text.split("href='")[1:]
        if "patient=pat-ngata" in a
    )
    back = httpx.get(f"{smart_sandbox.state.base_url}{link}")
    assert back.status_code == 302
    assert finish(client, back.headers["location"]).status_code == 303
    body = session_json(client)
    assert body["patient_fhir_id"] == "pat-ngata"
    assert body["encounter_fhir_id"] is None
    assert body["fhir_user"].endswith("/Practitioner/prac-nina")


def test_standalone_without_iss_uses_the_only_registered_ehr(smart_app: AppFactory) -> None:
    response = smart_app().get("/launch", follow_redirects=False)
    assert response.status_code == 302
    assert "/auth/authorize?" in response.headers["location"]


# --- refusals ------------------------------------------------------------------------------------


def test_unknown_iss_is_refused_before_any_redirect(smart_app: AppFactory) -> None:
    client = smart_app()
    response = client.get(
        "/launch", params={"iss": "http://127.0.0.1:9/fhir", "launch": "x"}, follow_redirects=False
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "not registered with capture" in response.text


def test_wrong_state_is_rejected(smart_app: AppFactory, smart_sandbox: SandboxServer) -> None:
    client = smart_app()
    callback = authorize(start_ehr_launch(client, smart_sandbox))
    forged = with_query(callback, state="forged-state-value")
    response = finish(client, forged)
    assert response.status_code == 403
    assert "unknown or was already used" in response.text
    assert COOKIE_NAME not in client.cookies


def test_a_refused_sign_in_logs_its_reason_without_the_launch_values(
    smart_app: AppFactory, smart_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = smart_app()
    callback = authorize(start_ehr_launch(client, smart_sandbox))
    forged = with_query(callback, state="forged-state-value")
    with caplog.at_level(logging.WARNING, logger="capture.launch"):
        assert finish(client, forged).status_code == 403
        denied = with_query(callback, error="access_denied", error_description="Mr X said no")
        assert finish(client, denied).status_code == 403
    lines = [r.getMessage() for r in caplog.records if r.name == "capture.launch"]
    assert lines == [
        "sign-in refused (HTTP 403): this sign-in is unknown or was already used",
        "sign-in refused (HTTP 403): the EHR answered error='access_denied'",
    ]
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    assert not any(code in line or "forged-state" in line or "Mr X" in line for line in lines)


def test_state_is_single_use(smart_app: AppFactory, smart_sandbox: SandboxServer) -> None:
    client = smart_app()
    callback = authorize(start_ehr_launch(client, smart_sandbox))
    assert finish(client, callback).status_code == 303
    again = finish(client, callback)
    assert again.status_code == 403


def test_stale_launch_state_is_refused(smart_app: AppFactory, smart_sandbox: SandboxServer) -> None:
    client = smart_app()
    callback = authorize(start_ehr_launch(client, smart_sandbox))
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with db_session(engine) as s:
        row = s.exec(select(LaunchState)).one()
        row.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)
        s.add(row)
        s.commit()
    response = finish(client, callback)
    assert response.status_code == 403 and "took too long" in response.text


def test_pkce_verifier_is_checked_by_the_token_endpoint(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    client = smart_app()
    callback = authorize(start_ehr_launch(client, smart_sandbox))
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with db_session(engine) as s:
        row = s.exec(select(LaunchState)).one()
        row.code_verifier = "A" * 64
        s.add(row)
        s.commit()
    response = finish(client, callback)
    assert response.status_code == 403
    assert "invalid_grant" in response.text and "PKCE" in response.text
    assert COOKIE_NAME not in client.cookies


def test_tampered_aud_is_refused_by_the_ehr(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    client = smart_app()
    url = with_query(start_ehr_launch(client, smart_sandbox), aud="http://evil.example/fhir")
    response = httpx.get(url)
    assert response.status_code == 400
    assert "aud mismatch" in response.text
    assert "location" not in response.headers


def test_registration_with_the_wrong_iss_gets_an_aud_mismatch(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    """Registered as ``localhost`` while the EHR knows itself as ``127.0.0.1``: aud differs."""
    alias = smart_sandbox.fhir_base.replace("127.0.0.1", "localhost")
    client = smart_app(iss=alias)
    response = client.get("/launch", params={"iss": alias}, follow_redirects=False)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["aud"] == [alias]
    refused = httpx.get(response.headers["location"])
    assert refused.status_code == 400 and "aud mismatch" in refused.text


def test_ehr_error_is_shown(smart_app: AppFactory) -> None:
    client = smart_app()
    response = client.get(
        "/launch/callback",
        params={"error": "access_denied", "error_description": "<b>no</b>", "state": "x"},
    )
    assert response.status_code == 403
    assert "access_denied" in response.text and "&lt;b&gt;" in response.text


@pytest.mark.parametrize(
    ("fault", "message"),
    [("id_token_bad_signature", "invalid signature"), ("id_token_wrong_nonce", "nonce")],
)
def test_bad_id_token_is_rejected(
    smart_app: AppFactory, smart_sandbox: SandboxServer, fault: str, message: str
) -> None:
    smart_sandbox.state.extra["smart_faults"] = {fault}
    client = smart_app()
    response = ehr_launch(client, smart_sandbox)
    assert response.status_code == 403
    assert message in response.text
    assert COOKIE_NAME not in client.cookies


def test_v1_scopes_are_accepted_as_v2(smart_app: AppFactory, smart_sandbox: SandboxServer) -> None:
    smart_sandbox.state.extra["smart_grant_v1"] = True
    client = smart_app()
    assert ehr_launch(client, smart_sandbox).status_code == 303
    _, row = stored_session(client)
    assert "patient/Patient.read" in row.scope.split()
    assert scope_allows(row.scope, "patient/Patient.rs")
    assert scope_allows(row.scope, "patient/Encounter.rs")
    assert not scope_allows(row.scope, "patient/Patient.cu")
    assert not scope_allows(row.scope, "user/Patient.rs")
    assert scope_allows("patient/*.read", "patient/Observation.rs")


# --- tokens over time ----------------------------------------------------------------------------


def test_expired_access_token_is_refreshed_then_revocation_expires_the_session(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    smart_sandbox.state.extra["token_ttl"] = 2  # under the 30 s margin: always refresh
    client = smart_app()
    assert ehr_launch(client, smart_sandbox).status_code == 303
    store, row = stored_session(client)
    first = row.access_token
    fresh = store.access_token(row)
    assert fresh != first
    info = smart_sandbox.state.tokens.lookup(fresh)
    assert info is not None and info.patient == "pat-muller"
    assert store.access_token(row) != fresh  # rotated refresh token worked again

    revoke_refresh_tokens(smart_sandbox.state)
    with pytest.raises(SessionExpired, match="open capture again from the patient's chart"):
        store.access_token(row)
    assert client.get("/api/v1/session").status_code == 401


def test_valid_access_token_is_used_as_is(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    client = smart_app()
    assert ehr_launch(client, smart_sandbox).status_code == 303
    store, row = stored_session(client)
    assert store.access_token(row) == row.access_token


def test_no_refresh_token_means_session_expired(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    smart_sandbox.state.extra["token_ttl"] = 2
    client = smart_app(scopes=SCOPES.replace(" online_access", ""))
    assert ehr_launch(client, smart_sandbox).status_code == 303
    store, row = stored_session(client)
    assert row.refresh_token is None
    with pytest.raises(SessionExpired):
        store.access_token(row)


# --- confidential clients ------------------------------------------------------------------------


def test_client_secret_basic(smart_app: AppFactory, smart_sandbox: SandboxServer) -> None:
    client = smart_app(
        client_id="capture-basic",
        auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC,
        client_secret="s3cr:et/+&",
    )
    assert ehr_launch(client, smart_sandbox).status_code == 303
    assert session_json(client)["patient_fhir_id"] == "pat-muller"


def test_client_secret_basic_wrong_secret(
    smart_app: AppFactory, smart_sandbox: SandboxServer
) -> None:
    client = smart_app(
        client_id="capture-basic",
        auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC,
        client_secret="wrong",
    )
    response = ehr_launch(client, smart_sandbox)
    assert response.status_code == 403 and "invalid_client" in response.text


def _jwt_client(
    sandbox: SandboxServer, tmp_path: Path, kind: str
) -> tuple[str, Path, jwk.RSAKey | jwk.ECKey]:
    key: jwk.RSAKey | jwk.ECKey
    if kind == "RSA":
        key = jwk.RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    else:
        key = jwk.ECKey.generate_key("P-384", parameters={"kid": "ec-1"})
    pem = tmp_path / f"{kind}.pem"
    pem.write_bytes(key.as_pem(private=True))
    client_id = f"capture-jwt-{kind}"
    register_client(
        sandbox.state, client_id, CALLBACK, jwks=jwk.KeySet([key]).as_dict(private=False)
    )
    return client_id, pem, key


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_private_key_jwt(
    smart_app: AppFactory, smart_sandbox: SandboxServer, tmp_path: Path, kind: str
) -> None:
    client_id, pem, key = _jwt_client(smart_sandbox, tmp_path, kind)
    client = smart_app(
        client_id=client_id,
        auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key_file=pem,
        private_key_id=key.kid,
    )
    assert ehr_launch(client, smart_sandbox, "enc-smith-b").status_code == 303
    assert session_json(client)["encounter_fhir_id"] == "enc-smith-b"
    smart_sandbox.state.extra["token_ttl"] = 2
    client2 = smart_app(
        client_id=client_id,
        auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key_file=pem,
        private_key_id=key.kid,
    )
    assert ehr_launch(client2, smart_sandbox).status_code == 303
    store, row = stored_session(client2)
    old = row.access_token
    assert store.access_token(row) != old  # the refresh grant authenticates with a JWT too


def test_private_key_jwt_assertion_replay_is_refused(
    smart_sandbox: SandboxServer, tmp_path: Path
) -> None:
    client_id, pem, key = _jwt_client(smart_sandbox, tmp_path, "RSA")
    reg = EhrRegistration(
        iss=smart_sandbox.fhir_base,
        client_id=client_id,
        auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key_file=pem,
        private_key_id=key.kid,
    )
    token_url = f"{smart_sandbox.state.base_url}/auth/token"
    assertion = client_assertion(reg, token_url)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "nope",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = httpx.post(token_url, data=form)
    assert first.status_code == 400 and first.json()["error"] == "invalid_grant"  # auth passed
    assert first.headers["cache-control"] == "no-store"
    second = httpx.post(token_url, data=form)
    assert second.status_code == 401 and "replayed" in second.json()["error_description"]


# --- session lifetime ----------------------------------------------------------------------------


def test_logout_clears_the_session(smart_app: AppFactory, smart_sandbox: SandboxServer) -> None:
    client = smart_app()
    assert ehr_launch(client, smart_sandbox).status_code == 303
    cookie = client.cookies.get(COOKIE_NAME)
    adopt_csrf_token(client)  # the page sends X-CSRF-Token with every POST
    response = client.post("/logout")
    assert response.status_code == 204
    assert f'{COOKIE_NAME}=""' in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert client.get("/api/v1/session").status_code == 401
    client.cookies.set(COOKIE_NAME, cookie or "")
    assert client.get("/api/v1/session").status_code == 401  # gone server-side too


def test_idle_session_expires(smart_app: AppFactory, smart_sandbox: SandboxServer) -> None:
    client = smart_app()
    assert ehr_launch(client, smart_sandbox).status_code == 303
    store, row = stored_session(client)
    with db_session(store.engine) as s:
        stored = s.get(UserSession, row.id)
        assert stored is not None
        stored.last_seen_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=601)
        s.add(stored)
        s.commit()
    response = client.get("/api/v1/session")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("not signed in")


def test_session_ttl_expires(smart_app: AppFactory, smart_sandbox: SandboxServer) -> None:
    client = smart_app()
    assert ehr_launch(client, smart_sandbox).status_code == 303
    store, _ = stored_session(client)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=store.settings.session_ttl_seconds)
    clocked = SessionStore(store.engine, store.settings, now=lambda: later)
    assert clocked.get(client.cookies.get(COOKIE_NAME)) is None


def test_not_signed_in(smart_app: AppFactory) -> None:
    response = smart_app().get("/api/v1/session")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "not signed in: open capture from the patient's chart in the EHR"
    }


# --- discovery (no server needed) -----------------------------------------------------------------


def _settings_for(iss: str) -> Settings:
    return Settings(public_url=APP, ehrs=[EhrRegistration(iss=iss, client_id="c")])


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_discovery_refuses_plain_only_pkce() -> None:
    doc = {
        "authorization_endpoint": "https://ehr/a",
        "token_endpoint": "https://ehr/t",
        "code_challenge_methods_supported": ["plain"],
    }
    with pytest.raises(OAuthProtocolError, match="S256"):
        SmartConfiguration.parse(doc)
    client = SmartClient(
        _settings_for("https://ehr/fhir"), http=_mock(lambda _: httpx.Response(200, json=doc))
    )
    with pytest.raises(LaunchError, match="S256"):
        client.begin("https://ehr/fhir", "l1")


def test_discovery_must_be_json() -> None:
    client = SmartClient(
        _settings_for("https://ehr/fhir"),
        http=_mock(lambda _: httpx.Response(200, text="<html>login</html>")),
    )
    with pytest.raises(LaunchError, match="not JSON"):
        client.discover("https://ehr/fhir")


def test_unreachable_ehr_is_a_readable_launch_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = SmartClient(_settings_for("https://ehr/fhir"), http=_mock(refuse))
    with pytest.raises(LaunchError, match="could not reach") as info:
        client.begin("https://ehr/fhir", None)
    assert info.value.status_code == 502
