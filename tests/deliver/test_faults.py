"""Fault tolerance end to end: a real Orthanc and the API as a real subprocess.

Each scenario breaks something a hospital network really breaks (the archive goes down
mid-batch, the API is SIGKILLed mid-upload, credentials are wrong, two replicas share one
PostgreSQL outbox, the archive refuses an instance) and checks what the phone sees through
the public API, what the archive holds (Orthanc's own REST API), and what the outbox
recorded (the database, read directly).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from capture_api.encode.uids import instance_uid
from tests.conftest import phone_jpeg
from tests.deliver.service_process import ServiceProcess, fresh_postgres_database, pg_rows
from tests.orthanc import OrthancServer
from tests.sandboxes.refusing_archive import (
    CANNOT_UNDERSTAND,
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    Refusal,
    RefusingArchive,
)

BATCH = 50
ServiceFactory = Callable[..., ServiceProcess]


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    """50 distinct small camera-like JPEGs (distinct bytes -> distinct captures)."""
    return [phone_jpeg(320, 240, seed=1000 + i) for i in range(BATCH)]


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Make ServiceProcess objects (not started); every one is stopped at teardown."""
    made: list[ServiceProcess] = []

    def make(archive_url: str, *, data_dir: Path | None = None, **settings: str) -> ServiceProcess:
        name = f"api-{len(made)}"
        env = {
            "CAPTURE_DATA_DIR": str(data_dir or tmp_path / name),
            "CAPTURE_DICOMWEB_URL": archive_url,
            "CAPTURE_POLL_SECONDS": "0.1",
            "CAPTURE_RETRY_BASE_SECONDS": "0.2",
            "CAPTURE_RETRY_MAX_SECONDS": "1",
            "CAPTURE_ARCHIVE_TIMEOUT_SECONDS": "10",
        } | {f"CAPTURE_{k.upper()}" if k != "DATABASE_URL" else k: v for k, v in settings.items()}
        process = ServiceProcess(env, log_path=tmp_path / f"{name}.log")
        made.append(process)
        return process

    try:
        yield make
    finally:
        for process in made:
            process.close()


def _holds_for(seconds: float, check: Callable[[], None]) -> None:
    """Run ``check`` (which asserts) repeatedly for ``seconds``: a state that must not change."""
    deadline = time.monotonic() + seconds
    while True:
        check()
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def _sqlite_rows(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(data_dir / "capture.db", timeout=10)
    try:
        return list(connection.execute(sql, params).fetchall())
    finally:
        connection.close()


def _accepted(response: httpx.Response) -> str:
    """The SOP Instance UID of a 202 answer (asserting it is one)."""
    assert response.status_code == 202, response.text
    body: Mapping[str, Any] = response.json()
    assert body["sop_instance_uid"], body
    return str(body["sop_instance_uid"])


# --- 1. the archive goes down in the middle of a batch ------------------------------------------


def test_archive_stopped_mid_batch_then_every_photo_is_delivered_once(
    orthanc: OrthancServer, service: ServiceFactory, photos: list[bytes]
) -> None:
    api = service(orthanc.base_url)
    api.start()
    context = api.create_context("MRN-DOWN")
    ids = [f"down-{i:02d}" for i in range(BATCH)]
    sop: dict[str, str] = {}
    for capture_id, photo in zip(ids[:20], photos[:20], strict=True):
        sop[capture_id] = _accepted(api.upload(capture_id, context, photo))

    orthanc.stop()
    for capture_id, photo in zip(ids[20:], photos[20:], strict=True):
        sop[capture_id] = _accepted(api.upload(capture_id, context, photo))  # still 202

    verified_before = {i for i in ids if api.status(i)["status"] == "verified"}
    waiting = [i for i in ids if i not in verified_before]
    assert len(waiting) >= 30  # at least the 30 sent while the archive was down

    # While it is down: nothing new is verified, nothing fails, each says it is retrying.
    deadline = time.monotonic() + 20
    while True:
        states = {i: api.status(i) for i in ids}
        assert {i for i, s in states.items() if s["status"] == "verified"} == verified_before
        assert not [s for s in states.values() if s["status"] == "failed"]
        retrying = {i: states[i]["retrying"] for i in waiting}
        if all(text and "will retry" in text for text in retrying.values()):
            break
        assert time.monotonic() < deadline, f"not all show retrying text: {retrying}"
        time.sleep(0.2)
    assert all("archive" in str(text) for text in retrying.values()), retrying

    orthanc.start()
    done = api.wait_all(ids, "verified", timeout=60)
    assert all(body["retrying"] is None and body["reason"] is None for body in done.values())
    assert orthanc.sop_uids() == set(sop.values())
    assert orthanc.instance_count() == BATCH


# --- 2. the API is SIGKILLed in the middle of a batch -------------------------------------------


def test_api_killed_mid_batch_client_resends_and_nothing_is_lost_or_doubled(
    orthanc: OrthancServer, service: ServiceFactory, photos: list[bytes], tmp_path: Path
) -> None:
    data_dir = tmp_path / "killed"
    api = service(orthanc.base_url, data_dir=data_dir, lease_seconds="2")
    api.start()
    context = api.create_context("MRN-KILL")
    ids = [f"kill-{i:02d}" for i in range(BATCH)]
    accepted: dict[str, str] = {}  # capture id -> SOP Instance UID of the first 202
    errors: dict[str, str] = {}

    def send_batch() -> None:  # the phone's first pass: no retry on connection errors
        with httpx.Client(base_url=api.url, timeout=30.0) as client:
            for capture_id, photo in zip(ids, photos, strict=True):
                try:
                    response = api.upload(capture_id, context, photo, client=client)
                except httpx.TransportError as exc:
                    errors[capture_id] = repr(exc)
                    continue
                if response.status_code == 202:
                    accepted[capture_id] = response.json()["sop_instance_uid"]
                else:
                    errors[capture_id] = f"HTTP {response.status_code}: {response.text}"

    sender = threading.Thread(target=send_batch, name="phone")
    sender.start()
    deadline = time.monotonic() + 30
    while len(accepted) < 25:
        assert sender.is_alive() and time.monotonic() < deadline, (accepted, errors)
        time.sleep(0.005)
    api.kill()
    sender.join(timeout=60)
    assert not sender.is_alive()
    assert 25 <= len(accepted) < BATCH, "the kill did not land in the middle of the batch"
    assert set(errors) == set(ids) - set(accepted)  # every other one failed on the wire only

    api.start()  # same port, data folder and database
    for capture_id, photo in zip(ids, photos, strict=True):  # the phone re-sends all 50
        uid = _accepted(api.upload(capture_id, context, photo))
        if capture_id in accepted:
            assert uid == accepted[capture_id], "a re-sent capture got a new instance"
        accepted[capture_id] = uid
    assert set(accepted) == set(ids)

    api.wait_all(ids, "verified", timeout=60)
    assert orthanc.instance_count() == BATCH
    assert orthanc.sop_uids() == set(accepted.values())
    assert _sqlite_rows(data_dir, "SELECT count(*) FROM capture") == [(BATCH,)]
    assert _sqlite_rows(data_dir, "SELECT count(DISTINCT sop_instance_uid) FROM capture") == [
        (BATCH,)
    ]


# --- 3. wrong and right archive credentials -----------------------------------------------------


def test_wrong_credentials_fail_without_retry_and_right_ones_deliver(
    tmp_path: Path, service: ServiceFactory, photos: list[bytes]
) -> None:
    with OrthancServer(tmp_path / "orthanc-auth", users={"u": "p"}) as orthanc:
        wrong = service(
            orthanc.base_url, archive_auth="basic", archive_username="u", archive_password="nope"
        )
        wrong.start()
        context = wrong.create_context("MRN-AUTH")
        _accepted(wrong.upload("auth-wrong", context, photos[0]))
        failed = wrong.wait_all(["auth-wrong"], "failed", timeout=20)["auth-wrong"]
        assert "credentials" in failed["reason"], failed
        assert "CAPTURE_ARCHIVE_PASSWORD" in failed["reason"], failed
        assert "nope" not in failed["reason"]  # never echo the secret
        assert failed["retrying"] is None

        data_dir = Path(wrong.settings["CAPTURE_DATA_DIR"])
        query = "SELECT status, stow_requests, attempts, failure_kind FROM capture WHERE id = ?"

        def not_retried() -> None:
            assert wrong.status("auth-wrong")["status"] == "failed"
            assert _sqlite_rows(data_dir, query, "auth-wrong") == [("failed", 1, 0, "archive-auth")]

        _holds_for(3.0, not_retried)
        assert orthanc.instance_count() == 0
        wrong.stop()

        right = service(
            orthanc.base_url, archive_auth="basic", archive_username="u", archive_password="p"
        )
        right.start()
        context = right.create_context("MRN-AUTH")
        uid = _accepted(right.upload("auth-right", context, photos[1]))
        right.wait_all(["auth-right"], "verified", timeout=20)
        assert orthanc.sop_uids() == {uid}


# --- 4. two API processes drain one PostgreSQL outbox -------------------------------------------


def test_two_api_processes_on_one_postgres_outbox_send_each_instance_once(
    orthanc: OrthancServer, service: ServiceFactory, photos: list[bytes], tmp_path: Path
) -> None:
    with fresh_postgres_database() as database_url:
        shared = tmp_path / "shared"
        apis = [
            service(
                orthanc.base_url, data_dir=shared, DATABASE_URL=database_url, worker_threads="4"
            )
            for _ in range(2)
        ]
        for api in apis:  # both start at once: migrations run under the advisory lock
            api.launch()
        for api in apis:
            api.wait_ready()

        owners: set[str] = set()
        watching = threading.Event()

        def watch_leases() -> None:  # which processes' workers hold claims during the run
            while not watching.is_set():
                rows = pg_rows(database_url, "SELECT lease_owner FROM capture")
                # "<node>/<pid>/worker-<id>:<thread>": the pid tells the processes apart
                held = (str(owner).split("/") for (owner,) in rows if owner)
                owners.update(p[1] for p in held if p[-1].startswith("worker-"))  # not "upload"
                time.sleep(0.005)

        watcher = threading.Thread(target=watch_leases, name="lease-watch", daemon=True)
        watcher.start()
        try:
            context = apis[0].create_context("MRN-REPLICAS")
            ids = [f"pg-{i:02d}" for i in range(BATCH)]
            sop: dict[str, str] = {}
            for n, (capture_id, photo) in enumerate(zip(ids, photos, strict=True)):
                sop[capture_id] = _accepted(apis[n % 2].upload(capture_id, context, photo))
            for api in apis:
                api.wait_all(ids, "verified", timeout=60)
        finally:
            watching.set()
            watcher.join(timeout=10)

        assert orthanc.instance_count() == BATCH
        assert orthanc.sop_uids() == set(sop.values())
        rows = pg_rows(database_url, "SELECT id, stow_requests, status FROM capture")
        assert sorted(r[0] for r in rows) == ids
        assert sum(r[1] for r in rows) == BATCH, "some instance was sent more than once"
        assert {r[1] for r in rows} == {1}
        assert len(owners) == 2, f"workers seen holding claims: {owners}"


# --- 5. the archive refuses an instance ---------------------------------------------------------


def test_archive_refusal_fails_with_its_reason_and_is_not_retried(
    orthanc: OrthancServer, service: ServiceFactory, photos: list[bytes]
) -> None:
    ids = [f"refuse-{i}" for i in range(4)]
    conflict, bad, *fine = ids
    refuse = {
        instance_uid(None, conflict): Refusal(409, DATA_SET_DOES_NOT_MATCH_SOP_CLASS),
        instance_uid(None, bad): Refusal(400, CANNOT_UNDERSTAND),
    }
    with RefusingArchive(orthanc.rest_url, refuse) as archive:
        api = service(archive.base_url)
        api.start()
        context = api.create_context("MRN-REFUSED")
        sop = {i: _accepted(api.upload(i, context, p)) for i, p in zip(ids, photos, strict=False)}
        assert {sop[conflict], sop[bad]} == set(refuse)  # the UIDs the archive was told to refuse

        failed = api.wait_all([conflict, bad], "failed", timeout=30)
        assert "0xA900" in failed[conflict]["reason"], failed[conflict]
        assert "does not match SOP class" in failed[conflict]["reason"], failed[conflict]
        assert "0xC000" in failed[bad]["reason"], failed[bad]
        api.wait_all(fine, "verified", timeout=30)

        data_dir = Path(api.settings["CAPTURE_DATA_DIR"])
        query = "SELECT status, stow_requests, failure_kind FROM capture WHERE id = ?"

        def not_retried() -> None:
            for capture_id in (conflict, bad):
                assert _sqlite_rows(data_dir, query, capture_id) == [
                    ("failed", 1, "archive-rejected")
                ]
                assert archive.stow_requests[sop[capture_id]] == 1

        _holds_for(3.0, not_retried)
        assert orthanc.sop_uids() == {sop[i] for i in fine}
