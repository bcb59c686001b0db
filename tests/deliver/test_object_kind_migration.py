"""Migration 0012 (``capture.object_kind``) keeps existing rows as photos, on SQLite and
PostgreSQL, and goes down and up again."""

from __future__ import annotations

from sqlalchemy import Engine, text

from tests.privacy.test_migration import _columns, _migrate, engine

__all__ = ["engine"]  # the fixture: SQLite and PostgreSQL


def test_0012_up_down_up(engine: Engine) -> None:
    _migrate(engine, "upgrade", "0011")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO encounter_context (id, patient_json, study_uid, source, created_at) "
                "VALUES ('c1', '{}', '1.2.3', 'test', CURRENT_TIMESTAMP)"
            )
        )
        c.execute(
            text(
                "INSERT INTO capture (id, context_id, status, warnings_json, sha256, size_bytes, "
                "sensitivity_level, sensitivity_categories, instance_number, attempts, "
                "verify_attempts, stow_requests, next_attempt_at, created_at, updated_at) "
                "VALUES ('old', 'c1', 'verified', '[]', '', 1, 'normal', '', 1, 0, 0, 1, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    _migrate(engine, "upgrade", "0012")
    with engine.begin() as c:
        kind = c.execute(text("SELECT object_kind FROM capture WHERE id = 'old'")).scalar_one()
    assert kind == "photo"
    _migrate(engine, "downgrade", "0011")
    assert "object_kind" not in _columns(engine, "capture")
    _migrate(engine, "upgrade", "head")
    assert "object_kind" in _columns(engine, "capture")
