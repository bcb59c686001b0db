"""Read-only figures over many rows: the wound-care audit report and the outbox metrics.

Nothing here writes. The audit report streams one narrow row per capture of a date range (the
counting, and the unit each encounter names, are the report's business,
``capture_api.review.audit_report``); the metrics read the outbox state at scrape time, so
every replica reports the same numbers (``capture_api.observability.metrics``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from capture_api.exceptions import CaptureError
from capture_api.store.db import Database, session
from capture_api.store.records import (
    CaptureRecord,
    ContextRecord,
    NotificationRecord,
    ObjectKind,
)


class DatabaseUnavailable(CaptureError):
    """The database did not answer; the message names the driver's error type only."""


# --- the wound-care audit report ------------------------------------------------------------------


class CaptureFacts(NamedTuple):
    """What the audit report counts of one capture (no patient identifier)."""

    context_id: str
    status: str
    created_at: dt.datetime
    verified_at: dt.datetime | None
    body_site_code: str | None
    reason: str | None
    encounter_json: str | None


def captures_taken(db: Database, start: dt.datetime, end: dt.datetime) -> Iterator[CaptureFacts]:
    """Every capture accepted in ``[start, end)``, with its context's encounter, streamed.

    One query (the range is bounded by ``created_at``, which is indexed), read row by row on
    one connection, so a year of photos is never held in memory at once.
    """
    query = (
        sa.select(
            col(CaptureRecord.context_id),
            col(CaptureRecord.status),
            col(CaptureRecord.created_at),
            col(CaptureRecord.verified_at),
            col(CaptureRecord.body_site_code),
            col(CaptureRecord.reason),
            col(ContextRecord.encounter_json),
        )
        .join(ContextRecord, col(ContextRecord.id) == col(CaptureRecord.context_id))
        .where(col(CaptureRecord.created_at) >= start)
        .where(col(CaptureRecord.created_at) < end)
        .where(col(CaptureRecord.object_kind) == ObjectKind.PHOTO.value)
    )
    with db.connect() as connection:
        for row in connection.execute(query):
            yield CaptureFacts(*row)


# --- the outbox metrics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxFigures:
    """The outbox state at one moment: counts by status, and the oldest undelivered capture."""

    captures: dict[str, int]
    oldest_pending: dt.datetime | None
    notifications: dict[str, int]


def outbox_figures(
    db: Database, capture_states: Sequence[str], notification_states: Sequence[str]
) -> OutboxFigures:
    """Captures per status in ``capture_states`` (and the oldest of them), notifications per
    status in ``notification_states``: three queries on one session, on the indexed ``status``.

    Raises ``DatabaseUnavailable`` when the database does not answer (the scrape still
    succeeds, saying so).
    """
    status, created = col(CaptureRecord.status), col(CaptureRecord.created_at)
    n_status = col(NotificationRecord.status)
    try:
        with session(db) as s:
            depth = _counts(
                s.exec(
                    select(status, func.count())
                    .where(status.in_(list(capture_states)))
                    .group_by(status)
                ).all()
            )
            oldest = s.exec(select(func.min(created)).where(status.in_(list(capture_states)))).one()
            notes = _counts(
                s.exec(
                    select(n_status, func.count())
                    .where(n_status.in_(list(notification_states)))
                    .group_by(n_status)
                ).all()
            )
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(type(exc).__name__) from exc
    return OutboxFigures(depth, oldest, notes)


def _counts(rows: Iterable[tuple[object, int]]) -> dict[str, int]:
    return {str(status): int(count) for status, count in rows}
