"""The audit trail's rows: the one insert, the auditor's export pages, the subject lookup, the
chain walk for ``audit verify``, and the ATNA forwarding queue.

``capture_api.audit.trail`` decides what a row says and never lets a failed write break its
caller; this module only talks to the database. Rows are only ever inserted: the database
itself refuses UPDATE and DELETE on ``audit_event`` (triggers, migration 0006), so there is
no function here that changes or removes one.

**The chain head is a lock.** Each row carries the hash of the row before it
(``capture_api.audit.chain``), so two writers must not both read the same last row. ``append``
takes the head in one transaction: PostgreSQL ``pg_advisory_xact_lock`` (held until commit,
so the next writer reads the committed row), SQLite ``BEGIN IMMEDIATE`` (the database's one
write lock, across threads and processes), then reads the last hash, takes the next id,
inserts. A lock rather than a sequence-ordered design (ids first, hashes filled in later in
id order) because ids from a sequence are handed out before commit: a later id can commit
first, a chainer would have to wait for the gaps, and a rolled-back id leaves one forever.
Under the lock ids are taken in commit order. The unique index on ``prev_hash`` (0009) is the
belt to those braces: a fork is refused by the database, not written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from capture_api.store.db import Database, Transaction, is_postgres, session
from capture_api.store.leases import local_owner_gone
from capture_api.store.records import (
    AuditEventRecord,
    AuditForwardRecord,
    CaptureRecord,
    ContextRecord,
)

#: Column widths of the audit table: PostgreSQL refuses a longer value where SQLite keeps it.
_WIDTHS: dict[str, int] = {
    column.name: length
    for column in AuditEventRecord.__table__.columns  # type: ignore[attr-defined]
    if (length := getattr(column.type, "length", None))  # String, or sqlmodel's AutoString
}


#: Any constant: the advisory lock every audit writer of a PostgreSQL database takes.
_CHAIN_LOCK = 7413043

#: ``sign(prev_hash, row values with id) -> (chain_hash, chain_key)``: ``audit.chain``'s job.
Signer = Callable[[str, dict[str, Any]], tuple[str, str]]


def append(
    database: Database, row: AuditEventRecord, sign: Signer, *, forward_owner: str | None = None
) -> int:
    """Insert ``row`` (its values made storable) as the chain's next link; return its id.

    ``sign`` gives the row's chain hash from the previous one (``GENESIS`` for the first);
    ``forward_owner`` (a lease owner name, ``leases.owner_name``) also queues the row for the
    audit record repository (``audit_forward``), in the same transaction. Raises what the
    database raises (the trail counts and logs it). ``row`` gets its chain columns; its other
    values are not changed.
    """
    with database.connect() as connection:
        if is_postgres(database):
            connection.begin()
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, before the read
        try:
            (next_id,) = _append_on(connection, database, [row], sign, forward_owner)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
    return next_id


def append_all_in(
    tx: Transaction,
    rows: Sequence[AuditEventRecord],
    sign: Signer,
    *,
    forward_owner: str | None = None,
) -> list[int]:
    """``append`` inside the caller's write transaction: the rows commit with the change
    they describe (a capture's delivery, its spool purge), or not at all. They are chained in
    this order; the head is read once and the rows (and their forwarding queue entries) are
    inserted in one statement each.

    Put it last in the transaction: on PostgreSQL it takes the chain's advisory lock, held
    until the commit, so every other audit writer waits for the rest of the transaction.
    """
    return _append_on(tx.connection, tx.engine, rows, sign, forward_owner)


def _append_on(
    connection: Connection,
    database: Database,
    rows: Sequence[AuditEventRecord],
    sign: Signer,
    forward_owner: str | None,
) -> list[int]:
    if not rows:
        return []
    if is_postgres(database):
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    prev, ids = _head(connection, database, len(rows))
    inserted: list[dict[str, Any]] = []
    for row, row_id in zip(rows, ids, strict=True):
        values = {
            key: _storable(key, value)
            for key, value in row.model_dump(exclude={"id", *_CHAIN}).items()
        }
        values["at"] = _utc(values["at"])
        values["id"] = row_id
        chain_hash, chain_key = sign(prev, values)
        inserted.append(
            values | {"prev_hash": prev, "chain_hash": chain_hash, "chain_key": chain_key}
        )
        row.prev_hash, row.chain_hash, row.chain_key = prev, chain_hash, chain_key
        prev = chain_hash
    connection.execute(insert(AuditEventRecord), inserted)
    if forward_owner is not None:
        queued = [
            {"audit_id": values["id"], "queued_at": values["at"], "owner": forward_owner}
            for values in inserted
        ]
        connection.execute(insert(AuditForwardRecord), queued)
    return list(ids)


_CHAIN = ("prev_hash", "chain_hash", "chain_key")
GENESIS = "0" * 64


def _head(connection: Connection, database: Database, count: int) -> tuple[str, list[int]]:
    """The last chained row's hash (``GENESIS`` before the first) and the next ``count`` ids.

    One query reads both from the newest row (every row written since the chain began is
    chained); only a newest row from before the chain (migration 0009) needs a second look.
    """
    top = connection.execute(
        select(AuditEventRecord.id, AuditEventRecord.chain_hash)
        .order_by(col(AuditEventRecord.id).desc())
        .limit(1)
    ).first()
    last = top.chain_hash if top is not None else None
    if top is not None and last is None:
        last = connection.execute(
            select(AuditEventRecord.chain_hash)
            .where(col(AuditEventRecord.chain_hash).is_not(None))
            .order_by(col(AuditEventRecord.id).desc())
            .limit(1)
        ).scalar()
    if is_postgres(database):
        sequence = (
            "SELECT nextval(pg_get_serial_sequence('audit_event', 'id')) "
            "FROM generate_series(1, :n) ORDER BY 1"
        )
        ids = [int(i) for i in connection.execute(text(sequence), {"n": count}).scalars()]
    else:
        first = (top.id if top is not None else 0) + 1
        ids = list(range(first, first + count))
    return (str(last) if last else GENESIS), ids


def _utc(value: object) -> object:
    """The event time in UTC (SQLite keeps no offset: what is stored is what is hashed)."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC)
    return value


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
    database: Database,
    *,
    context_id: str | None = None,
    capture_id: str | None = None,
    tx: Transaction | None = None,
) -> tuple[CaptureRecord | None, ContextRecord | None]:
    """The capture (when ``capture_id`` is given) and the context an event concerns: the
    capture's own context when the capture is found, else ``context_id``'s. One session, so
    an audited request costs one short read at most (``audit.subjects`` caches the answer).

    Inside a write transaction ``tx`` the read goes through its connection: a second pooled
    connection, taken while holding SQLite's write lock (or the audit chain's advisory lock),
    deadlocks once every other connection of the pool waits for that lock.
    """
    reader = Session(bind=tx.connection, expire_on_commit=False) if tx else session(database)
    with reader as s:
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


# --- the chain, for ``capture-api audit verify`` ----------------------------------------------


def chain_rows(database: Database, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every row with every column, oldest id first, read ``batch`` rows at a time (a trail of
    millions of rows is walked in constant memory)."""
    after = 0
    columns = AuditEventRecord.__table__.columns  # type: ignore[attr-defined]
    while True:
        with database.connect() as connection:
            page = (
                connection.execute(
                    select(*columns)
                    .where(col(AuditEventRecord.id) > after)
                    .order_by(col(AuditEventRecord.id))
                    .limit(batch)
                )
                .mappings()
                .all()
            )
        if not page:
            return
        for found in page:
            yield dict(found)
        after = int(page[-1]["id"])


# --- the ATNA forwarding queue (audit_forward) --------------------------------------------------


def pending_forwards(
    database: Database, *, queued_before: dt.datetime, limit: int
) -> list[AuditEventRecord]:
    """Rows not yet sent, oldest first: those queued before ``queued_before``, and at once
    those a gone process of this machine queued (``leases.local_owner_gone``)."""
    with session(database) as s:
        owners = s.exec(select(AuditForwardRecord.owner).distinct()).all()
        gone = [o for o in owners if local_owner_gone(o)]
        statement = (
            select(AuditEventRecord)
            .join(AuditForwardRecord, col(AuditForwardRecord.audit_id) == col(AuditEventRecord.id))
            .where(
                or_(
                    col(AuditForwardRecord.queued_at) < queued_before,
                    col(AuditForwardRecord.owner).in_(gone),
                )
            )
            .order_by(col(AuditEventRecord.id))
            .limit(limit)
        )
        return list(s.exec(statement).all())


def forwarded(database: Database, audit_ids: list[int]) -> None:
    """The repository took these rows: they leave the queue."""
    if not audit_ids:
        return
    with database.begin() as connection:
        connection.execute(
            delete(AuditForwardRecord).where(col(AuditForwardRecord.audit_id).in_(audit_ids))
        )


def pending_count(database: Database) -> int:
    """How many rows wait for the repository (metrics, tests)."""
    with database.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(AuditForwardRecord)).scalar_one()
        )
