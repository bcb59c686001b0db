"""The database itself refuses to change or delete audit rows (migration 0006 triggers), on
SQLite and on PostgreSQL, whoever sends the statement; new rows can still be appended."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from capture_api.audit.trail import Outcome, record
from capture_api.store.db import make_engine, migrate
from tests.deliver.service_process import fresh_postgres_database

REFUSED = "append-only"


@contextmanager
def _migrated(url: str) -> Iterator[Engine]:
    made = make_engine(url)
    migrate(made)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        with _migrated(f"sqlite:///{tmp_path / 'audit.db'}") as made:
            yield made
        return
    with fresh_postgres_database() as url, _migrated(url) as made:
        yield made


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM audit_event")).scalar_one())


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET outcome = 'success'",
        "UPDATE audit_event SET patient = NULL WHERE id = :id",
        "DELETE FROM audit_event WHERE id = :id",
        "DELETE FROM audit_event",
    ],
)
def test_rows_cannot_be_changed_or_deleted(engine: Engine, statement: str) -> None:
    row = record(engine, "scan", Outcome.REFUSED, actor="Practitioner/1", patient="MRN-9")
    assert row is not None and row.id is not None
    with pytest.raises(DBAPIError, match=REFUSED), engine.begin() as connection:
        connection.execute(text(statement), {"id": row.id} if ":id" in statement else {})
    with engine.connect() as connection:
        kept = connection.execute(
            text("SELECT outcome, patient FROM audit_event WHERE id = :id"), {"id": row.id}
        ).one()
    assert tuple(kept) == ("refused", "MRN-9")
    assert record(engine, "scan", Outcome.SUCCESS, patient="MRN-9") is not None
    assert _count(engine) == 2


def test_truncate_is_refused_on_postgresql() -> None:
    """SQLite has no TRUNCATE (its DELETE without WHERE is refused above)."""
    with fresh_postgres_database() as url, _migrated(url) as engine:
        record(engine, "scan", Outcome.SUCCESS, patient="MRN-9")
        with pytest.raises(DBAPIError, match=REFUSED), engine.begin() as connection:
            connection.execute(text("TRUNCATE audit_event"))
        assert _count(engine) == 1


def test_hostile_values_are_stored_not_dropped(engine: Engine) -> None:
    """A refused request may quote a NUL or an over-long id; PostgreSQL refuses both as they
    are, and the event must still be kept (found by the schemathesis run on PostgreSQL)."""
    row = record(
        engine,
        "timeline",
        Outcome.REFUSED,
        actor="integration",
        sop_instance_uid="1." * 150,
        context_id="c\x00" * 50,
        detail="bad\x00value",
    )
    assert row is not None and row.id is not None
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT sop_instance_uid, context_id, detail FROM audit_event WHERE id = :id"),
            {"id": row.id},
        ).one()
    assert len(stored[0]) == 64 and stored[0].startswith("1.1.")
    assert "\x00" not in stored[1] and len(stored[1]) <= 64
    assert stored[2] == "bad\ufffdvalue"
