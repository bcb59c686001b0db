"""A background loop that fails is never silent (issue 12).

The first ``make run`` delivered nothing: the delivery loop raised on every attempt, the
capture said ``encoded`` with ``retrying: null``, /readyz said ready and /metrics showed
nothing. Here a real embedded archive is given a bug (its ``store`` raises a ``ValueError``
whose message quotes a patient's name) and the test checks what the nurse, the orchestrator,
Prometheus and the operator see; then the bug is taken away and the photo is delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.config import Settings
from capture_api.deliver.archive import InstanceRef, Part10, StoreResult
from capture_api.deliver.local_archive import LocalArchive
from capture_api.observability.loops import UNREADY_AFTER, LoopHealth, describe
from tests.conftest import phone_jpeg

PATIENT_TEXT = "Müller^Jürgen"


class BuggyArchive(LocalArchive):
    """The real embedded archive, with a bug in ``store`` until ``fixed`` is set."""

    fixed = False

    def store(self, part10: Part10, ref: InstanceRef) -> StoreResult:
        if not self.fixed:
            raise ValueError(f"cannot file the photo of {PATIENT_TEXT}")
        return super().store(part10, ref)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, BuggyArchive]]:
    settings = Settings(
        data_dir=tmp_path,
        poll_seconds=0.05,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
    )
    with TestClient(create_app(settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        buggy = BuggyArchive(tmp_path / "archive")
        runtime.worker.archive = buggy
        yield client, buggy


def _status(client: TestClient, capture_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/captures/{capture_id}").json()
    return body


def _failures(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('capture_loop_failures_total{loop="delivery"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_failing_delivery_loop_shows_on_the_capture_readyz_metrics_and_log(
    app: tuple[TestClient, BuggyArchive], caplog: pytest.LogCaptureFixture
) -> None:
    client, archive = app
    before = _failures(client)
    context = client.post("/api/v1/contexts", json={"patient": {"id": "P-LOOP"}}).json()
    with caplog.at_level(logging.ERROR, logger="capture.loops"):
        sent = client.post(
            "/api/v1/captures",
            data={"capture_id": "loop-1", "context_id": context["context_id"]},
            files={"photo": ("p.jpg", phone_jpeg(320, 240), "image/jpeg")},
        )
        assert sent.status_code == 202, sent.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _failures(client) < before + UNREADY_AFTER + 1:
            time.sleep(0.05)

        status = _status(client, "loop-1")
        assert status["status"] == "encoded"  # the photo is safe; nothing pretends otherwise
        assert "internal error ValueError" in status["retrying"], status
        assert "tell your administrator" in status["retrying"]
        assert PATIENT_TEXT not in status["retrying"]
        assert status["retry_at"] is not None

        ready = client.get("/readyz")
        assert ready.status_code == 503
        loops = ready.json()["checks"]["loops"]
        assert not loops["ok"] and "delivery" in loops["detail"], loops
        assert "ValueError" in loops["detail"]
        assert _failures(client) >= before + UNREADY_AFTER

    lines = [r for r in caplog.records if r.name == "capture.loops"]
    assert len(lines) >= UNREADY_AFTER
    assert all("loop-1" in r.getMessage() and "ValueError" in r.getMessage() for r in lines)
    assert sum(1 for r in lines if r.exc_info) == 1, "a traceback once, not every attempt"
    assert not any(PATIENT_TEXT in r.getMessage() for r in lines)

    archive.fixed = True
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _status(client, "loop-1")["status"] != "verified":
        time.sleep(0.05)
    done = _status(client, "loop-1")
    assert done["status"] == "verified", done
    assert done["retrying"] is None and done["retry_at"] is None
    assert client.get("/readyz").status_code == 200


def test_reasons_never_quote_an_exception_message() -> None:
    try:
        raise KeyError(PATIENT_TEXT)
    except KeyError as exc:
        reason = describe(exc)
    assert PATIENT_TEXT not in reason
    assert reason.startswith("internal error KeyError at test_loop_failures.py:")
    disk = describe(PermissionError(13, "Permission denied", f"/data/{PATIENT_TEXT}"))
    assert disk == "PermissionError: Permission denied"


def test_a_loop_is_unready_only_after_repeated_failures_and_recovers_on_success() -> None:
    health = LoopHealth()
    for _ in range(UNREADY_AFTER - 1):
        health.failed("notification", RuntimeError("x"))
    assert health.problems() == {}
    health.failed("notification", RuntimeError("x"))
    assert list(health.problems()) == ["notification"]
    health.succeeded("notification")
    assert health.problems() == {}
