"""A photo on a database spool (``CAPTURE_SPOOL=database``) costs the commits it costs on a
folder (issue 13: at most 4 per photo), and the database keeps exactly what a replica needs;
each spool's folder keeps only what a capture still needs (``tidy``).

The photo's chunks are written in the transaction that inserts its row, the DICOM object's in
the one that moves the row to ``encoded``: the row and the bytes it names are durable together
or not at all. A refused photo leaves nothing behind in the database. Real PostgreSQL; the
oracle for the commit count is the same upload on a folder spool, counted in the same run, and
the stored bytes are read back with psycopg and compared with the spooled files.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, event, update
from sqlmodel import col

from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.deliver.local_archive import LocalArchive
from capture_api.deliver.outbox import OutboxPolicy, OutboxWorker
from capture_api.encode.pipeline import EncoderOptions
from capture_api.intake.service import CaptureRequest, CaptureService
from capture_api.observability import metrics
from capture_api.store.db import make_engine, migrate
from capture_api.store.records import CaptureRecord, CaptureStatus, utcnow
from capture_api.store.spool import Spool
from capture_api.store.spool_blobs import DatabaseSpool
from capture_api.store.spool_source import FolderReader
from tests.conftest import phone_jpeg
from tests.deliver.service_process import fresh_postgres_database, pg_rows


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_postgres_database() as made:
        yield made


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    made = make_engine(url)
    migrate(made)
    metrics.count_commits(made)
    yield made
    made.dispose()


def _kept(url: str) -> dict[str, bytes]:
    """Every file the database keeps, joined from its chunks (psycopg, not our reader)."""
    kept: dict[str, bytes] = {}
    for name, data in pg_rows(url, "SELECT name, data FROM spool_blob ORDER BY name, seq"):
        kept[name] = kept.get(name, b"") + bytes(data)
    return kept


def _commits_of_one_upload(service: CaptureService, capture_id: str, photo: bytes) -> float:
    context = service.create_context(ContextIn(patient=PatientIn(id=f"MRN-{capture_id}")))
    before = metrics.commits()
    record, new = service.accept(
        CaptureRequest(capture_id=capture_id, context_id=context.id), io.BytesIO(photo)
    )
    assert new and record.status == CaptureStatus.ENCODED
    return metrics.commits() - before


def test_a_photo_on_a_database_spool_costs_no_commit_more_and_is_kept_whole(
    tmp_path: Path, engine: Engine, url: str
) -> None:
    folder = CaptureService(engine, Spool(tmp_path / "folder"), EncoderOptions())
    database = CaptureService(engine, DatabaseSpool(tmp_path / "db", engine), EncoderOptions())
    photo = phone_jpeg(640, 480, seed=71)

    on_folder = _commits_of_one_upload(folder, "spool-folder", photo)
    assert _kept(url) == {}  # a folder spool keeps nothing in the database
    on_database = _commits_of_one_upload(database, "spool-db", photo)
    assert on_database == on_folder == 2  # the row with the photo, then encoded with the DICOM

    row = database.get("spool-db")
    assert row is not None and row.photo_path and row.dicom_path
    kept = _kept(url)
    assert kept == {
        Path(row.photo_path).name: Path(row.photo_path).read_bytes(),
        Path(row.dicom_path).name: Path(row.dicom_path).read_bytes(),
    }
    assert kept[Path(row.photo_path).name] == photo  # the upload, byte for byte


def test_a_large_photo_is_kept_in_small_rows_in_its_own_transaction(
    tmp_path: Path, engine: Engine, url: str
) -> None:
    """Rows of at most 64 KiB (``BLOB_CHUNK``: every buffer a row passes through is as big as
    the row, and a pooled connection keeps its buffers; with 1 MiB rows a replica grew 2.5x
    the photo per concurrent upload), written by COPY inside the transaction of the row that
    names them: rolled back with it, committed with it."""
    service = CaptureService(engine, DatabaseSpool(tmp_path / "db", engine), EncoderOptions())
    photo = phone_jpeg(1600, 1200, seed=73)
    assert len(photo) > 4 * 64 * 1024  # several rows

    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-ROWS")))
    with pytest.raises(RuntimeError, match="after the rows"), engine.begin() as connection:
        DatabaseSpool(tmp_path / "db", engine).keep_in(connection, _file(tmp_path, photo))
        raise RuntimeError("after the rows")
    assert _kept(url) == {}  # rolled back with the transaction

    record, _ = service.accept(
        CaptureRequest(capture_id="spool-rows", context_id=context.id), io.BytesIO(photo)
    )
    assert record.photo_path is not None
    sizes = pg_rows(
        url,
        "SELECT seq, length(data) FROM spool_blob WHERE name = %s ORDER BY seq",
        Path(record.photo_path).name,
    )
    assert [seq for seq, _ in sizes] == list(range(len(sizes)))
    assert max(size for _, size in sizes) == 64 * 1024
    assert sum(size for _, size in sizes) == len(photo)
    assert _kept(url)[Path(record.photo_path).name] == photo


def test_another_replica_reads_a_photo_back_a_mebibyte_per_query(
    tmp_path: Path, engine: Engine, url: str
) -> None:
    """The replica that delivers a photo another accepted reads it from ``spool_blob`` 16
    rows per query (1 MiB), not one query per 64 KiB row (about 60 for a 12 MP photo), its
    first row read with its size (what tells a composed file from a whole one); a
    row gone from the database (another replica verified the photo meanwhile) is an
    ``OSError`` saying so, not a short photo."""
    photo = os.urandom(40 * 64 * 1024 + 1234)  # 41 rows, the last one short
    path = tmp_path / "a" / "ab" / "abphoto"
    DatabaseSpool(tmp_path / "a", engine).write_bytes(path, photo)
    path.unlink()  # replica A's folder: on another machine
    other = DatabaseSpool(tmp_path / "b", engine)
    statements: list[str] = []

    def ran(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", ran)
    try:
        source = other.source(str(path))
        assert source.size == len(photo)
        assert len(statements) == 1  # its size, and row 0: whole or composed, no query more
        assert b"".join(source.chunks()) == photo
    finally:
        event.remove(engine, "before_cursor_execute", ran)
    assert len(statements) == 4  # then rows 1-16, 17-32, 33-40

    pg_rows(url, "DELETE FROM spool_blob WHERE name = 'abphoto' AND seq = 20 RETURNING seq")
    with pytest.raises(OSError, match="lost rows 17-32"):
        b"".join(source.chunks())
    pg_rows(url, "DELETE FROM spool_blob WHERE name = 'abphoto' AND seq = 0 RETURNING seq")
    with pytest.raises(OSError, match="lost rows 0-0") as lost:
        other.source(str(path))
    assert "lost rows 0-0" in (lost.value.strerror or "")  # what the outbox shows as the reason


def _file(folder: Path, data: bytes) -> Path:
    path = folder / "photo.jpg"
    path.write_bytes(data)
    return path


def test_a_refused_photo_leaves_nothing_in_the_database(
    tmp_path: Path, engine: Engine, url: str
) -> None:
    service = CaptureService(engine, DatabaseSpool(tmp_path / "db", engine), EncoderOptions())
    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-REFUSED")))
    cut = phone_jpeg(640, 480, seed=72)[:-5000]  # the camera's file, cut off
    record, _ = service.accept(
        CaptureRequest(capture_id="spool-cut", context_id=context.id), io.BytesIO(cut)
    )
    assert record.status == CaptureStatus.FAILED, record.reason
    assert _kept(url) == {}


def test_each_replica_deletes_its_own_files_of_photos_another_replica_verified(
    tmp_path: Path, engine: Engine, url: str
) -> None:
    """Replica B verifies a photo replica A accepted: B deletes the chunks, but A's files are
    on A's disk, which B cannot reach. A's idle worker deletes them (``tidy``): exactly the
    files the database no longer keeps and older than the grace, nothing a capture still
    needs. Before, A kept them for good: 2 x the photo per photo another replica delivered.

    Both replicas run here on one disk, so B's unlink reaches A's files; A's disk as B leaves
    it on another machine is A's files put back after B is done.
    """
    folder_a = tmp_path / "a"
    spool_a = DatabaseSpool(folder_a, engine)
    service_a = CaptureService(engine, spool_a, EncoderOptions())
    spool_b = DatabaseSpool(tmp_path / "b", engine)
    policy = OutboxPolicy(spool_tidy_every=0)  # tidy at every idle look
    archive = LocalArchive(tmp_path / "archive")
    worker_a = OutboxWorker(engine, archive, service_a.encode, policy, spool=spool_a)
    worker_b = OutboxWorker(engine, archive, service_a.encode, policy, spool=spool_b)
    context = service_a.create_context(ContextIn(patient=PatientIn(id="MRN-TIDY")))
    for i, capture_id in enumerate(("tidy-by-b", "tidy-pending")):
        service_a.accept(
            CaptureRequest(capture_id=capture_id, context_id=context.id),
            io.BytesIO(phone_jpeg(320, 240, seed=80 + i)),
        )
    by_b, pending = service_a.get("tidy-by-b"), service_a.get("tidy-pending")
    assert by_b is not None and pending is not None
    a_disk = {p: p.read_bytes() for p in folder_a.rglob("*") if p.is_file()}
    assert {Path(by_b.photo_path or ""), Path(by_b.dicom_path or "")} <= set(a_disk)

    with engine.begin() as connection:  # B gets to "tidy-by-b" first; "tidy-pending" waits
        connection.execute(
            update(CaptureRecord)
            .where(col(CaptureRecord.id) == "tidy-pending")
            .values(next_attempt_at=utcnow() + dt.timedelta(hours=1))
        )
    try:
        assert worker_b.run_once()  # claimed, sent, verified: chunks forgotten
        while worker_b.run_once():
            pass
        verified = service_a.get("tidy-by-b")
        assert verified is not None and verified.status == CaptureStatus.VERIFIED
        for path, data in a_disk.items():  # A's disk, which B never reached
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        two_hours_ago = time.time() - 7200  # older than the grace (1 h)
        for path in a_disk:
            os.utime(path, (two_hours_ago, two_hours_ago))
        young = folder_a / "upload-in-progress.part"  # an upload still arriving
        young.write_bytes(b"\xff\xd8 a photo still arriving")
        crashed = folder_a / "upload-of-a-crash.part"
        crashed.write_bytes(b"\xff\xd8 left by a crash")
        os.utime(crashed, (0, 0))

        assert not worker_a.run_once()  # nothing due for A: it tidies
    finally:
        worker_a.stop()
        worker_b.stop()
        archive.close()

    needed = {Path(pending.photo_path or ""), Path(pending.dicom_path or "")}
    assert {p for p in folder_a.rglob("*") if p.is_file()} == needed | {young}
    assert set(_kept(url)) == {path.name for path in needed}  # and the database kept those


def test_a_folder_spool_deletes_what_a_crash_left_and_keeps_what_captures_name(
    tmp_path: Path, engine: Engine
) -> None:
    """The default spool (a folder, ``make run``) after a crash: half an upload (``.part``), a
    DICOM file whose encode never committed. The idle worker deletes those once older than the
    grace, and keeps every file a capture row still names, however old."""
    folder = tmp_path / "spool"
    service = CaptureService(engine, Spool(folder), EncoderOptions())
    policy = OutboxPolicy(spool_tidy_every=0)  # tidy at every idle look
    archive = LocalArchive(tmp_path / "archive")
    reader = FolderReader(folder, engine)
    worker = OutboxWorker(engine, archive, service.encode, policy, spool=reader)
    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-CRASH")))
    waiting, _ = service.accept(
        CaptureRequest(capture_id="tidy-waiting", context_id=context.id),
        io.BytesIO(phone_jpeg(320, 240, seed=83)),
    )
    with engine.begin() as connection:  # the archive is away: it waits an hour for its retry
        connection.execute(
            update(CaptureRecord)
            .where(col(CaptureRecord.id) == waiting.id)
            .values(next_attempt_at=utcnow() + dt.timedelta(hours=1))
        )
    half_upload = folder / "upload-3f2a.part"
    half_upload.write_bytes(b"\xff\xd8 the first megabyte of a photo")
    never_committed = service.spool.path_for("tidy-crashed:attempt", ".dcm")
    never_committed.parent.mkdir(parents=True, exist_ok=True)
    never_committed.write_bytes(b"DICM and the rest")
    for i in range(1200):  # a crash loop's worth: more than two batches of names (500)
        (folder / f"upload-loop-{i}.part").write_bytes(b"\xff\xd8")
    two_hours_ago = time.time() - 7200  # older than the grace (1 h)
    for path in folder.rglob("*"):
        os.utime(path, (two_hours_ago, two_hours_ago))
    arriving = folder / "upload-9c41.part"  # an upload arriving now
    arriving.write_bytes(b"\xff\xd8 still arriving")
    statements: list[str] = []

    def ran(*args: object) -> None:
        statements.append(str(args[2]))  # before_cursor_execute(conn, cursor, statement, ...)

    event.listen(engine, "before_cursor_execute", ran)
    tidied = _tidied()
    try:
        assert not worker.run_once()  # nothing due: it tidies
    finally:
        event.remove(engine, "before_cursor_execute", ran)
        worker.stop()
        archive.close()
    # the rows still needing files are read once, not once per batch of names
    assert sum("spool_deleted_at IS NULL" in s for s in statements) == 1, statements
    assert _tidied() - tidied == 1 + 1 + 1200  # capture_spool_tidied_total
    named = {Path(waiting.photo_path or ""), Path(waiting.dicom_path or "")}
    assert {p for p in folder.rglob("*") if p.is_file()} == named | {arriving}


def _tidied() -> float:
    """``capture_spool_tidied_total`` of this process, as /metrics shows it."""
    return REGISTRY.get_sample_value("capture_spool_tidied_total") or 0.0


def _old_leftover(path: Path) -> Path:
    """A file a crash left at ``path``, two hours ago (older than the tidy's grace, 1 h)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8")
    os.utime(path, (time.time() - 7200, time.time() - 7200))
    return path


@contextmanager
def _tidying_worker(engine: Engine, tmp_path: Path, reader: FolderReader) -> Iterator[OutboxWorker]:
    """An outbox worker on ``reader``'s folder that tidies at every idle look."""
    archive = LocalArchive(tmp_path / "archive")
    assert reader.root is not None
    encode = CaptureService(engine, Spool(reader.root), EncoderOptions()).encode
    worker = OutboxWorker(engine, archive, encode, OutboxPolicy(spool_tidy_every=0), spool=reader)
    try:
        yield worker
    finally:
        worker.stop()
        archive.close()


@contextmanager
def _undeletable(path: Path) -> Iterator[None]:
    """``path`` cannot be deleted (immutable: not even by root) while inside."""
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_file_the_tidy_cannot_delete_leaves_the_rest_deleted_and_delivery_healthy(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A spool file the service may not delete (left by another user, an immutable flag): the
    tidy deletes the other leftovers, says how many it could not (no names), and the delivery
    worker stays healthy. Before, the first such file ended the tidy with an exception that
    the worker counted as delivery failing, and the leftovers after it stayed."""
    folder = tmp_path / "spool"
    leftovers = [_old_leftover(folder / f"upload-{i}.part") for i in range(5)]
    tidied = _tidied()
    with (
        _tidying_worker(engine, tmp_path, FolderReader(folder, engine)) as worker,
        _undeletable(leftovers[0]),
        caplog.at_level("WARNING", "capture.spool"),
    ):
        assert not worker.run_once()
        assert worker.health.problems() == {}
        assert list(folder.iterdir()) == [leftovers[0]]
    assert _tidied() - tidied == 4
    warned = [r.getMessage() for r in caplog.records if r.name == "capture.spool"]
    assert warned == [
        "the spool tidy could not delete 1 files (Operation not permitted): check the spool's owner"
    ]


def test_a_tidy_that_fails_is_not_a_delivery_failure(
    tmp_path: Path, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The tidy's database read fails (the database went away between the claim and it): the
    worker logs it and tries again at the next tidy; delivery is not reported failing."""
    folder = tmp_path / "spool"
    leftover = _old_leftover(folder / "x" / "upload-1.part")
    broken = FolderReader(folder, make_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}"))
    with _tidying_worker(engine, tmp_path, broken) as worker:
        with caplog.at_level("WARNING", "capture.outbox"):
            assert not worker.run_once()
        assert worker.health.problems() == {}
    assert leftover.exists()  # kept: nothing knew it was unneeded
    warned = [r.getMessage() for r in caplog.records if r.name == "capture.outbox"]
    assert warned == ["the spool tidy failed (OperationalError); next in 0 s"]
