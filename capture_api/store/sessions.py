"""Clinician sessions and SMART launch states: the rows of ``user_session`` and ``launch_state``.

``capture_api.context.sessions`` decides when a session is created, refreshed and ended, and
``capture_api.api.routes.launch`` when an authorization request starts and finishes; this
module holds their queries. A session row is keyed by the SHA-256 of the browser's cookie, a
launch state by the ``state`` value sent to the EHR.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.engine import CursorResult
from sqlmodel import col

from capture_api.store.db import Database, session
from capture_api.store.records import LaunchState, UserSession

# --- user sessions -------------------------------------------------------------------------------


def add(database: Database, row: UserSession) -> None:
    """Store a new session."""
    with session(database) as s:
        s.add(row)
        s.commit()


def get(database: Database, session_id: str) -> UserSession | None:
    """The session row, whatever its age (None: unknown or ended)."""
    with session(database) as s:
        return s.get(UserSession, session_id)


def get_live(
    database: Database,
    session_id: str,
    *,
    now: dt.datetime,
    idle: dt.timedelta,
    touch_every: dt.timedelta,
) -> UserSession | None:
    """The session if it is live at ``now``, in one transaction.

    A session past its ``expires_at``, or unused for ``idle``, is deleted and None returned.
    A live one has ``last_seen_at`` moved to ``now`` (so the idle timeout counts from the last
    request), but only once it is ``touch_every`` old: not a durable write per request.
    """
    with session(database) as s:
        row = s.get(UserSession, session_id)
        if row is None:
            return None
        if _aware(row.expires_at) <= now or _aware(row.last_seen_at) + idle <= now:
            s.delete(row)
            s.commit()
            return None
        if now - _aware(row.last_seen_at) >= touch_every:
            row.last_seen_at = now
            s.add(row)
            s.commit()
        return row


def set_context(database: Database, session_id: str, context_id: str | None) -> UserSession | None:
    """Link the session to a capture context; the updated row, or None if the session is gone."""
    with session(database) as s:
        stored = s.get(UserSession, session_id)
        if stored is None:
            return None
        stored.context_id = context_id
        s.add(stored)
        s.commit()
        return stored


def save_tokens(
    database: Database,
    session_id: str,
    *,
    access_token: str,
    refresh_token: str | None,
    token_expires_at: dt.datetime | None,
    scope: str,
) -> UserSession | None:
    """Keep a refresh's new tokens; the updated row, or None if the session ended meanwhile."""
    with session(database) as s:
        stored = s.get(UserSession, session_id)
        if stored is None:
            return None
        stored.access_token = access_token
        stored.refresh_token = refresh_token
        stored.token_expires_at = token_expires_at
        stored.scope = scope
        s.add(stored)
        s.commit()
        return stored


def end(database: Database, session_id: str) -> None:
    """Delete a session (sign-out, a refused refresh); nothing happens if it is already gone."""
    with session(database) as s:
        s.exec(delete(UserSession).where(col(UserSession.id) == session_id))
        s.commit()


# --- SMART launch states -------------------------------------------------------------------------


def add_launch_state(database: Database, row: LaunchState, *, purge_before: dt.datetime) -> None:
    """Store an authorization request in flight, and drop those created before
    ``purge_before`` (abandoned sign-ins) in the same commit: the table stays small with no
    sweeper of its own."""
    with session(database) as s:
        s.exec(delete(LaunchState).where(col(LaunchState.created_at) < purge_before))
        s.add(row)
        s.commit()


def take_launch_state(database: Database, state: str) -> LaunchState | None:
    """Look up and delete in one go: a state value works once, even under a race.

    The row is read, then deleted by a DELETE whose row count says whether this request was
    the one that removed it; a concurrent callback that deleted it first gets None.
    """
    with session(database) as s:
        row = s.get(LaunchState, state)
        if row is None:
            return None
        result = s.exec(delete(LaunchState).where(col(LaunchState.state) == state))
        s.commit()
        if isinstance(result, CursorResult) and result.rowcount != 1:
            return None  # another request consumed it first
        return row


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives naive datetimes back; they were written as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
