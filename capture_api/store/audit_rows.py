"""The audit trail's rows: the one insert, the auditor's export pages, and the subject lookup.

``capture_api.audit.trail`` decides what a row says and never lets a failed write break its
caller; this module only talks to the database. Rows are only ever inserted: the database
itself refuses UPDATE and DELETE on ``audit_event`` (triggers, migration 0006), so there is
no function here that changes or removes one.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from capture_api.store.db import Database, session
from capture_api.store.records import AuditEventRecord, CaptureRecord, ContextRecord

#: Column widths of the audit table: PostgreSQL refuses a longer value where SQLite keeps it.
_WIDTHS: dict[str, int] = {
    column.name: length
    for column in AuditEventRecord.__table__.columns  # type: ignore[attr-defined]
    if (length := getattr(column.type, "length", None))  # String, or sqlmodel's AutoString
}


def append(database: Database, row: AuditEventRecord) -> int | None:
    """Insert ``row`` (its values made storable) and return its new id; raises what the
    database raises (the trail counts and logs the failure, the caller never sees it).

    A Core insert: the ORM's unit of work costs more CPU than the row is worth, and this runs
    once per audited request. ``row`` itself is not changed: the forwarder sends it as given.
    """
    values = {key: _storable(key, value) for key, value in row.model_dump(exclude={"id"}).items()}
    with database.begin() as connection:
        result = connection.execute(insert(AuditEventRecord), values)
        primary_key = result.inserted_primary_key
        return int(primary_key[0]) if primary_key else None


def _storable(column: str, value: object) -> object:
    """A value every database stores: a refused request may quote hostile ids of any length,
    or a NUL, which PostgreSQL refuses in text; losing the row over that would lose the event."""
    if not isinstance(value, str):
        return value
    value = value.replace("\x00", "\ufffd")
    width = _WIDTHS.get(column)
    return value[:width] if width else value


def page(
    database: Database,
    *,
    after: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    patient: str | None = None,
    limit: int,
) -> tuple[list[AuditEventRecord], bool]:
    """Up to ``limit`` events, oldest first, and whether more follow (one more row is read to
    know). Pages follow the row id (``after``), which is stable while events are appended;
    ``since`` is inclusive, ``until`` exclusive."""
    statement = select(AuditEventRecord)
    if after is not None:
        statement = statement.where(col(AuditEventRecord.id) > after)
    if since is not None:
        statement = statement.where(col(AuditEventRecord.at) >= since)
    if until is not None:
        statement = statement.where(col(AuditEventRecord.at) < until)
    if patient is not None:
        statement = statement.where(col(AuditEventRecord.patient) == patient)
    statement = statement.order_by(col(AuditEventRecord.id)).limit(limit + 1)
    with session(database) as s:
        rows = list(s.exec(statement).all())
    return rows[:limit], len(rows) > limit


def subject_rows(
    database: Database, *, context_id: str | None = None, capture_id: str | None = None
) -> tuple[CaptureRecord | None, ContextRecord | None]:
    """The capture (when ``capture_id`` is given) and the context an event concerns: the
    capture's own context when the capture is found, else ``context_id``'s. One session, so
    an audited request costs one short read at most (``audit.subjects`` caches the answer)."""
    with session(database) as s:
        capture = s.get(CaptureRecord, capture_id) if capture_id else None
        if capture is not None:
            context_id = capture.context_id
        context = s.get(ContextRecord, context_id) if context_id else None
    return capture, context


def database_key(database: Database | str) -> str:
    """The name per-process registries key a database by (the syslog forwarder of its rows,
    its resolved subjects): its URL with the password hidden, from an engine or a URL."""
    url = database.url if isinstance(database, Engine) else make_url(database)
    return url.render_as_string(hide_password=True)
