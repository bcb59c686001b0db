"""Queries on captures: the ``capture`` rows, which are both the photos and the delivery outbox.

Claiming and saving an outbox row (a lease, a heartbeat, a result written only by the lease's
holder) is ``capture_api.store.leases``; this module holds what is particular to captures: the
upload's insert, its conditional ``received ->`` step, re-queueing, the spool's bookkeeping and
the look-ups of the views.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from capture_api.store.db import Database, session
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    ContextRecord,
    ObjectKind,
    utcnow,
)

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
            s.commit()
        except IntegrityError:
            s.rollback()
            return False
    return True


def insert_new(db: Database, record: CaptureRecord) -> bool:
    """Insert a new capture as the context's next instance; False if its id is already taken.

    The instance number is counted and the row inserted in one transaction (one commit: the
    upload's "on disk and committed" promise). False means a concurrent request committed the
    same capture id first (the unique primary key decided): the caller answers as for a
    re-sent upload.
    """
    with session(db) as s:
        count = s.exec(
            select(func.count())
            .select_from(CaptureRecord)
            .where(CaptureRecord.context_id == record.context_id, IS_PHOTO)
        ).one()
        record.instance_number = int(count) + 1
        s.add(record)
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            return False
    return True


def finish_received(db: Database, capture_id: str, **values: object) -> bool:
    """Move a row out of ``received`` (only if it is still there) and release its claim.

    Conditional, because an encode can finish late: the upload's own encode and a worker's (or
    a re-sent upload's) may both run, and only the first may land. Without the condition a
    late encode overwrote a capture that had already been stored (found by the delivery
    benchmark at concurrency 16). True when this call moved the row.
    """
    values |= {"lease_owner": None, "lease_expires_at": None, "updated_at": utcnow()}
    with session(db) as s:
        result = s.exec(
            update(CaptureRecord)
            .where(col(CaptureRecord.id) == capture_id)
            .where(col(CaptureRecord.status) == CaptureStatus.RECEIVED.value)
            .values(**values)
        )
        s.commit()
    return bool(result.rowcount == 1)


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
        s.commit()
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
