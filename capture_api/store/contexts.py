"""Queries on capture contexts (a patient + encounter photos are taken in) and their completion.

A context is opened by an EHR launch, a wristband scan, a worklist claim or an integration;
it is linked to the session that opened it and, for a worklist claim, to its UPS workitem.
Completing that workitem is a leased queue (``worklist_completion``, migration 0008) worked
like the outboxes (``capture_api.store.leases``): one worker of one replica at a time.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, exists, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from capture_api.store import leases
from capture_api.store.db import Database, is_postgres, session
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    CompletionStatus,
    ContextRecord,
    WorklistCompletionRecord,
    utcnow,
)


def add(db: Database, record: ContextRecord) -> ContextRecord:
    """Store a new context."""
    with session(db) as s:
        s.add(record)
        s.commit()
    return record


def get(db: Database, context_id: str) -> ContextRecord | None:
    """One context by id, or None."""
    if "\x00" in context_id:  # never stored, and PostgreSQL refuses to compare it
        return None
    with session(db) as s:
        return s.get(ContextRecord, context_id)


def link_session(
    db: Database,
    context_id: str,
    *,
    session_id: str,
    iss: str,
    fhir_patient: str | None = None,
    fhir_encounter: str | None = None,
) -> ContextRecord:
    """Make the context a session's own (and remember its FHIR patient and encounter ids).

    FHIR ids already known are kept when none is given (a worklist context adopted later).
    """
    with session(db) as s:
        stored = s.get(ContextRecord, context_id)
        if stored is None:  # contexts are never deleted
            raise LookupError(f"context {context_id} vanished")
        stored.session_id, stored.iss = session_id, iss
        stored.fhir_patient_id = fhir_patient or stored.fhir_patient_id
        stored.fhir_encounter_id = fhir_encounter or stored.fhir_encounter_id
        s.add(stored)
        s.commit()
    return stored


def link_workitem(db: Database, context_id: str, uid: str, transaction_uid: str) -> None:
    """Remember which workitem (and our Transaction UID for it) a context came from."""
    with session(db) as s:
        record = s.get(ContextRecord, context_id)
        if record is None:
            raise LookupError(f"context {context_id} vanished")
        record.workitem_uid = uid
        record.workitem_transaction_uid = transaction_uid
        s.add(record)
        s.commit()


# --- worklist completion ----------------------------------------------------------------------


def request_completion(db: Database, context_id: str) -> None:
    """Record that the context's workitem is to be completed, and queue it (one transaction).

    The context keeps the time of the first request; the queue row is inserted only if missing
    (``ON CONFLICT DO NOTHING``), so requests repeated or racing on several replicas queue the
    completion once.
    """
    now = utcnow()
    dialect = postgresql if is_postgres(db) else sqlite
    queue = (
        dialect.insert(WorklistCompletionRecord)
        .values(
            id=context_id,
            status=CompletionStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    with session(db) as s:
        s.exec(
            update(ContextRecord)
            .where(col(ContextRecord.id) == context_id)
            .where(col(ContextRecord.complete_requested_at).is_(None))
            .values(complete_requested_at=now)
        )
        s.exec(queue)
        s.commit()


def completion(db: Database, context_id: str) -> WorklistCompletionRecord | None:
    """The queued completion of a context, or None when none was requested."""
    with session(db) as s:
        return s.get(WorklistCompletionRecord, context_id)


def _photos_all_verified() -> list[ColumnElement[bool]]:
    """A queued context is ready when it has photos and every one is verified."""
    of_context = col(CaptureRecord.context_id) == col(WorklistCompletionRecord.id)
    return [
        exists().where(of_context),
        ~exists().where(of_context, col(CaptureRecord.status) != CaptureStatus.VERIFIED.value),
    ]


def claim_due_completion(
    db: Database, owner: str, lease: dt.timedelta
) -> WorklistCompletionRecord | None:
    """Take one due completion whose photos are all verified, for ``owner``; else None.

    Requests still waiting for photos are not candidates, so a worker never claims and
    releases them over and over; a photo that failed after the request keeps its context
    waiting (the clinician retakes or deletes it, and asks again).
    """
    return leases.claim(
        db,
        WorklistCompletionRecord,
        [CompletionStatus.PENDING.value],
        owner,
        lease,
        ready=_photos_all_verified(),
    )


def claim_completion(
    db: Database, context_id: str, owner: str, lease: dt.timedelta
) -> WorklistCompletionRecord | None:
    """Take one context's pending completion now (the clinician's request), else None."""
    pending = [CompletionStatus.PENDING.value]
    return leases.claim_row(db, WorklistCompletionRecord, context_id, pending, owner, lease)


def end_completion(
    db: Database, context_id: str, owner: str, status: CompletionStatus, reason: object
) -> None:
    """Close a completion that can never succeed (e.g. CANCELED at the worklist), if ``owner``
    still holds its lease; ``reason`` (an error written for people) is kept."""
    with session(db) as s:
        s.exec(
            update(WorklistCompletionRecord)
            .where(col(WorklistCompletionRecord.id) == context_id)
            .where(col(WorklistCompletionRecord.lease_owner) == owner)
            .values(
                status=status.value,
                lease_owner=None,
                lease_expires_at=None,
                last_error=str(reason),
                updated_at=utcnow(),
            )
        )
        s.commit()


def release_workitem(db: Database, context_id: str) -> None:
    """We gave the context's workitem back: forget our Transaction UID (it proves nothing any
    more) and close a queued completion as ``released``, in one commit."""
    with session(db) as s:
        s.exec(
            update(ContextRecord)
            .where(col(ContextRecord.id) == context_id)
            .values(workitem_transaction_uid=None)
        )
        s.exec(
            update(WorklistCompletionRecord)
            .where(col(WorklistCompletionRecord.id) == context_id)
            .where(col(WorklistCompletionRecord.status) == CompletionStatus.PENDING.value)
            .values(
                status=CompletionStatus.RELEASED.value,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=utcnow(),
            )
        )
        s.commit()


def abandoned_claims(db: Database, before: dt.datetime, limit: int = 20) -> list[ContextRecord]:
    """Worklist contexts still holding their workitem (our Transaction UID) that were opened
    before ``before`` and never asked to complete: claims a phone left behind."""
    with session(db) as s:
        rows = s.exec(
            select(ContextRecord)
            .where(col(ContextRecord.workitem_transaction_uid).is_not(None))
            .where(col(ContextRecord.complete_requested_at).is_(None))
            .where(col(ContextRecord.created_at) < before)
            .order_by(col(ContextRecord.created_at))
            .limit(limit)
        )
        return list(rows.all())


def finish_completion(db: Database, context_id: str, owner: str) -> bool:
    """The workitem is COMPLETED: close the queue row and date the context, in one commit.

    Only while ``owner`` still holds the lease; False when it no longer did (nothing written).
    """
    now = utcnow()
    with session(db) as s:
        closed = s.exec(
            update(WorklistCompletionRecord)
            .where(col(WorklistCompletionRecord.id) == context_id)
            .where(col(WorklistCompletionRecord.lease_owner) == owner)
            .values(
                status=CompletionStatus.COMPLETED.value,
                lease_owner=None,
                lease_expires_at=None,
                last_error=None,
                updated_at=now,
            )
        )
        if closed.rowcount != 1:
            s.rollback()
            return False
        s.exec(
            update(ContextRecord)
            .where(col(ContextRecord.id) == context_id)
            .values(completed_at=now)
        )
        s.commit()
    return True
