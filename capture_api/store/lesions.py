"""Queries on lesions: a patient's tracked skin lesions (L1, L2, ...), scoped by patient id
and issuer, and the photos of one lesion.

A lesion's number is the next free one of its patient, taken in the insert's transaction; the
unique (patient, issuer, number) constraint decides a race between two phones, and the loser
takes the next number. Lesions found again in the archive (pinned by another capture install)
are adopted by their Tracking UID: an adoption never makes a second row for a lesion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select

from capture_api.store.db import Database, commit_new, session
from capture_api.store.records import CaptureRecord, LesionRecord

#: Tries to take a number when other phones pin lesions of the same patient at the same time.
_NUMBER_TRIES = 5


@dataclass(frozen=True)
class NewLesion:
    """A lesion to record: what the nurse pinned, or what the archive's photos say."""

    tracking_uid: str
    description: str | None = None
    view: str | None = None
    x: float | None = None
    y: float | None = None
    body_site_code: str | None = None
    laterality: str | None = None
    context_id: str | None = None
    number: int | None = None  # wanted (from an archived "L3"); the next free one otherwise
    label: str | None = None
    source: str = "capture"


def for_patient(db: Database, patient_id: str, issuer: str | None) -> list[LesionRecord]:
    """The patient's lesions, by number."""
    with session(db) as s:
        query = (
            select(LesionRecord)
            .where(LesionRecord.patient_id == patient_id)
            .where(LesionRecord.issuer == (issuer or ""))
            .order_by(col(LesionRecord.number))
        )
        return list(s.exec(query).all())


def get(db: Database, tracking_uid: str) -> LesionRecord | None:
    """One lesion by its Tracking UID, or None."""
    if "\x00" in tracking_uid:
        return None
    with session(db) as s:
        return s.get(LesionRecord, tracking_uid)


def add(db: Database, patient_id: str, issuer: str | None, new: NewLesion) -> LesionRecord:
    """Record a lesion with the next free number (or the one it asks for, when free).

    A lesion already known by its Tracking UID is returned as it is.
    """
    for _ in range(_NUMBER_TRIES):
        known = get(db, new.tracking_uid)
        if known is not None:
            return known
        with session(db) as s:
            taken = set(
                s.exec(
                    select(LesionRecord.number)
                    .where(LesionRecord.patient_id == patient_id)
                    .where(LesionRecord.issuer == (issuer or ""))
                ).all()
            )
            highest = s.exec(
                select(func.max(LesionRecord.number))
                .where(LesionRecord.patient_id == patient_id)
                .where(LesionRecord.issuer == (issuer or ""))
            ).one()
            number = new.number if new.number and new.number not in taken else (highest or 0) + 1
            record = LesionRecord(
                tracking_uid=new.tracking_uid,
                patient_id=patient_id,
                issuer=issuer or "",
                number=number,
                label=new.label or f"L{number}",
                description=new.description,
                view=new.view,
                x=new.x,
                y=new.y,
                body_site_code=new.body_site_code,
                laterality=new.laterality,
                context_id=new.context_id,
                source=new.source,
            )
            if not commit_new(s, record):
                continue  # another phone took the number (or the lesion) meanwhile
            s.refresh(record)
            return record
    raise RuntimeError("no free lesion number after several tries")


def adopt(db: Database, patient_id: str, issuer: str | None, found: Iterable[NewLesion]) -> int:
    """Record the archive's lesions this database does not know yet; how many were new."""
    added = 0
    for new in found:
        if get(db, new.tracking_uid) is None:
            add(db, patient_id, issuer, new)
            added += 1
    return added


def photos_of(db: Database, tracking_uid: str) -> list[CaptureRecord]:
    """This service's encoded photos of one lesion (with their SOP Instance UIDs), oldest first."""
    with session(db) as s:
        query = (
            select(CaptureRecord)
            .where(CaptureRecord.lesion_uid == tracking_uid)
            .where(col(CaptureRecord.sop_instance_uid).is_not(None))
            .order_by(col(CaptureRecord.created_at))
        )
        return list(s.exec(query).all())


def lesions_by_sop_uid(db: Database, sop_uids: Iterable[str]) -> dict[str, str]:
    """SOP Instance UID -> Tracking UID, for this service's photos of lesions among these."""
    wanted = sorted(set(sop_uids))
    if not wanted:
        return {}
    with session(db) as s:
        rows = s.exec(
            select(CaptureRecord.sop_instance_uid, CaptureRecord.lesion_uid)
            .where(col(CaptureRecord.sop_instance_uid).in_(wanted))
            .where(col(CaptureRecord.lesion_uid).is_not(None))
        ).all()
    return {sop: lesion for sop, lesion in rows if sop and lesion}
