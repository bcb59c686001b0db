"""Migration 0011 (the lesion table, capture.lesion_uid and capture.dermoscopy_json) upgrades
and downgrades on both databases capture runs on, keeping the rows that were there, and its
tables are the ones the models declare."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from tests.privacy.test_migration import _columns, _migrate, engine

__all__ = ["engine"]  # the fixture: SQLite and PostgreSQL


def test_0011_up_down_up(engine: Engine) -> None:
    _migrate(engine, "upgrade", "0008")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO encounter_context (id, patient_json, study_uid, source, created_at) "
                "VALUES ('c1', '{}', '1.2.3', 'test', CURRENT_TIMESTAMP)"
            )
        )
    _migrate(engine, "upgrade", "0011")
    assert {"lesion_uid", "dermoscopy_json"} <= _columns(engine, "capture")
    assert {"tracking_uid", "patient_id", "issuer", "number", "view", "x", "y"} <= _columns(
        engine, "lesion"
    )
    with engine.begin() as c:
        insert = (
            "INSERT INTO lesion (tracking_uid, patient_id, issuer, number, label, source, "
            "created_at) VALUES (:uid, 'P1', '', :n, :label, 'capture', CURRENT_TIMESTAMP)"
        )
        c.execute(text(insert), {"uid": "2.25.1", "n": 1, "label": "L1"})
        try:
            with c.begin_nested():
                c.execute(text(insert), {"uid": "2.25.2", "n": 1, "label": "L1"})
            duplicate_number = True
        except Exception:  # the driver's IntegrityError: the unique (patient, issuer, number)
            duplicate_number = False
    assert not duplicate_number
    _migrate(engine, "downgrade", "0008")
    assert "lesion" not in inspect(engine).get_table_names()
    assert "lesion_uid" not in _columns(engine, "capture")
    _migrate(engine, "upgrade", "head")
    with engine.begin() as c:
        assert c.execute(text("SELECT id FROM encounter_context")).scalar_one() == "c1"
