"""Migration 0014 (``rejection``, ``notification_retraction``) on SQLite and PostgreSQL, and a
double tap that really races: eight requests at once on PostgreSQL reject once, one KOS."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect
from sqlmodel import Session, col, select

from capture_api.api.app import create_app
from capture_api.store.records import CaptureRecord, ObjectKind, RejectionRecord
from tests.audit.conftest import settings_for
from tests.correct.conftest import PATIENT_A, engine_of, open_context, send_photo, wait_status
from tests.deliver.service_process import fresh_postgres_database
from tests.privacy.test_migration import _migrate, engine

__all__ = ["engine"]  # the fixture: SQLite and PostgreSQL


def test_0014_up_down_up(engine: Engine) -> None:
    _migrate(engine, "upgrade", "0012")
    assert "rejection" not in inspect(engine).get_table_names()
    _migrate(engine, "upgrade", "0014")
    tables = set(inspect(engine).get_table_names())
    assert {"rejection", "notification_retraction"} <= tables
    unique = {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("rejection")}
    indexed = {
        tuple(i["column_names"])
        for i in inspect(engine).get_indexes("rejection")
        if i.get("unique")
    }
    assert ("sop_instance_uid",) in unique | indexed
    _migrate(engine, "downgrade", "0012")
    tables = set(inspect(engine).get_table_names())
    assert not {"rejection", "notification_retraction"} & tables
    _migrate(engine, "upgrade", "head")
    assert "rejection" in inspect(engine).get_table_names()


@pytest.fixture
def pg_client(tmp_path: Path) -> Iterator[TestClient]:
    with fresh_postgres_database() as url:
        settings = settings_for(tmp_path, database_url=url)
        with TestClient(create_app(settings)) as client:
            yield client


def test_eight_taps_at_once_on_postgresql_reject_once_with_one_kos(pg_client: TestClient) -> None:
    context_id = open_context(pg_client, PATIENT_A)
    send_photo(pg_client, context_id, "race-1")

    def tap(_: int) -> int:
        answer = pg_client.post("/api/v1/captures/race-1/rejection", json={"reason": "quality"})
        return int(answer.status_code)

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(tap, range(8)))
    assert statuses == [200] * 7 + [201], statuses
    with Session(engine_of(pg_client)) as s:
        rows = s.exec(select(RejectionRecord)).all()
        kos = s.exec(
            select(CaptureRecord).where(col(CaptureRecord.object_kind) == ObjectKind.KOS.value)
        ).all()
    assert len(rows) == 1 and len(kos) == 1
    wait_status(pg_client, kos[0].id, "verified")
