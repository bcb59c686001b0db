"""An upload hands its encoded row to an idle delivery worker of its process, lease included
(issue 13): no claim commit, so a photo costs at most 4 commits from upload to verified.

A real service process (``capture-api run``, SQLite, ``CAPTURE_BENCH_COUNTERS``) and a real
Orthanc; the photos' states are read from the SQLite file directly, so waiting for them adds
no audited read (and no commit) of its own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import phone_jpeg
from tests.deliver.service_process import ServiceProcess
from tests.orthanc import OrthancServer

PHOTOS = 4


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


def _commits(service: ServiceProcess) -> float:
    for line in service.client.get("/metrics").text.splitlines():
        if line.startswith("capture_bench_commits_total "):
            return float(line.split()[1])
    raise AssertionError("no capture_bench_commits_total in /metrics")


def _statuses(database: Path, ids: list[str]) -> dict[str, str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        marks = ",".join("?" * len(ids))
        rows = db.execute(f"SELECT id, status FROM capture WHERE id IN ({marks})", ids)
        return dict(rows.fetchall())


def _wait_verified(database: Path, ids: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while set(_statuses(database, ids).values()) != {"verified"} or not ids:
        assert time.monotonic() < deadline, _statuses(database, ids)
        time.sleep(0.05)


def test_an_upload_and_its_delivery_take_at_most_four_commits(
    tmp_path: Path, orthanc: OrthancServer
) -> None:
    data = tmp_path / "data"
    service = ServiceProcess(
        {
            "CAPTURE_DATA_DIR": str(data),
            "CAPTURE_DICOMWEB_URL": orthanc.base_url,
            "CAPTURE_BENCH_COUNTERS": "true",
        },
        log_path=tmp_path / "service.log",
    )
    try:
        service.start()
        database = data / "capture.db"
        context = service.create_context("MRN-HANDOFF")
        assert service.upload("warm-up", context, phone_jpeg(320, 240, seed=1)).status_code == 202
        _wait_verified(database, ["warm-up"])
        time.sleep(0.3)  # the warm-up's request audit row is written after its answer
        reading = _commits(service)
        before = _commits(service)
        reading = before - reading  # what reading /metrics itself commits (nothing: not PHI)
        ids = [f"handoff-{i}" for i in range(PHOTOS)]
        for i, capture_id in enumerate(ids):
            answer = service.upload(capture_id, context, phone_jpeg(320, 240, seed=10 + i))
            assert answer.status_code == 202, answer.text
            _wait_verified(database, [capture_id])  # one at a time: the worker is idle each time
        time.sleep(0.3)
        per_photo = (_commits(service) - before - reading) / PHOTOS
        # upload row, encoded row (lease handed to the worker), request audit row, verified row
        assert per_photo <= 4.0, per_photo
        assert orthanc.instance_count() == PHOTOS + 1
    finally:
        service.close()
