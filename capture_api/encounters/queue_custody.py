"""The phone's offline queue outlives the page: who may open it, and where its photos may go.

Why (issue 20): a reload, a discarded tab or a dead battery must not lose a wound photo that
could not be sent yet, and a stolen phone's storage must still open nothing. The phone keeps
each photo encrypted (AES-GCM) under a *device key* that it stores only wrapped (AES-KW) by a
*queue key* held here, one per user and phone (``queue_key``). This module hands that key
only to a signed-in session of the same user: the same EHR ``iss`` and the same fhirUser. The
key lives in the database, so a restart of capture loses nothing; it is destroyed when the
phone releases it (its queue is empty at sign-out) or when it went unused for longer than the
retention limit plus a session's lifetime (crypto-shredding whatever a lost phone still holds).

Photos queued in a session that has ended (signed out, expired, battery dead) belong to that
session's contexts, which a new session may not use. The same user may send them there
anyway, after saying so (``hand_over``): capture checks, from its own records, that the
earlier context was opened by a session of this very user (``queue_session`` remembers the
user of every session that asked for a queue key, after the session itself is gone), and
grants the new session upload and status for that one context (``queue_handoff``). A context
of another user, or of a session capture cannot vouch for, is refused (403): a photo is never
uploaded into a context it was not taken for, and never by another user.

Integration mode (no EHR registered) has no user to bind a key to: the phone keeps its queue
key in the page's memory only (``NoQueueUser``, 409), so a reload loses the queue, as before.
Every decision is audited: ``queue-key``, ``queue-handoff``, ``queue-purge`` (docs/audit.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from capture_api.audit.trail import Outcome, record
from capture_api.config import Settings
from capture_api.context import NOT_SIGNED_IN
from capture_api.exceptions import CaptureError, Conflict, NotFound, NotSignedIn, UnknownContext
from capture_api.store import contexts
from capture_api.store import queue_custody as rows
from capture_api.store.db import Database
from capture_api.store.records import ContextRecord, QueueKeyRecord, UserSession, utcnow

INTEGRATION_MODE = (
    "capture runs without an EHR (integration mode): there is no signed-in user to keep a "
    "queue key for, so photos wait only in the page's memory until they are sent"
)
NO_FHIR_USER = (
    "the EHR did not say who you are (no fhirUser): photos wait only in the page's memory "
    "until they are sent; ask the EHR team to grant capture the openid and fhirUser scopes"
)
NOT_YOURS_KEY = (
    "this phone's queued photos belong to another user: they stay encrypted, and are sent "
    "when that user opens capture on this phone again"
)
NOT_YOURS_CONTEXT = (
    "these photos were not taken in a session of yours: capture cannot send them from this "
    "sign-in (they stay encrypted on the phone until their user sends them or they expire)"
)
KEY_GONE = (
    "this phone's queue key is unknown or was destroyed (unused for too long, or released): "
    "the photos it protected cannot be opened any more"
)


class QueueNotYours(CaptureError):
    """The queue key or the earlier context belongs to another user (or to no user we know)."""


class QueueKeyGone(NotFound):
    """The queue key is unknown or was destroyed: what it protected cannot be opened."""


class NoQueueUser(Conflict):
    """No user to keep a queue key for (integration mode, or an EHR that gives no fhirUser)."""


class QueueTooOld(Conflict):
    """The earlier context is older than the queue's retention limit: nothing of it can wait."""


class PurgeReason(StrEnum):
    """Why the phone deleted queued photos without sending them (``report``)."""

    RETENTION = "retention"  # older than CAPTURE_QUEUE_RETENTION_HOURS
    DISCARDED = "discarded"  # the user chose to delete them
    DAMAGED = "damaged"  # the record failed its authentication tag (tampered or truncated)
    UNREADABLE = "unreadable"  # its key is gone: the server destroyed or does not know it


#: Outcome of a purge in the audit trail: a photo lost is a serious failure, unless the user
#: chose to delete it.
_PURGE_OUTCOME = {
    PurgeReason.RETENTION: Outcome.FAILED,
    PurgeReason.DISCARDED: Outcome.SUCCESS,
    PurgeReason.DAMAGED: Outcome.FAILED,
    PurgeReason.UNREADABLE: Outcome.FAILED,
}


@dataclass(frozen=True)
class QueueKey:
    """A queue key as handed to its user's session."""

    key_id: str
    key: bytes
    retention: dt.timedelta  # how long a photo may wait on the phone
    expires_at: dt.datetime  # when capture destroys the key if the phone does not use it again

    @property
    def key_b64(self) -> str:
        return base64.urlsafe_b64encode(self.key).rstrip(b"=").decode()


class QueueCustody:
    """Queue keys for signed-in users, handoffs of their earlier contexts, purge reports."""

    def __init__(
        self, engine: Database, settings: Settings, *, now: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.ehr_mode = bool(settings.ehrs)
        self.retention = dt.timedelta(hours=settings.queue_retention_hours)
        # A photo can be taken up to a session's lifetime after its key was last handed out
        # (the page keeps the key in memory), then wait ``retention``: nothing of a key, a
        # session's user or a handoff is needed longer than this after it was last used.
        self.keep = self.retention + dt.timedelta(seconds=settings.session_ttl_seconds)
        self._now = now

    # --- keys ----------------------------------------------------------------------------------

    def create_key(self, row: UserSession | None) -> QueueKey:
        """A new queue key for this user on a phone that has none of theirs."""
        user = self._user(row)
        self.sweep()
        now = self._now()
        rows.bind_session(self.engine, user, now)
        secret = secrets.token_bytes(32)
        stored = rows.add_key(
            self.engine,
            QueueKeyRecord(
                id=secrets.token_urlsafe(16),
                iss=user.iss,
                fhir_user=str(user.fhir_user),
                secret=base64.urlsafe_b64encode(secret).decode(),
                created_at=now,
                used_at=now,
            ),
        )
        self._audit(user, "queue-key", Outcome.SUCCESS, f"created {stored.id}")
        return self._key(stored)

    def read_key(self, row: UserSession | None, key_id: str) -> QueueKey:
        """The key, for a session of the user it belongs to; 403 for anyone else."""
        user = self._user(row)
        self.sweep()
        stored = rows.get_key(self.engine, key_id)
        if stored is None:
            raise QueueKeyGone(KEY_GONE)
        if (stored.iss, stored.fhir_user) != (user.iss, user.fhir_user):
            self._audit(user, "queue-key", Outcome.REFUSED, f"another user's key {key_id}")
            raise QueueNotYours(NOT_YOURS_KEY)
        now = self._now()
        rows.bind_session(self.engine, user, now)
        used = rows.use_key(self.engine, key_id, now)
        if used is None:  # destroyed meanwhile
            raise QueueKeyGone(KEY_GONE)
        self._audit(user, "queue-key", Outcome.SUCCESS, f"handed out {key_id}")
        return self._key(used)

    def destroy_key(self, row: UserSession | None, key_id: str) -> None:
        """The phone's queue is empty: its key goes (a key already gone is fine)."""
        user = self._user(row)
        stored = rows.get_key(self.engine, key_id)
        if stored is None:
            return
        if (stored.iss, stored.fhir_user) != (user.iss, user.fhir_user):
            self._audit(user, "queue-key", Outcome.REFUSED, f"another user's key {key_id}")
            raise QueueNotYours(NOT_YOURS_KEY)
        if rows.delete_key(self.engine, key_id):
            self._audit(user, "queue-key", Outcome.SUCCESS, f"released {key_id}")

    def sweep(self) -> int:
        """Destroy keys unused for longer than the retention limit plus a session's lifetime
        (each audited), and forget the users and handoffs nothing can need any more."""
        cutoff = self._now() - self.keep
        destroyed = 0
        for stale in rows.unused_keys(self.engine, cutoff):
            if rows.delete_key(self.engine, stale.id):
                destroyed += 1
                record(
                    self.engine,
                    "queue-key",
                    Outcome.SUCCESS,
                    detail=f"destroyed {stale.id} of {stale.fhir_user}: unused since "
                    f"{stale.used_at.isoformat()}, longer than the queue's retention limit",
                )
        rows.forget_sessions(self.engine, cutoff)
        rows.forget_handoffs(self.engine, cutoff)
        return destroyed

    # --- earlier contexts ------------------------------------------------------------------------

    def hand_over(self, row: UserSession | None, context_id: str) -> ContextRecord:
        """Let this session send photos queued for an earlier context of the same user.

        Refused (403, audited) unless capture itself recorded that the context was opened by
        a session of this user; a context older than the retention limit allows is refused
        too (409): no photo of it can still be waiting.
        """
        user = self._user(row)
        self.sweep()
        context = contexts.get(self.engine, context_id)
        if context is None:
            raise UnknownContext(f"no patient context {context_id!r}")
        if context.session_id == user.id:
            return context  # this session's own: nothing to hand over
        opener = rows.session_user(self.engine, context.session_id)
        if opener is None or (opener.iss, opener.fhir_user) != (user.iss, user.fhir_user):
            self._audit(
                user, "queue-handoff", Outcome.REFUSED, "not a context of this user", context.id
            )
            raise QueueNotYours(NOT_YOURS_CONTEXT)
        if _aware(context.created_at) + self.keep < self._now():
            self._audit(user, "queue-handoff", Outcome.REFUSED, "past retention", context.id)
            raise QueueTooOld(
                "this patient context is older than the retention limit of the phone's queue: "
                "its photos were deleted from the phone; take them again"
            )
        rows.grant_handoff(self.engine, context.id, user.id)
        detail = "queued photos of an earlier session"
        self._audit(user, "queue-handoff", Outcome.SUCCESS, detail, context.id)
        return context

    def handed_over(self, row: UserSession, context: ContextRecord) -> bool:
        """Whether ``context`` was handed to this session (``hand_over``)."""
        return rows.is_handed_off(self.engine, context.id, row.id)

    # --- what the phone deleted ------------------------------------------------------------------

    def report(
        self,
        row: UserSession | None,
        key_id: str,
        reason: PurgeReason,
        count: int,
        context_ids: Sequence[str],
    ) -> int:
        """Audit photos the phone deleted unsent; returns how many events were recorded.

        One ``queue-purge`` event per context the phone names, with its patient, when the
        context is one of the key's user (or, for a key already gone, of the reporting user);
        the rest (or all, when none is named) in one event without a patient: a phone cannot
        write another user's patient into the trail.
        """
        user = self._user(row)
        key = rows.get_key(self.engine, key_id)
        owner = (key.iss, key.fhir_user) if key else (user.iss, user.fhir_user)
        detail = f"{count} photo(s) deleted unsent from a phone: {reason.value} (key {key_id})"
        outcome = _PURGE_OUTCOME[reason]
        recorded = 0
        unattributed = False
        for context_id in dict.fromkeys(context_ids):
            context = contexts.get(self.engine, context_id)
            opener = rows.session_user(self.engine, context.session_id) if context else None
            if context and opener and (opener.iss, opener.fhir_user) == owner:
                self._audit(user, "queue-purge", outcome, detail, context.id)
                recorded += 1
            else:
                unattributed = True
        if unattributed or not recorded:
            self._audit(user, "queue-purge", outcome, detail)
            recorded += 1
        return recorded

    # --- helpers ---------------------------------------------------------------------------------

    def _user(self, row: UserSession | None) -> UserSession:
        if not self.ehr_mode:
            raise NoQueueUser(INTEGRATION_MODE)
        if row is None:
            raise NotSignedIn(NOT_SIGNED_IN)
        if not row.fhir_user:
            raise NoQueueUser(NO_FHIR_USER)
        return row

    def _key(self, stored: QueueKeyRecord) -> QueueKey:
        return QueueKey(
            key_id=stored.id,
            key=base64.urlsafe_b64decode(stored.secret),
            retention=self.retention,
            expires_at=_aware(stored.used_at) + self.keep,
        )

    def _audit(
        self,
        user: UserSession,
        action: str,
        outcome: Outcome,
        detail: str,
        context_id: str | None = None,
    ) -> None:
        record(
            self.engine,
            action,
            outcome,
            actor=user.fhir_user,
            session_id=user.id,
            detail=detail,
            context_id=context_id,
        )


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives naive datetimes back; they were written as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
