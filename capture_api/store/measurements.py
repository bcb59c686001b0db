"""Queries on wound measurements (issue 16): recording one, a photo's and a site's, and what the
WoundSize Observation needs before it can be sent.

A photo has at most one current measurement: recording a new one marks the earlier ones of the
same photo ``superseded`` in the same transaction, so the healing trend counts each photo once.
The Observation waits for two facts, both checked here: the SR is verified in the archive (the
numbers the EHR gets are the archived ones) and the photo's Media (or DocumentReference) is in
the EHR (the Observation is ``derivedFrom`` it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import exists, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from capture_api.store.db import Database, commit_new, session
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    ContextRecord,
    MeasurementStatus,
    NotificationRecord,
    NotificationStatus,
    WoundMeasurementRecord,
)

#: The resource type of the wound size notification (one per measured SR).
OBSERVATION = "Observation"
#: What the Observation may be derived from, in order of preference.
PHOTO_RESOURCES = ("Media", "DocumentReference")


def record(db: Database, row: WoundMeasurementRecord) -> WoundMeasurementRecord:
    """Insert the measurement as the photo's current one (earlier ones become superseded).

    The same measurement recorded twice at once (a double tap: its id is derived from the
    request) is one row: the loser of the race gets the winner's.
    """
    with session(db) as s:
        s.exec(
            update(WoundMeasurementRecord)
            .where(col(WoundMeasurementRecord.capture_id) == row.capture_id)
            .where(col(WoundMeasurementRecord.status) == MeasurementStatus.RECORDED.value)
            .where(col(WoundMeasurementRecord.id) != row.id)
            .values(status=MeasurementStatus.SUPERSEDED.value)
        )
        if not commit_new(s, row):
            existing = s.get(WoundMeasurementRecord, row.id)
            if existing is None:
                raise
            return existing
        s.refresh(row)
        return row


def get(db: Database, measurement_id: str) -> WoundMeasurementRecord | None:
    """One measurement by id, or None."""
    if "\x00" in measurement_id:
        return None
    with session(db) as s:
        return s.get(WoundMeasurementRecord, measurement_id)


def for_capture(db: Database, capture_id: str) -> list[WoundMeasurementRecord]:
    """Every measurement of one photo, newest first (the current one, then superseded ones)."""
    with session(db) as s:
        query = (
            select(WoundMeasurementRecord)
            .where(WoundMeasurementRecord.capture_id == capture_id)
            .order_by(col(WoundMeasurementRecord.created_at).desc())
        )
        return list(s.exec(query).all())


def for_site(
    db: Database,
    patient_id: str,
    issuer: str | None,
    body_site_code: str | None,
    laterality: str | None,
) -> list[tuple[WoundMeasurementRecord, str]]:
    """The current measurements of one patient's site and side, oldest photo first, each with
    its photo's sensitivity level (the trend shows what the user may see of the photos)."""
    with session(db) as s:
        query = (
            select(WoundMeasurementRecord, CaptureRecord.sensitivity_level)
            .join(CaptureRecord, col(CaptureRecord.id) == col(WoundMeasurementRecord.capture_id))
            .where(WoundMeasurementRecord.patient_id == patient_id)
            .where(WoundMeasurementRecord.issuer == (issuer or ""))
            .where(WoundMeasurementRecord.body_site_code == body_site_code)
            .where(WoundMeasurementRecord.laterality == laterality)
            .where(WoundMeasurementRecord.status == MeasurementStatus.RECORDED.value)
            .order_by(col(WoundMeasurementRecord.measured_at))
        )
        return [(row, str(level)) for row, level in s.exec(query).all()]


# --- the WoundSize Observation (notification outbox) ---------------------------------------------


def observations_missing(
    db: Database, iss: Sequence[str], limit: int, ready_since: dt.datetime | None = None
) -> list[str]:
    """SR outbox rows ready for their Observation and without a notification row yet.

    Ready: the SR is verified, its measurement is the photo's current one, the context was
    opened from ``iss`` (its spellings), and the photo's Media or DocumentReference was sent.
    ``ready_since``: only rows that became ready since then, from two indexes instead of
    every measurement (issue 13, volume): the SR verified since (``capture (status,
    verified_at)``), or the photo's resource sent since (``notification (status,
    updated_at)``), whichever came last.
    """
    sr = aliased(CaptureRecord)
    already = exists().where(
        col(NotificationRecord.capture_id) == col(WoundMeasurementRecord.sr_capture_id),
        col(NotificationRecord.resource_type) == OBSERVATION,
    )
    photo_sent = exists().where(
        col(NotificationRecord.capture_id) == col(WoundMeasurementRecord.capture_id),
        col(NotificationRecord.resource_type).in_(PHOTO_RESOURCES),
        col(NotificationRecord.status) == NotificationStatus.SENT.value,
    )
    ready = (
        select(WoundMeasurementRecord.sr_capture_id)
        .join(ContextRecord, col(ContextRecord.id) == col(WoundMeasurementRecord.context_id))
        .where(col(WoundMeasurementRecord.status) == MeasurementStatus.RECORDED.value)
        .where(col(ContextRecord.iss).in_(list(iss)))
        .where(photo_sent)
        .where(~already)
    )
    # The SR verified, as a condition (not a join): a join's equality on capture.status is
    # what SQLite, which keeps no statistics, drives from (every verified capture).
    sr_verified = exists().where(
        col(sr.id) == col(WoundMeasurementRecord.sr_capture_id),
        col(sr.status) == CaptureStatus.VERIFIED.value,
    )
    with session(db) as s:
        if ready_since is None:
            return list(s.exec(ready.where(sr_verified).limit(limit)).all())
        by_sr = (
            ready.join(sr, col(sr.id) == col(WoundMeasurementRecord.sr_capture_id))
            .where(col(sr.status) == CaptureStatus.VERIFIED.value)
            .where(col(sr.verified_at) >= ready_since)
        )
        found = dict.fromkeys(s.exec(by_sr.limit(limit)).all())
        # The photos whose resource was sent since, by their own index, then their
        # measurements by theirs.
        sent = s.exec(
            select(NotificationRecord.capture_id).where(
                col(NotificationRecord.status) == NotificationStatus.SENT.value,
                col(NotificationRecord.updated_at) >= ready_since,
                col(NotificationRecord.resource_type).in_(PHOTO_RESOURCES),
            )
        ).all()
        photos = sorted(set(sent))
        for start in range(0, len(photos), _IN_LIST):
            if len(found) >= limit:
                break
            chunk = photos[start : start + _IN_LIST]
            by_photo = ready.where(sr_verified).where(
                col(WoundMeasurementRecord.capture_id).in_(chunk)
            )
            found |= dict.fromkeys(s.exec(by_photo.limit(limit)).all())
    return list(found)[:limit]


#: Ids per ``IN (...)`` list: well under SQLite's 32,766 bound parameters.
_IN_LIST = 500


def observation_inputs(
    db: Database, sr_capture_id: str
) -> tuple[WoundMeasurementRecord, str] | None:
    """The measurement an SR row carries and the photo's resource in the EHR ("Media/abc").

    None when the measurement is gone or superseded, or the photo's resource was not sent.
    """
    with session(db) as s:
        row = s.exec(
            select(WoundMeasurementRecord)
            .where(WoundMeasurementRecord.sr_capture_id == sr_capture_id)
            .where(WoundMeasurementRecord.status == MeasurementStatus.RECORDED.value)
        ).first()
        if row is None:
            return None
        sent = s.exec(
            select(NotificationRecord)
            .where(NotificationRecord.capture_id == row.capture_id)
            .where(col(NotificationRecord.resource_type).in_(PHOTO_RESOURCES))
            .where(NotificationRecord.status == NotificationStatus.SENT.value)
        ).all()
        for resource_type in PHOTO_RESOURCES:
            for note in sent:
                if note.resource_type == resource_type and note.resource_id:
                    return row, f"{resource_type}/{note.resource_id}"
        return None
