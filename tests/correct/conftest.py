"""Fixtures of the IOCM tests: the API in integration mode over a real Orthanc."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from capture_api.api.app import create_app
from capture_api.store import captures
from tests.audit.conftest import settings_for
from tests.conftest import phone_jpeg
from tests.orthanc import OrthancServer

PATIENT_A: dict[str, Any] = {
    "id": "MRN-IOCM-A",
    "issuer": {"namespace": "HOSP"},
    "name": {"family": "Wrong", "given": "Anna"},
    "sex": "F",
}
PATIENT_B: dict[str, Any] = {
    "id": "MRN-IOCM-B",
    "issuer": {"namespace": "HOSP"},
    "name": {"family": "Right", "given": "Bert"},
    "sex": "M",
    "birth_date": "1961-02-03",
}
FOREARM = "14975008"


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def client(orthanc: OrthancServer, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(
        tmp_path / "capture", dicomweb_url=orthanc.base_url, retry_max_seconds=0.3
    )
    with TestClient(create_app(settings)) as c:
        yield c


def engine_of(client: TestClient) -> Engine:
    engine: Engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    return engine


def open_context(client: TestClient, patient: dict[str, Any]) -> str:
    answer = client.post("/api/v1/contexts", json={"patient": patient})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["context_id"])


def wait_status(client: TestClient, capture_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        row = captures.get(engine_of(client), capture_id)
        if row is not None and row.status == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{capture_id} never {status}: {row.reason if row else None}")


def send_photo(
    client: TestClient, context_id: str, capture_id: str, photo: bytes | None = None
) -> dict[str, Any]:
    """Upload one photo of the forearm and wait until the archive shows it."""
    answer = client.post(
        "/api/v1/captures",
        data={
            "capture_id": capture_id,
            "context_id": context_id,
            "body_site": FOREARM,
            "laterality": "L",
            "note": "ulcer, day 3",
        },
        files={"photo": ("p.jpg", photo or phone_jpeg(320, 240, seed=7), "image/jpeg")},
    )
    assert answer.status_code == 202, answer.text
    wait_status(client, capture_id, "verified")
    body: dict[str, Any] = client.get(f"/api/v1/captures/{capture_id}").json()
    return body
