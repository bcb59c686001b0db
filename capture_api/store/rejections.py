"""Queries on rejected photos (IHE IOCM) and on the chart retractions they cause.

A ``rejection`` row is inserted once per photo (its capture id is the key, its SOP Instance
UID unique): whoever inserts it first decides, and a second request reads the first's row.
The views ask which of the SOP Instance UIDs the archive listed are rejected
(``rejected_among``) and leave those out. The ``notification_retraction`` queue is filled by
a pull model like ``notifications``: one row per chart resource (``notification`` row) of a
rejected photo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import exists, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from capture_api.store.db import Database, insert_once, session
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    ContextRecord,
    NotificationRecord,
    RejectionRecord,
    RetractionRecord,
    utcnow,
)


def get(db: Database, capture_id: str) -> RejectionRecord | None:
    """The rejection of one photo (by its capture id), or None."""
    if "\x00" in capture_id:
        return None
    with session(db) as s:
        return s.get(RejectionRecord, capture_id)


def insert(db: Database, record: RejectionRecord) -> tuple[RejectionRecord, bool]:
    """Insert the rejection; when the photo is rejected already, that row and False."""
    with session(db) as s:
        s.add(record)
        try:
            s.commit()
            s.refresh(record)
            return record, True
        except IntegrityError:
            s.rollback()
    existing = get(db, record.capture_id)
    if existing is None:  # the SOP UID was taken under another capture id: a second row
        raise LookupError(f"instance {record.sop_instance_uid} is rejected under another id")
    return existing, False


def rejected_among(db: Database, sop_uids: Iterable[str]) -> set[str]:
    """Which of these SOP Instance UIDs are rejected (one query, whatever their number)."""
    wanted = sorted(set(sop_uids))
    if not wanted:
        return set()
    with session(db) as s:
        query = select(RejectionRecord.sop_instance_uid).where(
            col(RejectionRecord.sop_instance_uid).in_(wanted)
        )
        return set(s.exec(query).all())


def set_refiled(db: Database, capture_id: str, refiled_capture_id: str, context_id: str) -> bool:
    """Record the re-filed photo, once: True when this call recorded it."""
    with session(db) as s:
        result = s.exec(
            update(RejectionRecord)
            .where(col(RejectionRecord.capture_id) == capture_id)
            .where(col(RejectionRecord.refiled_capture_id).is_(None))
            .values(
                refiled_capture_id=refiled_capture_id,
                refiled_context_id=context_id,
                refiled_at=utcnow(),
            )
        )
        s.commit()
    return bool(result.rowcount == 1)


def refiling(db: Database, refiled_capture_id: str) -> RejectionRecord | None:
    """The rejection a re-filed photo replaced, or None."""
    with session(db) as s:
        query = select(RejectionRecord).where(
            col(RejectionRecord.refiled_capture_id) == refiled_capture_id
        )
        return s.exec(query).first()


def removal_due(db: Database, limit: int = 20) -> list[RejectionRecord]:
    """Rejections whose KOS the archive verified and whose instance is still there."""
    with session(db) as s:
        query = (
            select(RejectionRecord)
            .join(CaptureRecord, col(CaptureRecord.id) == col(RejectionRecord.kos_capture_id))
            .where(col(CaptureRecord.status) == CaptureStatus.VERIFIED.value)
            .where(col(RejectionRecord.archive_removed_at).is_(None))
            .limit(limit)
        )
        return list(s.exec(query).all())


def awaiting_refile(
    db: Database, actor: str | None, reasons: Iterable[str], since: dt.datetime
) -> list[tuple[RejectionRecord, CaptureRecord]]:
    """Photos ``actor`` rejected for one of ``reasons`` since ``since``, not re-filed yet,
    newest first, each with its capture row (``actor`` None: rejections made without one)."""
    who = (
        col(RejectionRecord.actor).is_(None)
        if actor is None
        else col(RejectionRecord.actor) == actor
    )
    query = (
        select(RejectionRecord, CaptureRecord)
        .join(CaptureRecord, col(CaptureRecord.id) == col(RejectionRecord.capture_id))
        .where(who)
        .where(col(RejectionRecord.reason).in_(list(reasons)))
        .where(col(RejectionRecord.refiled_capture_id).is_(None))
        .where(col(RejectionRecord.rejected_at) >= since)
        .order_by(col(RejectionRecord.rejected_at).desc())
    )
    with session(db) as s:
        return [(r, c) for r, c in s.exec(query).all()]


def mark_archive_removed(db: Database, capture_id: str) -> None:
    """Record that the rejected instance was deleted from the archive."""
    with session(db) as s:
        s.exec(
            update(RejectionRecord)
            .where(col(RejectionRecord.capture_id) == capture_id)
            .values(archive_removed_at=utcnow())
        )
        s.commit()


def rejected_between(
    db: Database, start: dt.datetime, end: dt.datetime
) -> list[tuple[str | None, str]]:
    """(encounter JSON of the photo's context, reason code) of each rejection in [start, end)."""
    with session(db) as s:
        query = (
            select(ContextRecord.encounter_json, RejectionRecord.reason)
            .join(ContextRecord, col(ContextRecord.id) == col(RejectionRecord.context_id))
            .where(col(RejectionRecord.rejected_at) >= start)
            .where(col(RejectionRecord.rejected_at) < end)
        )
        return [(encounter, reason) for encounter, reason in s.exec(query).all()]


# --- the chart: entered-in-error (notification_retraction) ----------------------------------


def missing_retractions(db: Database, limit: int) -> list[tuple[str, str, str]]:
    """(capture id, resource type, iss) of chart resources of rejected photos not yet queued."""
    already = exists().where(
        col(RetractionRecord.capture_id) == col(NotificationRecord.capture_id),
        col(RetractionRecord.resource_type) == col(NotificationRecord.resource_type),
    )
    # From the rejections (a few) to their photos' resources, by index: a join let SQLite
    # walk every notification row instead (2.6 million VM steps per look at 100,000 photos).
    rejected = select(RejectionRecord.capture_id)
    query = (
        select(
            NotificationRecord.capture_id, NotificationRecord.resource_type, NotificationRecord.iss
        )
        .where(col(NotificationRecord.capture_id).in_(rejected))
        .where(~already)
        .limit(limit)
    )
    with session(db) as s:
        return [(c, t, i) for c, t, i in s.exec(query).all()]


def insert_retraction(db: Database, capture_id: str, resource_type: str, iss: str) -> bool:
    """Queue one retraction; False when another replica queued it first."""
    return insert_once(
        db, RetractionRecord(capture_id=capture_id, resource_type=resource_type, iss=iss)
    )


def created_resource(
    db: Database, capture_id: str, resource_type: str
) -> NotificationRecord | None:
    """The chart notification a retraction takes back (its status and the EHR's id)."""
    with session(db) as s:
        query = select(NotificationRecord).where(
            col(NotificationRecord.capture_id) == capture_id,
            col(NotificationRecord.resource_type) == resource_type,
        )
        return s.exec(query).first()


def retractions_for(db: Database, capture_id: str) -> list[RetractionRecord]:
    """The retractions of one rejected photo (for its status and the tests)."""
    with session(db) as s:
        query = select(RetractionRecord).where(col(RetractionRecord.capture_id) == capture_id)
        return list(s.exec(query).all())
