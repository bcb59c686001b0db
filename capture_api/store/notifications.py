"""Queries on EHR notifications: the second outbox, one row per (verified capture, resource type).

Rows are claimed, renewed and saved like the delivery outbox's (``capture_api.store.leases``).
What is particular to them: the pull model that inserts the missing rows, safe across replicas
because of the unique (capture_id, resource_type) constraint, and what delivering one needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import exists
from sqlmodel import col, select

from capture_api.store.db import Database, insert_once, session
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    ContextRecord,
    NotificationRecord,
    ObjectKind,
    RejectionRecord,
    UserSession,
)


def missing(
    db: Database,
    resource_type: str,
    iss: Sequence[str],
    limit: int,
    verified_since: dt.datetime | None = None,
) -> list[str]:
    """Verified captures of contexts opened from ``iss`` without a ``resource_type`` row yet
    (and not rejected: ``rejections``).

    ``iss`` lists the spellings of the EHR's FHIR base the contexts may carry (with and without
    the trailing slash). At most ``limit`` capture ids, so one pass stays bounded.
    """
    already = exists().where(
        col(NotificationRecord.capture_id) == col(CaptureRecord.id),
        col(NotificationRecord.resource_type) == resource_type,
    )
    rejected = exists().where(col(RejectionRecord.capture_id) == col(CaptureRecord.id))
    query = (
        select(CaptureRecord.id)
        .join(ContextRecord, col(ContextRecord.id) == col(CaptureRecord.context_id))
        .where(col(CaptureRecord.status) == CaptureStatus.VERIFIED.value)
        .where(col(CaptureRecord.object_kind) == ObjectKind.PHOTO.value)
        .where(col(ContextRecord.iss).in_(list(iss)))
        .where(~already)
        .where(~rejected)  # a rejected photo never reaches the chart (issue 18)
        .limit(limit)
    )
    if verified_since is not None:  # from the index (status, verified_at), not every photo
        query = query.where(col(CaptureRecord.verified_at) >= verified_since)
    with session(db) as s:
        return list(s.exec(query).all())


def insert(db: Database, capture_id: str, resource_type: str, iss: str) -> bool:
    """Insert one pending row; False when another replica won the race (unique violation)."""
    return insert_once(
        db, NotificationRecord(capture_id=capture_id, resource_type=resource_type, iss=iss)
    )


def delivery_inputs(
    db: Database, capture_id: str
) -> tuple[CaptureRecord, ContextRecord, str | None] | None:
    """The capture, its context and the fhirUser of the session that opened the context.

    None when the capture or its context no longer exists. The fhirUser (the resource's
    author) is read from the ``user_session`` row, when the session is still there.
    """
    with session(db) as s:
        capture = s.get(CaptureRecord, capture_id)
        context = s.get(ContextRecord, capture.context_id) if capture else None
        if capture is None or context is None:
            return None
        user = s.get(UserSession, context.session_id) if context.session_id else None
        return capture, context, user.fhir_user if user else None
