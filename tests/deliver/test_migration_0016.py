"""Migration 0016 (the indexes that keep a photo's cost bounded at volume) goes up, down and up
again, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from tests.privacy.test_migration import _migrate, engine

__all__ = ["engine"]  # the fixture: SQLite and PostgreSQL

ADDED = {
    "ix_capture_context_kind_updated": ["context_id", "object_kind", "updated_at"],
    "ix_capture_status_verified": ["status", "verified_at"],
    "ix_capture_spool_kept": ["spool_deleted_at", "status", "verified_at"],
}


def _indexes(engine: Engine, table: str = "capture") -> dict[str, list[str]]:
    found = inspect(engine).get_indexes(table)
    return {str(i["name"]): [str(c) for c in i["column_names"]] for i in found}


def _others(engine: Engine) -> tuple[list[str] | None, list[str] | None]:
    """The notifications' (status, updated_at) index; the measurements' status-only one."""
    sent = _indexes(engine, "notification").get("ix_notification_status_updated")
    return sent, _indexes(engine, "wound_measurement").get("ix_wound_measurement_status")


def test_0016_up_down_up(engine: Engine) -> None:
    _migrate(engine, "upgrade", "head")
    found = _indexes(engine)
    assert ADDED.items() <= found.items(), found
    assert "ix_capture_object_kind" not in found  # what misled SQLite's planner
    assert _others(engine) == (["status", "updated_at"], None)
    _migrate(engine, "downgrade", "0015")
    found = _indexes(engine)
    assert not ADDED.keys() & found.keys() and found["ix_capture_object_kind"] == ["object_kind"]
    assert _others(engine) == (None, ["status"])
    # An operator built one beforehand (CONCURRENTLY, on a large PostgreSQL table): no error.
    with engine.begin() as connection:
        connection.execute(
            text("CREATE INDEX ix_capture_status_verified ON capture (status, verified_at)")
        )
    _migrate(engine, "upgrade", "head")
    assert ADDED.items() <= _indexes(engine).items()
    assert _others(engine) == (["status", "updated_at"], None)
