"""Queries of the phone queue's key custody: keys, the users of sessions, handed-off contexts.

``capture_api.encounters.queue_custody`` decides who gets a key and which earlier context a
session may send photos to; this module holds the rows (migration 0010): ``queue_key`` (one
wrapping key per user and phone), ``queue_session`` (which user a session was, kept after it
ended) and ``queue_handoff`` (an earlier context handed to a later session).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, exists
from sqlalchemy.engine import CursorResult
from sqlmodel import col, select

from capture_api.store.db import Database, session
from capture_api.store.records import (
    QueueHandoffRecord,
    QueueKeyRecord,
    QueueSessionRecord,
    UserSession,
)

# --- keys --------------------------------------------------------------------------------------


def add_key(database: Database, row: QueueKeyRecord) -> QueueKeyRecord:
    """Store a new key."""
    with session(database) as s:
        s.add(row)
        s.commit()
        s.refresh(row)
    return row


def use_key(database: Database, key_id: str, now: dt.datetime) -> QueueKeyRecord | None:
    """The key (None: unknown or destroyed), its ``used_at`` moved to ``now``."""
    if "\x00" in key_id:  # never stored, and PostgreSQL refuses to compare it
        return None
    with session(database) as s:
        row = s.get(QueueKeyRecord, key_id)
        if row is None:
            return None
        row.used_at = now
        s.add(row)
        s.commit()
        s.refresh(row)
        return row


def get_key(database: Database, key_id: str) -> QueueKeyRecord | None:
    """The key as it is (None: unknown or destroyed)."""
    if "\x00" in key_id:
        return None
    with session(database) as s:
        return s.get(QueueKeyRecord, key_id)


def delete_key(database: Database, key_id: str) -> bool:
    """Destroy a key; True when this call deleted it."""
    with session(database) as s:
        result = s.exec(delete(QueueKeyRecord).where(col(QueueKeyRecord.id) == key_id))
        s.commit()
        return isinstance(result, CursorResult) and result.rowcount == 1


def unused_keys(database: Database, before: dt.datetime) -> list[QueueKeyRecord]:
    """Keys last used before ``before`` (to be destroyed)."""
    with session(database) as s:
        query = select(QueueKeyRecord).where(col(QueueKeyRecord.used_at) < before)
        return list(s.exec(query.order_by(col(QueueKeyRecord.used_at))).all())


# --- the users of sessions ---------------------------------------------------------------------


def bind_session(database: Database, row: UserSession, now: dt.datetime) -> None:
    """Remember which user ``row`` is (its iss and fhirUser), or refresh when it was seen."""
    assert row.fhir_user is not None
    with session(database) as s:
        bound = s.get(QueueSessionRecord, row.id)
        if bound is None:
            bound = QueueSessionRecord(session_id=row.id, iss=row.iss, fhir_user=row.fhir_user)
        bound.seen_at = now
        s.add(bound)
        s.commit()


def session_user(database: Database, session_id: str | None) -> QueueSessionRecord | None:
    """Who a session (live or ended) was, if it ever asked for a queue key."""
    if not session_id:
        return None
    with session(database) as s:
        return s.get(QueueSessionRecord, session_id)


def forget_sessions(database: Database, before: dt.datetime) -> None:
    """Drop the users of sessions last seen before ``before``: no photo of theirs can still
    be waiting on a phone (the retention limit)."""
    with session(database) as s:
        s.exec(delete(QueueSessionRecord).where(col(QueueSessionRecord.seen_at) < before))
        s.commit()


# --- handoffs ----------------------------------------------------------------------------------


def grant_handoff(database: Database, context_id: str, session_id: str) -> None:
    """Hand ``context_id`` to ``session_id`` (nothing happens if it already is)."""
    with session(database) as s:
        if s.get(QueueHandoffRecord, (context_id, session_id)) is None:
            s.add(QueueHandoffRecord(context_id=context_id, session_id=session_id))
            s.commit()


def is_handed_off(database: Database, context_id: str, session_id: str) -> bool:
    """Whether the context was handed to this session."""
    with session(database) as s:
        query = select(
            exists().where(
                col(QueueHandoffRecord.context_id) == context_id,
                col(QueueHandoffRecord.session_id) == session_id,
            )
        )
        return bool(s.exec(query).one())


def forget_handoffs(database: Database, before: dt.datetime) -> None:
    """Drop handoffs granted before ``before`` (their sessions have ended by then)."""
    with session(database) as s:
        s.exec(delete(QueueHandoffRecord).where(col(QueueHandoffRecord.granted_at) < before))
        s.commit()
