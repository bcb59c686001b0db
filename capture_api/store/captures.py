"""Queries on captures: the ``capture`` rows, which are both the photos and the delivery outbox.

Claiming and saving an outbox row (a lease, a heartbeat, a result written only by the lease's
holder) is ``capture_api.store.leases``; this module holds what is particular to captures: the
upload's insert, its conditional ``received ->`` step, re-queueing, the spool's bookkeeping and
the look-ups of the views.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import PurePath

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from capture_api.store.db import (
    Alongside,
    Database,
    Transaction,
    commit_new,
    is_postgres,
    session,
)
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    ContextRecord,
    ObjectKind,
    utcnow,
)
from capture_api.store.wakeup import notify_on, wakeup_for

#: The rows that are photos (not the SR and KOS documents delivered through the same table).
IS_PHOTO = col(CaptureRecord.object_kind) == ObjectKind.PHOTO.value


def get(db: Database, capture_id: str) -> CaptureRecord | None:
    """One capture by its (client-chosen) id, or None."""
    if "\x00" in capture_id:  # never stored, and PostgreSQL refuses to compare it
        return None
    with session(db) as s:
        return s.get(CaptureRecord, capture_id)


def for_context(db: Database, context_id: str) -> list[CaptureRecord]:
    """Every photo of a context, oldest first."""
    with session(db) as s:
        query = select(CaptureRecord).where(CaptureRecord.context_id == context_id, IS_PHOTO)
        return list(s.exec(query.order_by(col(CaptureRecord.created_at))).all())


def changed(
    db: Database, context_id: str, since: dt.datetime, seen: dict[str, dt.datetime]
) -> list[CaptureRecord]:
    """The context's photos updated at or after ``since`` whose ``updated_at`` is not the one
    in ``seen`` (id -> the ``updated_at`` a caller already has), oldest first.

    An event stream's look after a commit: the stamps are read first (two columns, no rows
    built), and only the photos that moved on are read whole. A burst of uploads to one
    context left every look building every photo of the last seconds again (issue 13).
    """
    with session(db) as s:
        stamps = s.exec(
            select(CaptureRecord.id, CaptureRecord.updated_at).where(
                CaptureRecord.context_id == context_id,
                IS_PHOTO,
                col(CaptureRecord.updated_at) >= since,
            )
        ).all()
        moved = [capture_id for capture_id, at in stamps if seen.get(capture_id) != at]
        if not moved:
            return []
        query = select(CaptureRecord).where(col(CaptureRecord.id).in_(moved))
        return list(s.exec(query.order_by(col(CaptureRecord.created_at))).all())


def insert_object(db: Database, record: CaptureRecord) -> bool:
    """Insert an SR or KOS row for the outbox as it is; False if its id is already taken.

    Its instance number is the document's own (one per series); the context's photo count,
    which numbers the photos, does not include it.
    """
    if record.object_kind == ObjectKind.PHOTO.value:
        raise ValueError("photos are inserted with insert_new (they are numbered)")
    with session(db) as s:
        s.add(record)
        try:
            notify_on(s, db)  # flushes the insert (a duplicate raises here); wakes on commit
            s.commit()
        except IntegrityError:
            s.rollback()
            return False
    wakeup_for(db).ring()
    return True


def insert_new(db: Database, record: CaptureRecord, keep: Alongside | None = None) -> bool:
    """Insert a new capture as the context's next instance; False if its id is already taken.

    The instance number is counted and the row inserted in one transaction (one commit: the
    upload's "on disk and committed" promise), with what ``keep`` writes (the spool's copy of
    the photo, ``Spool.keep_in``). False means a concurrent request committed the same capture
    id first (the unique primary key decided): the caller answers as for a re-sent upload.
    """
    with session(db) as s:
        if keep is not None:
            keep(s.connection())
        count = s.exec(
            select(func.count())
            .select_from(CaptureRecord)
            .where(CaptureRecord.context_id == record.context_id, IS_PHOTO)
        ).one()
        record.instance_number = int(count) + 1
        return commit_new(s, record)


def finish_received(
    db: Database,
    record: CaptureRecord,
    keep: Alongside | None = None,
    **values: object,
) -> CaptureRecord | None:
    """Move a row out of ``received`` (only if it is still there) and release its claim, or
    pass it to the lease in ``values`` (``leases.Handoff``: this process's workers send it).
    ``keep`` writes in the same transaction what the row now names (the spool's copy of the
    DICOM object, ``Spool.keep_in``), only if the row moved.

    Conditional, because an encode can finish late: the upload's own encode and a worker's (or
    a re-sent upload's) may both run, and only the first may land. Without the condition a
    late encode overwrote a capture that had already been stored (found by the delivery
    benchmark at concurrency 16). When this call moved the row, ``record`` (the caller's copy
    of the ``received`` row) gets ``values`` and is returned: the row as written, not read
    back. None when another encode moved it first.
    """
    handed = values.get("lease_owner") is not None  # the Handoff rings once it queued the row
    values = {"lease_owner": None, "lease_expires_at": None} | values | {"updated_at": utcnow()}
    due = values.get("status") == CaptureStatus.ENCODED.value
    with session(db) as s:
        result = s.exec(
            update(CaptureRecord)
            .where(col(CaptureRecord.id) == record.id)
            .where(col(CaptureRecord.status) == CaptureStatus.RECEIVED.value)
            .values(**values)
        )
        if result.rowcount == 1 and keep is not None:
            keep(s.connection())
        if due and result.rowcount == 1:
            notify_on(s, db)  # encoded: workers and event streams of every replica wake
        s.commit()
    if result.rowcount != 1:
        return None
    if due and not handed:
        wakeup_for(db).ring()
    for name, value in values.items():
        setattr(record, name, value)
    return record


def requeue_failed(db: Database, kinds: Sequence[str]) -> int:
    """Send failed captures of these failure kinds again, if their DICOM object is spooled.

    Returns how many rows went back to ``encoded`` (attempts reset, due now).
    """
    with session(db) as s:
        result = s.exec(
            update(CaptureRecord)
            .where(col(CaptureRecord.status) == CaptureStatus.FAILED.value)
            .where(col(CaptureRecord.failure_kind).in_(list(kinds)))
            .where(col(CaptureRecord.dicom_path).is_not(None))
            .values(
                status=CaptureStatus.ENCODED.value,
                reason=None,
                failure_kind=None,
                attempts=0,
                next_attempt_at=utcnow(),
                updated_at=utcnow(),
            )
        )
        notify_on(s, db)
        s.commit()
    wakeup_for(db).ring()
    return int(result.rowcount)


# --- the spool's bookkeeping ----------------------------------------------------------------------


def spool_purge_due(db: Database, verified_before: dt.datetime, limit: int = 100) -> list[str]:
    """Ids of verified captures whose spooled bytes are kept longer than the retention."""
    with session(db) as s:
        return list(
            s.exec(
                select(CaptureRecord.id)
                .where(col(CaptureRecord.status) == CaptureStatus.VERIFIED.value)
                .where(col(CaptureRecord.spool_deleted_at).is_(None))
                .where(col(CaptureRecord.verified_at) < verified_before)
                .limit(limit)
            ).all()
        )


def mark_spool_deleted(db: Database, capture_id: str) -> None:
    """Record that the capture's spooled photo and DICOM object are gone."""
    with session(db) as s:
        s.exec(
            update(CaptureRecord)
            .where(col(CaptureRecord.id) == capture_id)
            .where(col(CaptureRecord.spool_deleted_at).is_(None))
            .values(spool_deleted_at=utcnow())
        )
        s.commit()


def mark_spool_deleted_in(tx: Transaction, capture_id: str) -> bool:
    """``mark_spool_deleted`` in the caller's transaction; True if this call marked it."""
    result = tx.connection.execute(
        update(CaptureRecord)
        .where(col(CaptureRecord.id) == capture_id)
        .where(col(CaptureRecord.spool_deleted_at).is_(None))
        .values(spool_deleted_at=utcnow())
    )
    return bool(result.rowcount == 1)


# --- verification by study ------------------------------------------------------------------------


def stored_in_study(db: Database, study_uid: str, limit: int = 200) -> list[CaptureRecord]:
    """The study's rows waiting for verification (``stored``, no live lease): the ones one
    QIDO-RS search of the study can verify together."""
    now = utcnow()
    free = or_(
        col(CaptureRecord.lease_expires_at).is_(None), col(CaptureRecord.lease_expires_at) < now
    )
    with session(db) as s:
        return list(
            s.exec(
                select(CaptureRecord)
                .where(col(CaptureRecord.study_uid) == study_uid)
                .where(col(CaptureRecord.status) == CaptureStatus.STORED.value)
                .where(free)
                .limit(limit)
            ).all()
        )


def verify_others_in(
    tx: Transaction, capture_ids: Sequence[str], values: dict[str, object]
) -> list[CaptureRecord]:
    """Mark these ``stored`` rows (no live lease, not locked by another writer) with
    ``values`` (``verified``) in the caller's transaction; returns the rows it moved.

    PostgreSQL skips rows another transaction holds (``SKIP LOCKED``), so two workers
    verifying the same study never wait on each other, nor deadlock.
    """
    if not capture_ids:
        return []
    now = utcnow()
    free = or_(
        col(CaptureRecord.lease_expires_at).is_(None), col(CaptureRecord.lease_expires_at) < now
    )
    pick = (
        select(CaptureRecord.id)
        .where(col(CaptureRecord.id).in_(list(capture_ids)))
        .where(col(CaptureRecord.status) == CaptureStatus.STORED.value)
        .where(free)
        .order_by(col(CaptureRecord.id))
    )
    if is_postgres(tx.engine):
        pick = pick.with_for_update(skip_locked=True)
    ids = [str(i) for i in tx.connection.execute(pick).scalars().all()]
    if not ids:
        return []
    values = values | {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
    tx.connection.execute(
        update(CaptureRecord).where(col(CaptureRecord.id).in_(ids)).values(**values)
    )
    columns = CaptureRecord.__table__.columns  # type: ignore[attr-defined]
    rows = tx.connection.execute(select(*columns).where(col(CaptureRecord.id).in_(ids)))
    return [CaptureRecord.model_validate(dict(row)) for row in rows.mappings()]


# --- the views ------------------------------------------------------------------------------------


def with_contexts_by_sop_uid(
    db: Database, sop_uids: Iterable[str]
) -> list[tuple[CaptureRecord, ContextRecord | None]]:
    """The captures with these SOP Instance UIDs, each with the context it was taken in.

    For the timeline and priors: what this service knows of a photo the archive listed (its
    sensitivity, its encounter). Two queries in one session, whatever the number of photos.
    """
    wanted = sorted(set(sop_uids))
    if not wanted:
        return []
    with session(db) as s:
        captures = s.exec(
            select(CaptureRecord).where(col(CaptureRecord.sop_instance_uid).in_(wanted))
        ).all()
        context_ids = sorted({c.context_id for c in captures})
        contexts = {
            c.id: c
            for c in s.exec(select(ContextRecord).where(col(ContextRecord.id).in_(context_ids)))
        }
    return [(c, contexts.get(c.context_id)) for c in captures]


def spooled_names(db: Database) -> set[str]:
    """The names of the spool files captures still need: their photo and DICOM file, until
    their spool is purged (``spool_deleted_at``). Reads only the rows not purged yet (the
    ``spool_deleted_at`` index): those in delivery, failed ones kept to re-send, those kept
    for ``CAPTURE_SPOOL_RETENTION_SECONDS``; never every photo ever taken."""
    with db.connect() as connection:
        rows = connection.execute(
            select(col(CaptureRecord.photo_path), col(CaptureRecord.dicom_path)).where(
                col(CaptureRecord.spool_deleted_at).is_(None)
            )
        ).all()
    return {PurePath(path).name for row in rows for path in row if path}
