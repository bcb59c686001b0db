"""Issue 19, deliver 4: the worklist on the phone follows another device's claim.

Where the worklist offers the UPS event subscription (PS3.18 11.10, a WebSocket per 8.10.4),
capture subscribes and answers the phones' polls from a copy the Event Reports keep fresh:
no UPS-RS Search per poll, and a claim by another device shows at the next poll. Where it
offers none, every poll is a Search (the same result, more load on the worklist).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect

from capture_api.api.app import create_app
from capture_api.api.routes import worklist as worklist_routes
from capture_api.config import Settings
from capture_api.runtime import Runtime
from ehr_sandbox import ups_events
from ehr_sandbox.server import SandboxServer
from ehr_sandbox.ups_server import calls, reset_workitems, workitem_uid

DERM = "DERM-PHONE-01"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_worklist(sandbox: SandboxServer) -> None:
    reset_workitems(sandbox.state)


@contextmanager
def _phone(tmp: Path, sandbox: SandboxServer, aet: str) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp,
        poll_seconds=0.05,
        worklist_url=f"{sandbox.state.base_url}/dicom-web",
        worklist_station_code=DERM,
        worklist_aet=aet,
    )
    app = create_app(settings)
    app.include_router(worklist_routes.router, prefix="/api/v1")
    with TestClient(app) as client:
        yield client


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _until(done: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _searches(sandbox: SandboxServer) -> int:
    return sum(1 for call in calls(sandbox.state) if call[0] == "search")


def _uids(client: TestClient) -> list[str]:
    response = client.get("/api/v1/worklist")
    assert response.status_code == 200, response.text
    return [item["uid"] for item in response.json()]


def test_a_second_devices_claim_leaves_the_first_devices_list_through_ups_events(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    muller = workitem_uid("enc-muller")
    with (
        _phone(tmp_path / "a", sandbox, "PHONE_A") as phone_a,
        _phone(tmp_path / "b", sandbox, "PHONE_B") as phone_b,
    ):
        live = _runtime(phone_a).worklist
        _until(lambda: live.mode == "events", "phone A's event channel")
        assert ups_events.channels(sandbox.state, "PHONE_A") == 1

        first = _uids(phone_a)
        assert muller in first
        searched = _searches(sandbox)
        assert _uids(phone_a) == first  # nothing changed: answered from the copy
        assert _searches(sandbox) == searched

        assert phone_b.post(f"/api/v1/worklist/{muller}/claim").status_code == 201
        events = live.events
        assert events is not None
        _until(
            lambda: any(
                e.workitem_uid == muller and e.state == "IN PROGRESS" for e in events.received
            ),
            "the State Report of phone B's claim",
        )
        after = _uids(phone_a)
        assert muller not in after and after == [u for u in first if u != muller]
        assert _searches(sandbox) == searched + 1  # one search, because an event came


def test_without_a_subscription_every_poll_searches_and_still_sees_the_claim(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    ups_events.offer_events(sandbox.state, False)
    muller = workitem_uid("enc-muller")
    with (
        _phone(tmp_path / "a", sandbox, "PHONE_A") as phone_a,
        _phone(tmp_path / "b", sandbox, "PHONE_B") as phone_b,
    ):
        events = _runtime(phone_a).worklist.events
        assert events is not None
        _until(lambda: events.offered is False, "the refused subscription")
        assert _runtime(phone_a).worklist.mode == "polling"
        searched = _searches(sandbox)
        assert muller in _uids(phone_a)
        assert muller in _uids(phone_a)
        assert _searches(sandbox) == searched + 2  # polling: a search per poll
        assert phone_b.post(f"/api/v1/worklist/{muller}/claim").status_code == 201
        assert muller not in _uids(phone_a)


def test_event_reports_are_dicom_json_in_tag_order(sandbox: SandboxServer) -> None:
    """What the sandbox sends (PS3.18 8.10.5, 11.13; PS3.4 Table CC.2.4-1), read with a plain
    WebSocket client, not ours."""
    base = f"{sandbox.state.base_url}/dicom-web"
    subscribed = httpx.post(f"{base}/workitems/{ups_events.WORKLIST}/subscribers/WATCHER")
    assert subscribed.status_code == 201
    channel = subscribed.headers["content-location"]
    assert channel.startswith("ws://")
    filtered = httpx.post(f"{base}/workitems/{ups_events.FILTERED_WORKLIST}/subscribers/WATCHER")
    assert filtered.status_code == 403
    assert "Filtered Worklist Subscriptions are not supported." in filtered.headers["warning"]
    uid = workitem_uid("enc-ngata")
    with connect(channel, origin=None, open_timeout=5) as ws:
        _until(lambda: ups_events.channels(sandbox.state, "WATCHER") == 1, "the channel")
        state = json.dumps(
            [
                {
                    "00081195": {"vr": "UI", "Value": ["1.2.3.99"]},
                    "00741000": {"vr": "CS", "Value": ["IN PROGRESS"]},
                }
            ]
        )
        headers = {"Content-Type": "application/dicom+json"}
        assert (
            httpx.put(f"{base}/workitems/{uid}/state", content=state, headers=headers).status_code
            == 200
        )
        text = ws.recv(timeout=5)
    report = json.loads(text)
    assert list(report) == sorted(report)
    assert report["00001000"]["Value"] == [uid]
    assert report["00001002"] == {"vr": "US", "Value": [1]}  # UPS State Report
    assert report["00741000"]["Value"] == ["IN PROGRESS"]
    assert report["00404041"]["Value"] == ["READY"]
    assert (
        httpx.delete(f"{base}/workitems/{ups_events.WORKLIST}/subscribers/WATCHER").status_code
        == 200
    )
    assert (
        httpx.delete(f"{base}/workitems/{ups_events.WORKLIST}/subscribers/WATCHER").status_code
        == 404
    )
