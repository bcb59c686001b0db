"""A phantom wound photo with the printed marker, and a running app with the embedded archive."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.config import Settings
from tests.deliver.service_process import fresh_postgres_database
from tests.measure.phantom import Phantom, render_phantom

#: Smaller than a phone's 12 MP so the tests stay quick; the marker is still ~120 px wide.
SIZE = (1600, 1200)


@cache
def wound_phantom(seed: int = 11, tilt_deg: float = 20.0, area_cm2: float = 8.0) -> Phantom:
    """A phantom photo (known area) at a moderate tilt: the perspective correction matters."""
    return render_phantom(seed, tilt_deg=tilt_deg, area_cm2=area_cm2, kind="irregular", size=SIZE)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, poll_seconds=0.05, retry_base_seconds=0.05)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def pg_client(tmp_path: Path) -> Iterator[TestClient]:
    """The app on a fresh PostgreSQL database (what deployments run): the queries of the
    trend, the report and the Observation's readiness are PostgreSQL's there."""
    with fresh_postgres_database() as url:
        settings = Settings(
            data_dir=tmp_path,
            database_url=url,  # type: ignore[arg-type]
            poll_seconds=0.05,
            retry_base_seconds=0.05,
        )
        with TestClient(create_app(settings)) as client:
            yield client


def until(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll ``check`` until true (workers are threads: no fixed sleep decides a test)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def upload_verified(
    client: TestClient, context_id: str, capture_id: str, jpeg: bytes, **fields: str
) -> None:
    """Upload a photo and wait until the archive shows it (its spool is then purged)."""
    sent = client.post(
        "/api/v1/captures",
        data={"capture_id": capture_id, "context_id": context_id, **fields},
        files={"photo": ("p.jpg", jpeg, "image/jpeg")},
    )
    assert sent.status_code == 202, sent.text
    until(
        lambda: client.get(f"/api/v1/captures/{capture_id}").json()["status"] == "verified",
        f"{capture_id} verified",
    )
