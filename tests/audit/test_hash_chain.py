"""A tamper-evident trail (issue 14, item 3): each row carries a hash chained to the row before
it, and ``capture-api audit verify`` finds a row changed or deleted directly in the database,
past the append-only triggers, as a database superuser could (on SQLite by dropping the
triggers, on PostgreSQL by ``ALTER TABLE ... DISABLE TRIGGER USER``, which the tests' role
may do because it owns the table). The chain stays one chain with many writers: threads of
one process and two processes on one database.
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from capture_api.audit import chain
from capture_api.audit.trail import Outcome, record, record_captures
from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.encode.pipeline import EncoderOptions
from capture_api.intake.service import CaptureRequest, CaptureService
from capture_api.store import audit_rows
from capture_api.store.db import is_postgres, make_engine, migrate, write_transaction
from capture_api.store.records import CaptureRecord
from capture_api.store.spool import Spool
from tests.conftest import REPO, phone_jpeg
from tests.deliver.service_process import fresh_postgres_database

KEY = "k" * 40


@contextmanager
def _migrated(url: str) -> Iterator[Engine]:
    made = make_engine(url)
    migrate(made)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    with fresh_postgres_database() as database:
        yield database


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    with _migrated(url) as made:
        yield made


def _write(engine: Engine, count: int, tag: str = "t") -> list[int]:
    ids = []
    for i in range(count):
        row = record(
            engine, "scan", Outcome.SUCCESS, actor=f"Practitioner/{tag}", patient=f"MRN-{i}"
        )
        assert row is not None and row.id is not None
        ids.append(row.id)
    return ids


def _past_the_triggers(engine: Engine, statement: str, **params: object) -> None:
    """What a superuser can do: switch the append-only triggers off, change, switch on."""
    with engine.begin() as connection:
        if is_postgres(engine):
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            connection.execute(text(statement), params)
            connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_event_no_update"))
            connection.execute(text("DROP TRIGGER audit_event_no_delete"))
            connection.execute(text(statement), params)


def _verify_cli(url: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTURE_")}
    env |= {"DATABASE_URL": url}
    if key:
        env["CAPTURE_AUDIT_CHAIN_KEY"] = key
    return subprocess.run(
        [str(Path(sys.executable).parent / "capture-api"), "audit", "verify"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_every_row_is_chained_to_the_one_before(engine: Engine, url: str) -> None:
    ids = _write(engine, 5)
    rows = list(audit_rows.chain_rows(engine))
    assert [r["id"] for r in rows] == ids
    assert rows[0]["prev_hash"] == chain.GENESIS
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["chain_hash"]
    verdict = chain.verify_database(engine, chain.ChainKey.of(None))
    assert verdict.intact and verdict.chained == 5, verdict.problems
    done = _verify_cli(url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "audit trail intact: 5 rows checked" in done.stdout
    assert f"chain head: row {ids[-1]} {rows[-1]['chain_hash']}" in done.stdout


def test_rows_written_together_chain_like_rows_written_one_by_one(
    engine: Engine, tmp_path: Path
) -> None:
    """A verification writes its rows together (``record_captures``: one look at the head,
    one insert): between rows written alone they make the same one chain, in their order,
    with the capture's patient, and the chain verifies."""
    before = _write(engine, 2, "alone")
    capture = _capture(engine, tmp_path)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(str(a[2])))
    with write_transaction(engine) as tx:
        rows = record_captures(
            engine,
            [
                ("stow", Outcome.SUCCESS, capture, "stored"),
                ("verify", Outcome.SUCCESS, capture, None),
                ("spool-purge", Outcome.SUCCESS, capture, None),
            ],
            tx=tx,
        )
    written = [s for s in statements if "audit_event" in s]
    assert len([s for s in written if s.lstrip().upper().startswith("INSERT")]) == 1
    assert len([s for s in written if "ORDER BY audit_event.id DESC" in s]) == 1
    after = _write(engine, 1, "alone")
    chained = list(audit_rows.chain_rows(engine))
    assert [r["id"] for r in chained] == [*before, *(r.id for r in rows), *after]
    assert [r["action"] for r in chained[2:5]] == ["stow", "verify", "spool-purge"]
    assert {r["patient"] for r in chained[2:5]} == {"MRN-TOGETHER"}
    for earlier, later in itertools.pairwise(chained):
        assert later["prev_hash"] == earlier["chain_hash"]
    verdict = chain.verify_database(engine, chain.ChainKey.of(None))
    assert verdict.intact and verdict.chained == 6, verdict.problems


def _capture(engine: Engine, tmp_path: Path) -> CaptureRecord:
    service = CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions())
    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-TOGETHER")))
    request = CaptureRequest(capture_id="together-1", context_id=context.id)
    record, _ = service.accept(request, io.BytesIO(phone_jpeg(64, 48)))
    return record


def test_verify_finds_a_row_changed_past_the_triggers(engine: Engine, url: str) -> None:
    ids = _write(engine, 6)
    _past_the_triggers(engine, "UPDATE audit_event SET patient = 'MRN-X' WHERE id = :id", id=ids[2])
    done = _verify_cli(url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "audit trail NOT intact" in done.stdout
    assert f"row {ids[2]} was changed after it was written" in done.stdout


def test_verify_finds_a_row_deleted_past_the_triggers(engine: Engine, url: str) -> None:
    ids = _write(engine, 6)
    _past_the_triggers(engine, "DELETE FROM audit_event WHERE id = :id", id=ids[3])
    done = _verify_cli(url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"does not link between row {ids[2]} and row {ids[4]}" in done.stdout


def test_verify_finds_the_first_row_deleted_and_a_row_slipped_in(engine: Engine) -> None:
    ids = _write(engine, 3)
    _past_the_triggers(engine, "DELETE FROM audit_event WHERE id = :id", id=ids[0])
    with engine.begin() as connection:  # a plain INSERT: the triggers never stopped those
        connection.execute(
            text(
                "INSERT INTO audit_event (id, at, action, outcome, patient) "
                "VALUES (:id, CURRENT_TIMESTAMP, 'scan', 'success', 'MRN-FAKE')"
            ),
            {"id": ids[-1] + 100},
        )
    verdict = chain.verify_database(engine, chain.ChainKey.of(None))
    assert not verdict.intact
    assert any(f"before row {ids[1]}" in p for p in verdict.problems), verdict.problems
    assert any(f"row {ids[-1] + 100} has no hash" in p for p in verdict.problems)


def test_with_a_key_a_recomputed_chain_is_still_caught(tmp_path: Path) -> None:
    """The superuser changes a row and recomputes every hash after it, but has no key."""
    url = f"sqlite:///{tmp_path / 'keyed.db'}"
    with _migrated(url) as engine:
        chain._keys[audit_rows.database_key(engine)] = chain.ChainKey.of(KEY)
        try:
            ids = _write(engine, 4)
        finally:
            chain._keys.pop(audit_rows.database_key(engine))
        assert _verify_cli(url, KEY).returncode == 0
        forged = chain.ChainKey(b"", chain.ChainKey.of(KEY).name)  # the key's name, not the key
        prev = chain.GENESIS
        rows = list(audit_rows.chain_rows(engine))
        _past_the_triggers(
            engine, "UPDATE audit_event SET patient = 'MRN-X' WHERE id = :id", id=ids[1]
        )
        rows[1]["patient"] = "MRN-X"
        with engine.begin() as connection:
            for row in rows:
                new = forged.link(prev, row)
                connection.execute(
                    text("UPDATE audit_event SET prev_hash = :p, chain_hash = :h WHERE id = :id"),
                    {"p": prev, "h": new, "id": row["id"]},
                )
                prev = new
        assert _verify_cli(url).returncode == 1  # caught without the key too: another key name
        done = _verify_cli(url, KEY)
        assert done.returncode == 1 and f"row {ids[0]} was changed" in done.stdout, done.stdout


def test_rows_written_before_the_chain_are_counted_not_refused(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_event (at, action, outcome) "
                "VALUES (CURRENT_TIMESTAMP, 'login', 'success')"
            )
        )
    _write(engine, 2)
    verdict = chain.verify_database(engine, chain.ChainKey.of(None))
    assert verdict.intact, verdict.problems
    assert (verdict.before_chain, verdict.chained) == (1, 2)


WRITER = """
import sys, threading
from capture_api.audit.trail import Outcome, record
from capture_api.store.db import make_engine
engine = make_engine(sys.argv[1])
tag, threads, each = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
failed = []
def write(n):
    for i in range(each):
        if record(engine, "scan", Outcome.SUCCESS, actor=f"{tag}/{n}", patient=f"M{i}") is None:
            failed.append(i)
workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
[w.start() for w in workers]
[w.join() for w in workers]
sys.exit(1 if failed else 0)
"""


def test_many_writers_in_two_processes_make_one_chain(engine: Engine, url: str) -> None:
    threads, each = 4, 25
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, tag, str(threads), str(each)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("p1", "p2")
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    verdict = chain.verify_database(engine, chain.ChainKey.of(None))
    assert verdict.intact, verdict.problems
    assert verdict.chained == 2 * threads * each
