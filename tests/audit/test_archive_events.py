"""STOW and verification against a real Orthanc: the outbox records each attempt (stored, will
retry while the archive is down) and the QIDO-RS verification, with the SOP Instance UID, the
patient and the archive as the destination of the exported AuditEvent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.store.records import AuditEventRecord
from tests.audit.conftest import PATIENT, audit_rows, open_context, settings_for, wait_until
from tests.conftest import phone_jpeg
from tests.orthanc import OrthancServer


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def client(orthanc: OrthancServer, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(
        tmp_path / "capture", dicomweb_url=orthanc.base_url, retry_max_seconds=0.5
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _send(client: TestClient, context_id: str, capture_id: str, seed: int) -> str:
    answer = client.post(
        "/api/v1/captures",
        data={"capture_id": capture_id, "context_id": context_id},
        files={"photo": ("p.jpg", phone_jpeg(320, 240, seed=seed), "image/jpeg")},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["sop_instance_uid"])


def _events(client: TestClient, action: str, sop: str) -> list[AuditEventRecord]:
    return [r for r in audit_rows(client) if r.action == action and r.sop_instance_uid == sop]


def test_stow_retries_and_verification_are_in_the_trail(
    client: TestClient, orthanc: OrthancServer
) -> None:
    context_id = open_context(client)
    first = _send(client, context_id, "orthanc-1", 1)
    wait_until(lambda: _events(client, "verify", first), what="verification of the first")
    assert first in orthanc.sop_uids()

    orthanc.stop()
    second = _send(client, context_id, "orthanc-2", 2)
    retries = wait_until(lambda: _events(client, "stow", second), what="a failed STOW attempt")
    orthanc.start()
    wait_until(lambda: _events(client, "verify", second), timeout=30, what="verification")

    (stored,) = _events(client, "stow", first)
    assert (stored.outcome, stored.balp_action, stored.event_code) == ("success", "C", "110104")
    assert stored.patient == PATIENT["id"] and stored.capture_id == "orthanc-1"
    (verified,) = _events(client, "verify", first)
    assert (verified.outcome, verified.event_code) == ("success", "110112")
    retry = retries[0]
    assert (retry.outcome, retry.balp_action) == ("retry", "C")
    assert "cannot reach the archive" in (retry.detail or "")
    outcomes = [r.outcome for r in _events(client, "stow", second)]
    assert outcomes[-1] == "success" and set(outcomes[:-1]) == {"retry"}

    bundle = client.get("/api/v1/audit", params={"patient": PATIENT["id"]}).json()
    stow_events = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["type"]["code"] == "110104" and e["resource"]["outcome"] == "0"
    ]
    assert len(stow_events) == 2
    destinations = [
        a["who"]["display"]
        for a in stow_events[0]["agent"]
        if a["type"]["coding"][0]["code"] == "110152"
    ]
    assert destinations == [orthanc.base_url]
