"""Migration 0015 (``wound_measurement``) goes up, down and up again, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from tests.privacy.test_migration import _columns, _migrate, engine

__all__ = ["engine"]  # the fixture: SQLite and PostgreSQL


def test_0015_up_down_up(engine: Engine) -> None:
    _migrate(engine, "upgrade", "head")
    columns = _columns(engine, "wound_measurement")
    assert {"area_cm2", "method", "outline_json", "sr_sop_instance_uid", "status"} <= columns
    _migrate(engine, "downgrade", "0012")
    assert "wound_measurement" not in inspect(engine).get_table_names()
    _migrate(engine, "upgrade", "head")
    assert "wound_measurement" in inspect(engine).get_table_names()
