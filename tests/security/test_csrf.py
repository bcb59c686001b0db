"""CSRF: a session signed in through a real SMART launch (sandbox EHR over loopback HTTP) may
only change things with its token, from capture's own origin."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from capture_api.api.security.csrf import CSRF_HEADER, MISSING_OR_INVALID
from capture_api.context.sessions import COOKIE_NAME
from ehr_sandbox.server import SandboxServer
from tests.security.browser import launch_from_ehr, upload
from tests.security.conftest import APP, AppFactory


@pytest.fixture
def signed_in(make_app: AppFactory, ehr: SandboxServer) -> tuple[TestClient, str, str]:
    """(client, context id, CSRF token) after launching capture for Jürgen Müller.

    The client does *not* send the token by itself: each test decides what to send.
    """
    client = make_app(ehr=ehr)
    session = launch_from_ehr(client, ehr, "enc-muller")
    token = client.headers.pop(CSRF_HEADER)
    assert token == session["csrf_token"]
    return client, session["context_id"], token


def test_the_session_answer_carries_a_token_bound_to_the_session(
    make_app: AppFactory, ehr: SandboxServer, signed_in: tuple[TestClient, str, str]
) -> None:
    client, _, token = signed_in
    assert len(token) >= 43  # 256-bit HMAC, base64url
    assert token != client.cookies.get(COOKIE_NAME)
    assert client.get("/api/v1/session").json()["csrf_token"] == token  # stable
    other = make_app(ehr=ehr)
    assert launch_from_ehr(other, ehr, "enc-smith-a")["csrf_token"] != token


def test_upload_needs_the_right_token(signed_in: tuple[TestClient, str, str]) -> None:
    client, context_id, token = signed_in
    missing = upload(client, context_id, "csrf-1")
    assert missing.status_code == 403
    assert missing.json() == {"detail": MISSING_OR_INVALID}
    assert missing.json()["detail"] == "missing or invalid CSRF token: reload capture"  # contract
    wrong = upload(client, context_id, "csrf-2", **{CSRF_HEADER: token[:-2] + "AA"})
    assert wrong.status_code == 403 and wrong.json()["detail"] == MISSING_OR_INVALID
    right = upload(client, context_id, "csrf-3", **{CSRF_HEADER: token})
    assert right.status_code == 202, right.text
    # The refused ones were stopped before the route: nothing stored under their ids.
    assert client.get("/api/v1/captures/csrf-1").status_code == 404
    assert client.get("/api/v1/captures/csrf-2").status_code == 404


def test_every_unsafe_method_is_checked(signed_in: tuple[TestClient, str, str]) -> None:
    client, _, token = signed_in
    scan = client.post("/api/v1/scan", json={"identifier": "100001"})
    assert scan.status_code == 403 and scan.json()["detail"] == MISSING_OR_INVALID
    for method in ("PUT", "PATCH", "DELETE"):
        response = client.request(method, "/api/v1/session")
        assert response.status_code == 403, method
    scanned = client.post(
        "/api/v1/scan", json={"identifier": "100001"}, headers={CSRF_HEADER: token}
    )
    assert scanned.status_code == 201, scanned.text
    assert client.get("/api/v1/session").status_code == 200  # reads need no token


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://capture.test:8443"},  # another port is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling host name: SameSite=Lax lets it through
    ],
)
def test_cross_site_requests_are_refused_even_with_the_token(
    signed_in: tuple[TestClient, str, str], headers: dict[str, str]
) -> None:
    client, context_id, token = signed_in
    response = upload(client, context_id, "xsite", **headers, **{CSRF_HEADER: token})
    assert response.status_code == 403
    assert response.json()["detail"].startswith("cross-site request refused")
    assert APP in response.json()["detail"]  # tells the operator which origin is expected


def test_same_origin_browser_headers_with_the_token_pass(
    signed_in: tuple[TestClient, str, str],
) -> None:
    client, context_id, token = signed_in
    headers = {"Origin": APP, "Sec-Fetch-Site": "same-origin", CSRF_HEADER: token}
    assert upload(client, context_id, "same-origin", **headers).status_code == 202


def test_logout_takes_the_token_or_a_same_origin_form(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr)
    launch_from_ehr(client, ehr)
    token = client.headers.pop(CSRF_HEADER)  # the test decides what to send
    assert client.post("/logout").status_code == 403  # no token, no proof of origin
    assert client.post("/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/api/v1/session").status_code == 200  # still signed in
    assert client.post("/logout", headers={CSRF_HEADER: token}).status_code == 204
    assert client.get("/api/v1/session").status_code == 401

    launch_from_ehr(client, ehr)
    client.headers.pop(CSRF_HEADER)
    form = client.post("/logout", headers={"Origin": APP, "Sec-Fetch-Site": "same-origin"})
    assert form.status_code == 204  # <form method=post action=/logout> on capture's page
    assert client.get("/api/v1/session").status_code == 401


def test_requests_without_the_session_cookie_are_not_checked(make_app: AppFactory) -> None:
    """Integration mode: no EHR, no cookie, no ambient authority to forge."""
    client = make_app()
    created = client.post("/api/v1/contexts", json={"patient": {"id": "INT-1"}})
    assert created.status_code == 201, created.text


def test_replicas_sharing_the_secret_key_accept_each_others_tokens(
    make_app: AppFactory, ehr: SandboxServer, tmp_path: Path
) -> None:
    """Two processes on one database (here: two apps on one SQLite file) and one key."""
    key = "k" * 48
    first = make_app(ehr=ehr, data_dir=tmp_path / "shared", secret_key=key)
    session = launch_from_ehr(first, ehr)
    second = make_app(ehr=ehr, data_dir=tmp_path / "shared", secret_key=key)
    second.cookies.set(COOKIE_NAME, first.cookies[COOKIE_NAME])
    assert second.get("/api/v1/session").json()["csrf_token"] == session["csrf_token"]
    accepted = upload(
        second, session["context_id"], "replica", **{CSRF_HEADER: session["csrf_token"]}
    )
    assert accepted.status_code == 202, accepted.text

    other_key = make_app(ehr=ehr, data_dir=tmp_path / "shared", secret_key="o" * 48)
    other_key.cookies.set(COOKIE_NAME, first.cookies[COOKIE_NAME])
    refused = upload(
        other_key, session["context_id"], "replica-2", **{CSRF_HEADER: session["csrf_token"]}
    )
    assert refused.status_code == 403
