"""Migration 0008 (the worklist completion queue) upgrades and downgrades on both databases
capture runs on: a completion requested before the upgrade is queued, none is lost either way."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from tests.privacy.test_migration import _migrate, engine

__all__ = ["engine"]  # the fixture: SQLite and PostgreSQL


_CONTEXT = (
    "INSERT INTO encounter_context (id, patient_json, study_uid, source, created_at, "
    "complete_requested_at, completed_at) VALUES (:id, '{}', '1.2.3', 'worklist', "
    "CURRENT_TIMESTAMP, :requested, :completed)"
)


def test_0008_queues_pending_requests_and_downgrades(engine: Engine) -> None:
    _migrate(engine, "upgrade", "0007")
    with engine.begin() as c:
        for context_id, requested, completed in (
            ("waiting", "2026-03-01 10:00:00+00:00", None),
            ("done", "2026-03-01 10:00:00+00:00", "2026-03-01 10:05:00+00:00"),
            ("never-asked", None, None),
        ):
            c.execute(
                text(_CONTEXT),
                {"id": context_id, "requested": requested, "completed": completed},
            )
        c.execute(
            text(
                "INSERT INTO capture (id, context_id, status, warnings_json, sha256, size_bytes, "
                "sensitivity_level, sensitivity_categories, instance_number, attempts, "
                "verify_attempts, stow_requests, next_attempt_at, created_at, updated_at) "
                "VALUES ('k1', 'waiting', 'verified', '[]', 'x', 1, 'normal', '', 1, 0, 0, 1, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    _migrate(engine, "upgrade", "0008")
    with engine.connect() as c:
        queued = c.execute(
            text("SELECT id, status, attempts, lease_owner FROM worklist_completion")
        ).all()
    assert queued == [("waiting", "pending", 0, None)]  # only the request still in flight

    _migrate(engine, "downgrade", "0007")
    assert "worklist_completion" not in inspect(engine).get_table_names()
    with engine.connect() as c:  # the requests are still on the contexts, for the old code
        rows = c.execute(
            text(
                "SELECT id FROM encounter_context WHERE complete_requested_at IS NOT NULL "
                "AND completed_at IS NULL"
            )
        ).all()
        assert rows == [("waiting",)]
        assert c.execute(text("SELECT id FROM capture")).all() == [("k1",)]
    _migrate(engine, "upgrade", "head")
    assert "worklist_completion" in inspect(engine).get_table_names()
