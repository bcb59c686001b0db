"""Fixtures of the audit trail tests: the API in integration mode, and the rows it wrote."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from capture_api.api.app import create_app
from capture_api.config import Settings
from capture_api.store.records import AuditEventRecord

T = TypeVar("T")

PATIENT: dict[str, Any] = {
    "id": "MRN-AUD-1",
    "issuer": {"namespace": "HOSP", "universal_id": "2.16.840.1.113883.3.9999.1"},
    "name": {"family": "Audit", "given": "Alice"},
    "sex": "F",
}


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp, "poll_seconds": 0.05, "retry_base_seconds": 0.05}
    return Settings(**(values | overrides))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The API in integration mode (no EHR) with the embedded archive."""
    with TestClient(create_app(settings_for(tmp_path))) as c:
        yield c


def engine_of(client: TestClient) -> Engine:
    engine: Engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    return engine


def audit_rows(client: TestClient) -> list[AuditEventRecord]:
    with Session(engine_of(client)) as s:
        return list(s.exec(select(AuditEventRecord).order_by(col(AuditEventRecord.id))).all())


def wait_until(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or probe}")


def open_context(client: TestClient, patient: dict[str, Any] = PATIENT) -> str:
    answer = client.post("/api/v1/contexts", json={"patient": patient})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["context_id"])
