"""Recorded consents to photography: the rows of ``consent`` and the captures that cite them.

``capture_api.privacy.consents`` decides what a consent says and what it gates; this module
holds its queries. Consents are append-only by use: a correction is a newer row, the latest
is the one in force, and nothing here updates or deletes a consent.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from capture_api.store.db import Database, session
from capture_api.store.records import CaptureRecord, ConsentRecord


def add(database: Database, consent: ConsentRecord) -> None:
    """Store a new consent; when it cites a scanned form, put the form's capture under it.

    One commit for both. The form was photographed before any consent existed, so its
    ``consent_id`` is normally empty; the update is conditional on that, so a photo already
    taken under an earlier consent keeps the consent it was taken under.
    """
    with session(database) as s:
        s.add(consent)
        if consent.form_capture_id is not None:
            s.exec(
                update(CaptureRecord)
                .where(col(CaptureRecord.id) == consent.form_capture_id)
                .where(col(CaptureRecord.consent_id).is_(None))
                .values(consent_id=consent.id)
            )
        s.commit()


def latest(database: Database, context_id: str) -> ConsentRecord | None:
    """The consent in force for a context: the latest recorded (ties: the smaller id), or None."""
    with session(database) as s:
        query = (
            select(ConsentRecord)
            .where(ConsentRecord.context_id == context_id)
            .order_by(col(ConsentRecord.recorded_at).desc(), col(ConsentRecord.id))
        )
        return s.exec(query).first()


def capture_ids_under(database: Database, consent_id: str) -> list[str]:
    """The ids of the captures that reference this consent, oldest first."""
    with session(database) as s:
        query = (
            select(CaptureRecord.id)
            .where(CaptureRecord.consent_id == consent_id)
            .order_by(col(CaptureRecord.created_at))
        )
        return list(s.exec(query).all())


def capture(database: Database, capture_id: str) -> CaptureRecord | None:
    """One capture by id: the photo of the signed form a new consent cites."""
    with session(database) as s:
        return s.get(CaptureRecord, capture_id)
