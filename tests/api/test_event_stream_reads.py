"""What an event stream's look after a commit reads: stamps first, whole rows only for moved ones.

A burst of uploads to one context woke every open stream once per state change, and each look
built every photo changed in the last ``RECENT_SECONDS`` again (about 5 ms of the service's
Python per photo at concurrency 4: issue 13). ``captures.changed`` reads two columns, and the
rows of the photos whose ``updated_at`` is not the one the stream already has.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, update
from sqlmodel import col

from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.encode.pipeline import EncoderOptions
from capture_api.intake.service import CaptureRequest, CaptureService
from capture_api.store import captures
from capture_api.store.db import make_engine, migrate
from capture_api.store.records import CaptureRecord, CaptureStatus, utcnow
from capture_api.store.spool import Spool
from tests.conftest import phone_jpeg

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'capture.db'}")
    migrate(made)
    yield made
    made.dispose()


def _photos(tmp_path: Path, engine: Engine, count: int) -> tuple[str, list[str]]:
    service = CaptureService(engine, Spool(tmp_path / "spool"), EncoderOptions())
    context = service.create_context(ContextIn(patient=PatientIn(id="MRN-FEED")))
    ids = [f"feed-{i}" for i in range(count)]
    for i, capture_id in enumerate(ids):
        request = CaptureRequest(capture_id=capture_id, context_id=context.id)
        service.accept(request, io.BytesIO(phone_jpeg(160, 120, seed=i)))
    return context.id, ids


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", note)
    return seen


def _move_on(engine: Engine, capture_id: str, at: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(CaptureRecord)
            .where(col(CaptureRecord.id) == capture_id)
            .values(status=CaptureStatus.STORED.value, updated_at=at)
        )


def test_a_look_builds_only_the_photos_that_moved_on(tmp_path: Path, engine: Engine) -> None:
    context_id, ids = _photos(tmp_path, engine, 4)
    seen: dict[str, dt.datetime] = {}
    first = captures.changed(engine, context_id, LONG_AGO, seen)
    assert [r.id for r in first] == ids  # a stream that has read nothing reads them all
    seen.update((r.id, r.updated_at) for r in first)

    statements = _statements(engine)
    assert captures.changed(engine, context_id, LONG_AGO, seen) == []
    assert len(statements) == 1 and "capture.updated_at" in statements[0]  # the stamps only

    _move_on(engine, ids[2], utcnow())
    statements.clear()
    moved = captures.changed(engine, context_id, LONG_AGO, seen)
    assert [(r.id, r.status) for r in moved] == [(ids[2], CaptureStatus.STORED.value)]
    assert len(statements) == 2


def test_a_look_leaves_out_what_changed_before_its_window(tmp_path: Path, engine: Engine) -> None:
    context_id, ids = _photos(tmp_path, engine, 2)
    window = utcnow()
    _move_on(engine, ids[0], window - dt.timedelta(seconds=1))
    _move_on(engine, ids[1], window + dt.timedelta(milliseconds=1))
    assert [r.id for r in captures.changed(engine, context_id, window, {})] == [ids[1]]
