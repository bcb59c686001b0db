"""The outbox in-process on PostgreSQL against a real Orthanc: replicas, leases, backoff,
migrations, and the hand-over between the upload request and the worker.

Each test gets its own database (``capture_<hex>``, dropped afterwards) on the PostgreSQL at
``CAPTURE_TEST_PG_URL``; a missing server is a failure, not a skip.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

import capture_api.intake.service as service_module
from capture_api.capture.lesions import LesionMark
from capture_api.capture.retrieval import Retrieval
from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.deliver.archive import InstanceRef, Part10, PriorImage, StoreResult
from capture_api.deliver.dicomweb import DicomWebArchive
from capture_api.deliver.instance_labels import InstanceLabels
from capture_api.deliver.outbox import OutboxPolicy, OutboxWorker
from capture_api.encode.pipeline import EncoderOptions, wrap_photo
from capture_api.intake.service import CaptureRequest, CaptureService
from capture_api.store import db
from capture_api.store.db import make_engine, migrate
from capture_api.store.spool import Spool
from tests.conftest import phone_jpeg
from tests.deliver.service_process import fresh_postgres_database
from tests.orthanc import OrthancServer

POLICY = OutboxPolicy(
    lease=dt.timedelta(seconds=30), retry_base=0.05, retry_max=0.5, verify_attempts=10, poll=0.05
)


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def engines(pg_url: str) -> Iterator[Callable[[], Engine]]:
    """Make engines on the test database (one per replica); all disposed at teardown."""
    made: list[Engine] = []

    def make() -> Engine:
        engine = make_engine(pg_url)
        made.append(engine)
        return engine

    try:
        yield make
    finally:
        for engine in made:
            engine.dispose()


def _service(engine: Engine, tmp_path: Path) -> CaptureService:
    migrate(engine)
    return CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions())


def _rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params).all())


def _status(engine: Engine, capture_id: str) -> str:
    ((status,),) = _rows(engine, "SELECT status FROM capture WHERE id = :id", id=capture_id)
    return str(status)


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


class CountingArchive:
    """A DicomWebArchive that records which thread sent which instance (an ``Archive``)."""

    def __init__(self, base_url: str) -> None:
        self.inner = DicomWebArchive(base_url)
        self.stored: list[tuple[int, str]] = []  # (thread ident, SOP Instance UID)
        self._lock = threading.Lock()

    def store(self, part10: Part10, ref: InstanceRef) -> StoreResult:
        with self._lock:
            self.stored.append((threading.get_ident(), ref.sop_instance_uid))
        return self.inner.store(part10, ref)

    def is_visible(self, ref: InstanceRef) -> bool:
        return self.inner.is_visible(ref)

    def visible(self, refs: Sequence[InstanceRef]) -> set[str]:
        return self.inner.visible(refs)

    def find_priors(
        self,
        patient_id: str,
        issuer: str | None = None,
        body_site_code: str | None = None,
        limit: int = 50,
    ) -> list[PriorImage]:
        return self.inner.find_priors(patient_id, issuer, body_site_code, limit)

    def thumbnail(self, ref: InstanceRef, max_size: int = 256) -> bytes:
        return self.inner.thumbnail(ref, max_size)

    def retrieval(self) -> Retrieval:
        return self.inner.retrieval()

    def instance(self, ref: InstanceRef) -> bytes:
        return self.inner.instance(ref)

    def labels(self, refs: Sequence[InstanceRef]) -> dict[str, InstanceLabels | None]:
        return self.inner.labels(refs)

    def lesions(self, refs: Sequence[InstanceRef]) -> dict[str, LesionMark]:
        return self.inner.lesions(refs)

    def close(self) -> None:
        self.inner.close()


# --- two replicas drain one outbox --------------------------------------------------------------


def test_two_replicas_deliver_every_capture_exactly_once(
    engines: Callable[[], Engine], orthanc: OrthancServer, tmp_path: Path
) -> None:
    engine = engines()
    service = _service(engine, tmp_path)
    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-PG")))
    ids = [f"pg-{i:02d}" for i in range(40)]
    for n, capture_id in enumerate(ids):
        photo = phone_jpeg(320, 240, seed=2000 + n)
        record, new = service.accept(CaptureRequest(capture_id, context.id), io.BytesIO(photo))
        assert new and record.status == "encoded", record.reason
    assert orthanc.instance_count() == 0  # nothing moves without a worker

    archives = [CountingArchive(orthanc.base_url) for _ in range(2)]
    workers = [
        OutboxWorker(engines(), archive, service.encode, POLICY, name=f"replica-{n}")
        for n, archive in enumerate(archives)
    ]
    try:
        for worker in workers:
            worker.start(4)

        def all_verified() -> bool:
            rows = _rows(engine, "SELECT count(*) FROM capture WHERE status = 'verified'")
            return bool(rows[0][0] == len(ids))

        _wait_until(all_verified, 60, "40 verified captures")
    finally:
        for worker in workers:
            worker.stop()
        for archive in archives:
            archive.close()

    rows = _rows(
        engine, "SELECT id, status, stow_requests, lease_owner, sop_instance_uid FROM capture"
    )
    assert sorted(r.id for r in rows) == ids
    assert Counter(r.stow_requests for r in rows) == Counter({1: 40})
    assert {r.lease_owner for r in rows} == {None}
    sent = [uid for archive in archives for _, uid in archive.stored]
    assert sorted(sent) == sorted(r.sop_instance_uid for r in rows)  # each sent once, no more
    assert all(archive.stored for archive in archives), "one replica did no work"
    assert orthanc.instance_count() == 40
    assert orthanc.sop_uids() == {r.sop_instance_uid for r in rows}


# --- leases -------------------------------------------------------------------------------------


def test_a_dead_workers_lease_is_respected_until_it_expires(
    engines: Callable[[], Engine], orthanc: OrthancServer, tmp_path: Path
) -> None:
    engine = engines()
    service = _service(engine, tmp_path)
    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-LEASE")))
    photo = phone_jpeg(320, 240, seed=3000)
    record, _ = service.accept(CaptureRequest("lease-1", context.id), io.BytesIO(photo))
    assert record.status == "encoded"

    with engine.begin() as connection:  # a worker claimed it, then died
        connection.execute(
            text(
                "UPDATE capture SET lease_owner = 'dead', "
                "lease_expires_at = now() + interval '1 hour' WHERE id = 'lease-1'"
            )
        )
    archive = DicomWebArchive(orthanc.base_url)
    worker = OutboxWorker(engines(), archive, service.encode, POLICY, name="live")
    try:
        assert worker.run_once() is False
        row = _rows(engine, "SELECT status, lease_owner, stow_requests FROM capture")
        assert [tuple(r) for r in row] == [("encoded", "dead", 0)]
        assert orthanc.instance_count() == 0

        with engine.begin() as connection:  # the lease runs out
            connection.execute(
                text(
                    "UPDATE capture SET lease_expires_at = now() - interval '1 second' "
                    "WHERE id = 'lease-1'"
                )
            )
        assert worker.run_once() is True  # taken over and sent
        deadline = time.monotonic() + 15
        while _status(engine, "lease-1") != "verified":
            assert time.monotonic() < deadline, _rows(engine, "SELECT * FROM capture")
            if not worker.run_once():
                time.sleep(0.05)
    finally:
        archive.close()

    row = _rows(engine, "SELECT lease_owner, lease_expires_at, stow_requests FROM capture")
    assert [tuple(r) for r in row] == [(None, None, 1)]
    assert orthanc.sop_uids() == {record.sop_instance_uid}


# --- backoff --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "cap"), [(2.0, 300.0), (0.5, 1.0), (0.05, 0.5), (1.0, 1_000_000.0)]
)
def test_backoff_stays_between_half_the_base_and_the_capped_exponential(
    base: float, cap: float
) -> None:
    policy = OutboxPolicy(retry_base=base, retry_max=cap)
    for attempts in range(31):
        ceiling = min(cap, base * 2**attempts)
        samples = [policy.backoff(attempts).total_seconds() for _ in range(400)]
        assert min(samples) >= base / 2, (attempts, min(samples))
        assert max(samples) <= ceiling + 1e-9, (attempts, max(samples), ceiling)
        if ceiling >= base:  # jitter: the delays spread over the range, not one value
            middle = (base / 2 + ceiling) / 2
            assert min(samples) < middle < max(samples), (attempts, min(samples), max(samples))


def test_backoff_never_exceeds_retry_max_even_below_half_the_base() -> None:
    policy = OutboxPolicy(retry_base=2.0, retry_max=0.5)
    samples = [policy.backoff(n % 8).total_seconds() for n in range(400)]
    assert max(samples) <= 0.5, max(samples)


# --- migrations ----------------------------------------------------------------------------------


def _schema(engine: Engine) -> tuple[list[str], list[str]]:
    versions = [r[0] for r in _rows(engine, "SELECT version_num FROM alembic_version")]
    tables = [
        r[0]
        for r in _rows(
            engine,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name",
        )
    ]
    return versions, tables


def _head_revisions() -> list[str]:
    """The newest revision(s) in capture's migration scripts (not a hard-coded number)."""
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    return sorted(ScriptDirectory.from_config(config).get_heads())


def test_migrating_twice_is_a_no_op(engines: Callable[[], Engine]) -> None:
    engine = engines()
    migrate(engine)
    first = _schema(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO encounter_context (id, patient_json, study_uid, source, created_at) "
                "VALUES ('c1', '{}', '1.2.3', 'test', now())"
            )
        )
    migrate(engine)
    expected = (_head_revisions(), sorted(["alembic_version", *SQLModel.metadata.tables]))
    assert _schema(engine) == first == expected
    assert _rows(engine, "SELECT id FROM encounter_context") == [("c1",)]  # data kept


def test_two_replicas_migrating_a_fresh_database_at_once_both_succeed(
    engines: Callable[[], Engine],
) -> None:
    replicas = [engines() for _ in range(2)]
    barrier = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def start_replica(engine: Engine) -> None:
        try:
            barrier.wait(timeout=10)
            migrate(engine)
        except BaseException as exc:  # reported below, with the other replica's outcome
            errors.append(exc)

    threads = [threading.Thread(target=start_replica, args=(e,)) for e in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a migration hung"
    assert errors == []
    expected = (_head_revisions(), sorted(["alembic_version", *SQLModel.metadata.tables]))
    assert _schema(replicas[0]) == expected


# --- the upload request and the worker encode the same capture ----------------------------------
# Regression: found by test_faults (SIGKILL scenario, ~1 run in 3 on SQLite) while
# CaptureService.encode still set ``encoded`` unconditionally: a worker delivered and verified a
# capture the upload request was still encoding, and the request's late commit moved it back to
# ``encoded`` (then re-sent, or failed "spool-lost"). Fixed meanwhile in capture/service.py.


def test_a_late_encode_by_the_upload_request_does_not_undo_delivery(
    engines: Callable[[], Engine],
    orthanc: OrthancServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = engines()
    service = _service(engine, tmp_path)
    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-RACE")))
    wrapped_in_request, release_request = threading.Event(), threading.Event()

    def wrap_slowly_in_the_request(*args: Any, **kwargs: Any) -> Any:
        wrapped = wrap_photo(*args, **kwargs)
        if threading.current_thread().name == "upload-request":
            wrapped_in_request.set()  # the request read the photo; it has not committed yet
            release_request.wait(30)
        return wrapped

    monkeypatch.setattr(service_module, "wrap_photo", wrap_slowly_in_the_request)
    photo = phone_jpeg(320, 240, seed=4000)
    request = threading.Thread(
        target=service.accept,
        args=(CaptureRequest("race-1", context.id), io.BytesIO(photo)),
        name="upload-request",
    )
    archive = DicomWebArchive(orthanc.base_url)
    worker = OutboxWorker(engines(), archive, service.encode, POLICY, name="worker")
    try:
        request.start()
        assert wrapped_in_request.wait(30)
        # The worker may take the row (the bug this guards against), or leave it to the request
        # that holds it (the upload's lease): either way the end state must be the same.
        deadline = time.monotonic() + 1.5
        while _status(engine, "race-1") != "verified" and time.monotonic() < deadline:
            if not worker.run_once():
                time.sleep(0.05)
        verified_early = _status(engine, "race-1") == "verified"
        release_request.set()
        request.join(timeout=30)
        assert not request.is_alive()
        if verified_early:
            assert _status(engine, "race-1") == "verified", "the request undid the delivery"
        deadline = time.monotonic() + 15
        while _status(engine, "race-1") not in {"verified", "failed"}:
            assert time.monotonic() < deadline
            if not worker.run_once():
                time.sleep(0.05)
    finally:
        release_request.set()
        request.join(timeout=30)
        archive.close()

    rows = _rows(engine, "SELECT status, stow_requests, reason FROM capture")
    assert [tuple(r) for r in rows] == [("verified", 1, None)]
    assert orthanc.instance_count() == 1
