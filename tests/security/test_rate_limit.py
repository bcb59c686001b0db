"""Rate limits: 429 with Retry-After after N sign-ins, scans or uploads; per client and session."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from capture_api.api.security.rate_limit import TokenBuckets
from capture_api.config import Settings
from ehr_sandbox.server import SandboxServer
from tests.responses import Response
from tests.security.browser import launch_from_ehr, upload
from tests.security.conftest import AppFactory

PROXY = ("10.0.0.5", 40000)


def test_sign_in_attempts_are_limited_with_a_page_and_retry_after(make_app: AppFactory) -> None:
    client = make_app(rate_limit_login_per_minute=3)
    attempts = [client.get("/launch", follow_redirects=False) for _ in range(3)]
    assert [a.status_code for a in attempts] == [400, 400, 400]  # refused, but counted
    limited = client.get("/launch/callback", params={"code": "x", "state": "y"})
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/html")
    assert "too many sign-in attempts" in limited.text
    assert 1 <= int(limited.headers["retry-after"]) <= 20  # 3/min: a token every 20 s
    assert client.get("/healthz").status_code == 200  # other routes are not limited


def test_an_upload_burst_is_limited_per_session(make_app: AppFactory, ehr: SandboxServer) -> None:
    client = make_app(ehr=ehr, rate_limit_uploads_per_minute=5)
    context_id = launch_from_ehr(client, ehr)["context_id"]
    answers = [upload(client, context_id, f"burst-{i}").status_code for i in range(6)]
    assert answers == [202] * 5 + [429]
    limited = upload(client, context_id, "burst-again")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 12  # 5/min: a token every 12 s
    assert "wait" in limited.json()["detail"] and "send again" in limited.json()["detail"]
    assert client.get("/api/v1/captures/burst-5").status_code == 404  # refused before storing


def test_wristband_scans_have_their_own_limit(make_app: AppFactory, ehr: SandboxServer) -> None:
    client = make_app(ehr=ehr, rate_limit_login_per_minute=2)  # the launch spends both tokens
    launch_from_ehr(client, ehr)
    scans = [client.post("/api/v1/scan", json={"identifier": "100001"}) for _ in range(3)]
    assert [s.status_code for s in scans] == [201, 201, 429]
    assert "scan again" in scans[2].json()["detail"]


def test_clients_behind_a_trusted_proxy_are_told_apart(make_app: AppFactory) -> None:
    client = make_app(client=PROXY, trusted_proxies="10.0.0.0/24", rate_limit_login_per_minute=1)
    assert launch(client, "198.51.100.7").status_code == 400
    assert launch(client, "198.51.100.7").status_code == 429
    assert launch(client, "198.51.100.8").status_code == 400  # another phone: its own bucket


def test_forwarded_for_is_ignored_from_an_untrusted_peer(make_app: AppFactory) -> None:
    """Without CAPTURE_TRUSTED_PROXIES a client cannot dodge the limit by inventing addresses."""
    client = make_app(client=PROXY, rate_limit_login_per_minute=1)
    assert launch(client, "198.51.100.7").status_code == 400
    assert launch(client, "198.51.100.8").status_code == 429


def test_zero_turns_a_limit_off(make_app: AppFactory) -> None:
    client = make_app(rate_limit_login_per_minute=0)
    assert {client.get("/launch").status_code for _ in range(40)} == {400}


def test_a_bad_trusted_proxy_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="CAPTURE_TRUSTED_PROXIES"):
        Settings(trusted_proxies=["*"])


def launch(client: TestClient, forwarded_for: str) -> Response:
    response: Response = client.get("/launch", headers={"X-Forwarded-For": forwarded_for})
    return response


# --- the bucket itself ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_lets_a_burst_through_then_paces() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, clock=clock)  # one a second, bursts of 60
    assert [buckets.take("a") for _ in range(60)] == [0.0] * 60
    assert buckets.take("a") == pytest.approx(1.0)
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("b") == 0.0  # keys are independent
    clock.now += 3600
    assert [buckets.take("a") for _ in range(60)] == [0.0] * 60  # refills to the burst only
    assert buckets.take("a") > 0


def test_bucket_memory_is_bounded() -> None:
    buckets = TokenBuckets(1, clock=Clock(), max_keys=100)
    for i in range(1000):
        buckets.take(f"ip:{i}")
    assert len(buckets) == 100
