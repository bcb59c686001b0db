"""Migration 0007 (session roles, consent, capture.consent_id) upgrades and downgrades on both
databases capture runs on, keeping the rows that were there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from capture_api.store import db
from capture_api.store.db import make_engine
from tests.deliver.service_process import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'capture.db'}")
        yield made
        made.dispose()
        return
    with fresh_postgres_database() as url:
        made = make_engine(url)
        yield made
        made.dispose()


def _migrate(engine: Engine, verb: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, revision)


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_0007_up_down_up(engine: Engine) -> None:
    _migrate(engine, "upgrade", "0006")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO encounter_context (id, patient_json, study_uid, source, created_at) "
                "VALUES ('c1', '{}', '1.2.3', 'test', CURRENT_TIMESTAMP)"
            )
        )
    _migrate(engine, "upgrade", "0007")
    assert "consent" in inspect(engine).get_table_names()
    assert "consent_id" in _columns(engine, "capture")
    assert "roles" in _columns(engine, "user_session")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO consent (id, context_id, consenter, method, recorded_at, "
                "resource_json) VALUES ('k1', 'c1', 'patient', 'verbal', CURRENT_TIMESTAMP, '{}')"
            )
        )
    _migrate(engine, "downgrade", "0006")
    assert "consent" not in inspect(engine).get_table_names()
    assert "consent_id" not in _columns(engine, "capture")
    assert "roles" not in _columns(engine, "user_session")
    _migrate(engine, "upgrade", "head")
    with engine.connect() as c:
        assert c.execute(text("SELECT id FROM encounter_context")).all() == [("c1",)]
