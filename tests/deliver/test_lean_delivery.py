"""Lean delivery (issue 13): one lease sends and verifies, one commit records it all.

A real Orthanc (DICOMweb) and SQLite; the worker is driven with ``run_once``. The commits are
counted by the hook the service exposes as ``capture_db_commits_total``.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, event

from capture_api.audit import chain
from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.deliver.archive import InstanceRef
from capture_api.deliver.dicomweb import DicomWebArchive, MultipartBody
from capture_api.deliver.outbox import OutboxPolicy, OutboxWorker
from capture_api.encode.pipeline import EncoderOptions
from capture_api.intake.service import CaptureRequest, CaptureService
from capture_api.observability import metrics
from capture_api.store import audit_rows
from capture_api.store.db import make_engine, migrate, write_transaction
from capture_api.store.leases import Handoff, LeaseKeeper, owner_name
from capture_api.store.records import CaptureRecord, CaptureStatus
from capture_api.store.spool import CHUNK, Spool
from capture_api.store.spool_source import SEND_CHUNK, FileSource, file_source
from capture_api.store.wakeup import Listener, due_in, wakeup_for
from tests.conftest import phone_jpeg
from tests.deliver.service_process import fresh_postgres_database
from tests.orthanc import OrthancServer

POLICY = OutboxPolicy(
    lease=dt.timedelta(seconds=30), retry_base=0.05, retry_max=0.5, verify_attempts=10
)


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'capture.db'}")
    migrate(made)
    metrics.count_commits(made)
    yield made
    made.dispose()


class SlowToShow(DicomWebArchive):
    """Orthanc, but its searches show nothing until ``hidden`` searches have been made (an
    archive that indexes after it answers the store); records every search's instances."""

    def __init__(self, base_url: str, hidden: int) -> None:
        super().__init__(base_url)
        self.hidden = hidden
        self.searches: list[list[str]] = []

    def visible(self, refs: Sequence[InstanceRef]) -> set[str]:
        self.searches.append(sorted(ref.sop_instance_uid for ref in refs))
        if len(self.searches) <= self.hidden:
            return set()
        return super().visible(refs)


def _accept(service: CaptureService, count: int) -> list[str]:
    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-LEAN")))
    ids = [f"lean-{i}" for i in range(count)]
    for i, capture_id in enumerate(ids):
        request = CaptureRequest(capture_id=capture_id, context_id=context.id)
        record, _ = service.accept(request, io.BytesIO(phone_jpeg(320, 240, seed=40 + i)))
        assert record.status == CaptureStatus.ENCODED
    return ids


def _actions(engine: Engine, capture_id: str) -> list[str]:
    rows, _ = audit_rows.page(engine, limit=1000)
    return sorted(r.action for r in rows if r.capture_id == capture_id)


def test_the_worker_commits_twice_per_photo_and_records_everything_in_the_second(
    tmp_path: Path, engine: Engine, orthanc: OrthancServer
) -> None:
    """Claim (1 commit), STOW, QIDO in the same lease, then state + three audit rows + the
    spool's bookkeeping (1 commit). Before issue 13 the worker made 8 commits per photo."""
    service = CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions())
    archive = DicomWebArchive(orthanc.base_url)
    worker = OutboxWorker(engine, archive, service.encode, POLICY)
    ids = _accept(service, 3)
    before = metrics.commits()
    try:
        while worker.run_once():
            pass
    finally:
        worker.stop()
        archive.close()
    assert metrics.commits() - before == 2 * len(ids)
    for capture_id in ids:
        row = service.get(capture_id)
        assert row is not None and row.status == CaptureStatus.VERIFIED
        assert row.spool_deleted_at is not None and row.stow_requests == 1
        assert not Path(row.dicom_path or "").exists() and not Path(row.photo_path or "").exists()
        # The STOW response's Referenced SOP Sequence, recorded (Orthanc gives both).
        assert row.retrieve_url and row.retrieve_url.endswith(f"/instances/{row.sop_instance_uid}")
        assert row.stored_sop_class_uid == "1.2.840.10008.5.1.4.1.1.77.1.4"
        assert _actions(engine, capture_id) == ["spool-purge", "stow", "verify"]
    verdict = chain.verify_database(engine, chain.key_for(engine))
    assert verdict.intact, verdict.problems


def test_one_search_of_the_study_verifies_every_stored_photo_of_it(
    tmp_path: Path, engine: Engine, orthanc: OrthancServer
) -> None:
    """Three photos stored while the archive did not show them yet: the next claim's one
    QIDO-RS search verifies all three, in one commit after its claim."""
    service = CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions())
    archive = SlowToShow(orthanc.base_url, hidden=3)
    policy = OutboxPolicy(lease=dt.timedelta(seconds=30), verify_delay=0.0)
    worker = OutboxWorker(engine, archive, service.encode, policy)
    ids = _accept(service, 3)
    try:
        for _ in ids:  # each is stored; its search in the same lease does not show it yet
            assert worker.run_once()
        rows = [service.get(i) for i in ids]
        assert all(r is not None and r.status == CaptureStatus.STORED for r in rows)
        assert all(r is not None and r.verify_attempts == 1 for r in rows)
        before = metrics.commits()
        assert worker.run_once()
        assert metrics.commits() - before == 2  # one claim, one commit for all three
        assert len(archive.searches) == 4 and len(archive.searches[-1]) == 3
        while worker.run_once():
            pass
    finally:
        worker.stop()
        archive.close()
    assert len(archive.searches) == 4  # nothing left to verify
    for capture_id in ids:
        row = service.get(capture_id)
        assert row is not None and row.status == CaptureStatus.VERIFIED
        assert row.spool_deleted_at is not None
        assert _actions(engine, capture_id) == ["spool-purge", "stow", "verify"]
    assert chain.verify_database(engine, chain.key_for(engine)).intact


# --- pushed, not polled ----------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


#: A safety poll far longer than the tests: a delivery in them was woken by a commit.
SLOW_POLL = OutboxPolicy(lease=dt.timedelta(seconds=30), poll=60.0)


def test_on_sqlite_an_upload_wakes_the_idle_worker_of_its_process(
    tmp_path: Path, engine: Engine, orthanc: OrthancServer
) -> None:
    service = CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions())
    archive = DicomWebArchive(orthanc.base_url)
    worker = OutboxWorker(engine, archive, service.encode, SLOW_POLL)
    worker.start(1)
    try:
        time.sleep(0.2)  # the worker found nothing and waits (for 60 s, or a wake-up)
        (capture_id,) = _accept(service, 1)
        _wait_for(lambda: _status(service, capture_id) == CaptureStatus.VERIFIED, "delivery")
    finally:
        worker.stop()
        archive.close()
    assert worker.woken[0] == "signal"  # the upload's commit, not the poll
    assert worker.wakeups["poll"] == 0 and worker.wakeups["notify"] == 0


def test_on_postgresql_a_commit_of_replica_a_wakes_the_worker_of_replica_b(
    tmp_path: Path, orthanc: OrthancServer
) -> None:
    """Two engines are two replicas (this process's in-process signal is per engine): B's
    worker, idle with a 60 s safety poll, is woken by A's encode commit through
    ``NOTIFY capture_outbox`` and delivers the photo."""
    with fresh_postgres_database() as url:
        replica_a, replica_b = make_engine(url), make_engine(url)
        try:
            migrate(replica_a)
            service_a = CaptureService(replica_a, Spool(tmp_path / "a"), EncoderOptions())
            service_b = CaptureService(replica_b, Spool(tmp_path / "b"), EncoderOptions())
            archive = DicomWebArchive(orthanc.base_url)
            worker_b = OutboxWorker(replica_b, archive, service_b.encode, SLOW_POLL)
            assert worker_b.wakeup is not wakeup_for(replica_a)
            worker_b.start(1)
            try:
                _wait_for(worker_b.listening, "B's LISTEN")
                time.sleep(0.2)
                (capture_id,) = _accept(service_a, 1)
                _wait_for(
                    lambda: _status(service_a, capture_id) == CaptureStatus.VERIFIED, "delivery"
                )
            finally:
                worker_b.stop()
                archive.close()
        finally:
            replica_a.dispose()
            replica_b.dispose()
    assert worker_b.woken[0] == "notify"  # A's commit, through PostgreSQL
    assert worker_b.wakeups["poll"] == 0


def _status(service: CaptureService, capture_id: str) -> str | None:
    row = service.get(capture_id)
    return None if row is None else str(row.status)


# --- streamed STOW ---------------------------------------------------------------------------


def _spooled_instance(
    tmp_path: Path, seed: int, study: int | None = None, size: tuple[int, int] = (4032, 3024)
) -> tuple[FileSource, InstanceRef]:
    """A 12 MP-like photo wrapped and spooled: a DICOM file of a few MB."""
    from capture_api.capture.model import CaptureContext
    from capture_api.encode.pipeline import wrap_photo

    context = CaptureContext(
        capture_id=f"stream-{seed}",
        patient=PatientIn(id="MRN-STREAM").to_patient(),
        study_uid=f"1.2.826.0.1.3680043.10.543.{seed if study is None else study}",
    )
    wrapped = wrap_photo(phone_jpeg(*size, seed=seed), context, EncoderOptions())
    path = tmp_path / f"stream-{seed}.dcm"
    path.write_bytes(wrapped.to_bytes())
    ref = InstanceRef(
        wrapped.study_instance_uid, wrapped.series_instance_uid, wrapped.sop_instance_uid
    )
    return file_source(path), ref


def test_stow_streams_the_spooled_file_with_a_content_length(
    tmp_path: Path, orthanc: OrthancServer
) -> None:
    source, ref = _spooled_instance(tmp_path, 1)
    assert source.size > CHUNK
    body = MultipartBody(source)
    pieces = list(body)
    assert max(len(p) for p in pieces) <= SEND_CHUNK and len(pieces) >= 4  # never the whole file
    assert sum(len(p) for p in pieces) == body.length
    with DicomWebArchive(orthanc.base_url) as archive:
        result = archive.store(source, ref)
        assert not result.duplicate and result.retrieve_url
        assert archive.visible([ref]) == {ref.sop_instance_uid}
    stored = httpx.get(
        f"{orthanc.rest_url}/instances",
        params={"expand": "true"},
    ).json()
    (instance,) = [
        i for i in stored if i["MainDicomTags"]["SOPInstanceUID"] == ref.sop_instance_uid
    ]
    assert instance["FileSize"] == source.size  # Orthanc holds the very bytes spooled


def test_orthanc_also_takes_the_streamed_body_chunked(
    tmp_path: Path, orthanc: OrthancServer
) -> None:
    """Without a Content-Length httpx sends ``Transfer-Encoding: chunked``: Orthanc stores
    that too (the archive sends the length; a proxy may re-chunk it)."""
    source, ref = _spooled_instance(tmp_path, 2)
    body = MultipartBody(source)
    request = httpx.Request(
        "POST",
        f"{orthanc.base_url}/studies",
        content=body,
        headers={"Content-Type": body.content_type, "Accept": "application/dicom+json"},
    )
    assert request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in request.headers
    with httpx.Client(timeout=30) as client:
        response = client.send(request)
    assert response.status_code == 200, response.text
    with DicomWebArchive(orthanc.base_url) as archive:
        assert archive.visible([ref]) == {ref.sop_instance_uid}


class CountingSearches(DicomWebArchive):
    """Orthanc, recording each QIDO-RS search's parameters and how many instances it answered;
    ``lists_unsupported`` plays a server that answers a UID list with no match."""

    def __init__(self, base_url: str, lists_unsupported: bool = False) -> None:
        super().__init__(base_url)
        self.lists_unsupported = lists_unsupported
        self.searches: list[tuple[dict[str, str], int]] = []

    def _search(
        self, path: str, params: Sequence[tuple[str, str]]
    ) -> list[dict[str, object]] | None:
        asked = dict(params)
        if self.lists_unsupported and "," in asked.get("SOPInstanceUID", ""):
            self.searches.append((asked, 0))
            return []
        found = super()._search(path, params)
        self.searches.append((asked, -1 if found is None else len(found)))
        return found


def test_verification_names_its_instances_so_the_archive_answers_only_those(
    tmp_path: Path, orthanc: OrthancServer
) -> None:
    """The batched check asks for the pending instances by UID (PS3.18 8.3.4.1 UID list), so
    its cost does not grow with the study: Orthanc answers 3 instances, not the 6 it holds."""
    refs = [_spooled_instance(tmp_path, 10 + i, study=77, size=(320, 240)) for i in range(6)]
    study = refs[0][1].study_uid
    absent = InstanceRef(study, refs[0][1].series_uid, "1.2.826.0.1.3680043.10.543.999.1")
    with DicomWebArchive(orthanc.base_url) as plain:
        for source, ref in refs:
            plain.store(source, ref)
    asked = [ref for _, ref in refs[:3]] + [absent]
    archive = CountingSearches(orthanc.base_url)
    with archive:
        assert archive.visible(asked) == {ref.sop_instance_uid for ref in asked[:3]}
        ((params, answered),) = archive.searches
    assert params["SOPInstanceUID"].split(",") == [ref.sop_instance_uid for ref in asked]
    assert answered == 3
    archive = CountingSearches(orthanc.base_url, lists_unsupported=True)
    with archive:
        assert archive.visible(asked) == {ref.sop_instance_uid for ref in asked[:3]}
        assert [n for _, n in archive.searches] == [0, 6]  # then the whole study, as before
        assert "SOPInstanceUID" not in archive.searches[1][0]


# --- handed over, not claimed ------------------------------------------------------------------


def test_an_encoded_upload_is_handed_to_an_idle_worker_with_its_lease(
    tmp_path: Path, engine: Engine, orthanc: OrthancServer
) -> None:
    """The encode's commit gives the row to this process's idle worker (lease included): no
    other worker may claim it meanwhile, the worker needs one commit for it in all, and if
    the process dies with the row still handed over, its lease expires and any worker
    delivers it."""
    lease = dt.timedelta(seconds=1)
    keeper = LeaseKeeper(engine, lease)
    handoff = Handoff(keeper, CaptureRecord, owner_name("worker-handoff"))
    service = CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions(), handoff=handoff)
    archive = DicomWebArchive(orthanc.base_url)
    policy = OutboxPolicy(lease=lease, retry_base=0.05, retry_max=0.5)
    ours = OutboxWorker(engine, archive, service.encode, policy, keeper=keeper, handoff=handoff)
    other = OutboxWorker(engine, archive, service.encode, policy)  # another replica's
    handoff.open = True
    try:
        with handoff.waiting():  # one of our worker threads is idle
            (first,) = _accept(service, 1)
        row = service.get(first)
        assert row is not None and row.lease_owner == handoff.owner and len(handoff) == 1
        assert not other.run_once()  # leased: not claimable, although encoded and due
        before = metrics.commits()
        assert ours.run_once()
        assert metrics.commits() - before == 1  # no claim: the verified row only
        assert _status(service, first) == CaptureStatus.VERIFIED and len(handoff) == 0
        assert not handoff.ready()  # no idle worker thread: the next upload is not handed over
        with handoff.waiting():
            context = service.get(first)
            assert context is not None
            second = "lean-second"
            request = CaptureRequest(capture_id=second, context_id=context.context_id)
            service.accept(request, io.BytesIO(phone_jpeg(320, 240, seed=99)))
        assert len(handoff) == 1
        keeper.close()  # our process dies: nobody renews the handed row's lease
        _wait_for(lambda: other.run_once() or _status(service, second) == "verified", "expiry")
        while _status(service, second) != CaptureStatus.VERIFIED:
            assert other.run_once()
    finally:
        ours.stop()
        other.stop()
        archive.close()
    assert orthanc.sop_uids() >= {
        r.sop_instance_uid for r in map(service.get, [first, second]) if r
    }


def test_a_ring_sets_one_idle_thread_looking_not_all_of_them(
    tmp_path: Path, engine: Engine
) -> None:
    """Eight idle delivery threads, five rings with nothing due: one thread looks per ring
    (its claim and its next due time), the others wait again without a query. Each used to
    query: 45 ms of CPU per photo with 16 threads in the delivery benchmark."""
    statements: list[str] = []

    def counted(*args: object) -> None:
        statements.append(str(args[2])[:40])

    service = CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions())
    archive = DicomWebArchive("http://127.0.0.1:9")  # never asked: nothing is due
    worker = OutboxWorker(engine, archive, service.encode, SLOW_POLL)
    event.listen(engine, "before_cursor_execute", counted)
    worker.start(8)
    try:
        time.sleep(0.5)  # every thread has looked once at start-up and waits
        statements.clear()
        for _ in range(5):
            worker.wakeup.ring() if worker.wakeup else None
            time.sleep(0.1)
        looks = sum(worker.wakeups.values())
    finally:
        worker.stop()
        archive.close()
        event.remove(engine, "before_cursor_execute", counted)
    assert looks >= 5 * 8  # every thread did wake, five times
    assert len(statements) <= 5 * 3, statements  # ...but only one looked each time


def test_a_handed_photo_costs_the_idle_threads_one_look_not_three(
    tmp_path: Path, engine: Engine, orthanc: OrthancServer
) -> None:
    """Four idle delivery threads, photos handed over one at a time: a photo's delivery
    costs one look for work (the one after it). The thread that took the hand-over used to
    pass the look on although nothing else was due, and the verification's commit woke the
    threads for the EHR notifier, which does not run here: three claim queries per photo."""
    claims: list[str] = []

    def counted(*args: object) -> None:
        if str(args[2]).startswith("SELECT capture.id \nFROM capture"):  # a claim's query
            claims.append(threading.current_thread().name)

    keeper = LeaseKeeper(engine, POLICY.lease)
    handoff = Handoff(keeper, CaptureRecord, owner_name("worker-handoff"))
    service = CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions(), handoff=handoff)
    archive = DicomWebArchive(orthanc.base_url)
    worker = OutboxWorker(
        engine, archive, service.encode, SLOW_POLL, keeper=keeper, handoff=handoff
    )
    seen: list[int] = []
    unsubscribe = worker.wakeup.subscribe(lambda: seen.append(1)) if worker.wakeup else None
    worker.start(4)
    photos = 5
    try:
        _wait_for(lambda: handoff.ready(), "an idle thread")
        time.sleep(0.3)  # every thread has looked once at start-up and waits
        event.listen(engine, "before_cursor_execute", counted)
        context = service.create_context(ContextIn(patient=PatientIn(id="MRN-LOOKS")))
        for i in range(photos):
            _wait_for(lambda: handoff.ready(), "an idle thread")
            request = CaptureRequest(capture_id=f"looks-{i}", context_id=context.id)
            record, _ = service.accept(request, io.BytesIO(phone_jpeg(320, 240, seed=60 + i)))
            done = record.id
            _wait_for(lambda: _status(service, done) == CaptureStatus.VERIFIED, "delivery")  # noqa: B023
            _wait_for(lambda: handoff.ready(), "the thread back to waiting")
            time.sleep(0.05)  # its look after the work
        stored = orthanc.sop_uids()
    finally:
        event.remove(engine, "before_cursor_execute", counted)
        if unsubscribe is not None:
            unsubscribe()
        worker.stop()
        archive.close()
    assert len(stored) == photos
    assert worker.wakeups["poll"] == 0  # every delivery was woken by its commit
    assert photos <= len(claims) <= photos + 1, claims
    assert len(seen) >= 2 * photos  # the phones' streams still hear the encode and the verify


def test_a_verification_wakes_threads_only_where_a_follower_runs(engine: Engine) -> None:
    """``due_in(follow_up=True)``: the phones' streams are told; the threads are woken only
    in a process where the EHR notifier or the worklist completer follows verifications."""
    wakeup = wakeup_for(engine)
    heard: list[int] = []
    unsubscribe = wakeup.subscribe(lambda: heard.append(1))
    try:
        for followed in (False, True):
            wakeup.followed = followed
            before = wakeup.generation
            with write_transaction(engine) as tx:
                due_in(tx, follow_up=True)
            assert wakeup.generation - before == int(followed)
        before = wakeup.generation
        with write_transaction(engine) as tx:
            due_in(tx)  # work for the delivery threads themselves: always rung
        assert wakeup.generation - before == 1
    finally:
        unsubscribe()
        wakeup.followed = False
    assert len(heard) == 3


def test_on_postgresql_a_verification_wakes_only_replicas_that_follow_it_up() -> None:
    """Replica A commits a verification's follow-up (``due_in(follow_up=True)``): B's
    listener tells B's phone streams, and wakes B's threads only once B runs a follower; A's
    plain ``due_in`` (delivery work) wakes B's threads in any case."""
    with fresh_postgres_database() as url:
        replica_a, replica_b = make_engine(url), make_engine(url)
        migrate(replica_a)
        wakeup = wakeup_for(replica_b)
        listener = Listener(replica_b, wakeup)
        heard: list[int] = []
        unsubscribe = wakeup.subscribe(lambda: heard.append(1))
        listener.start()
        try:
            _wait_for(listener.listening.is_set, "B's LISTEN")
            woken = []
            for follow_up, followed in ((True, False), (True, True), (False, False)):
                wakeup.followed = followed
                before, told = wakeup.generation, len(heard)
                with write_transaction(replica_a) as tx:
                    due_in(tx, follow_up=follow_up)
                _wait_for(lambda: len(heard) > told, "B's streams told")  # noqa: B023
                woken.append(wakeup.generation - before)
        finally:
            unsubscribe()
            listener.stop()
            replica_a.dispose()
            replica_b.dispose()
    # A's own in-process ring belongs to A's engine: B's generation moves by the NOTIFY alone
    assert woken == [0, 1, 1]
