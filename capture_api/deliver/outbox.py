"""The outbox worker: every encoded capture reaches the archive exactly once, and is verified.

Claims are portable and safe across threads, processes and replicas: candidates are picked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas do not queue on each other's rows) and
each is taken by a conditional UPDATE that only succeeds while no live lease holds the row.
A worker that dies leaves a lease that expires within one short lease (it is renewed by a
heartbeat only while the work runs); the next worker re-sends, and the archive sees the same SOP
Instance UID, which it stores once (a duplicate counts as success).

Transient failures (archive down, timeouts) retry with exponential backoff and full jitter;
permanent ones (4xx, refused instance, wrong credentials) fail with the archive's reason.
After STOW, QIDO-RS must show the instance before the capture is "verified" and its spooled
bytes may go.

An unexpected error on a row (a bug, a disk that went away) is never silent: the capture keeps
its status and says why in ``last_error`` (the API's ``retrying``) with its next attempt, the
loop's health (``capture_api.observability.loops``) feeds /readyz and /metrics, and the log gets
one line per failure.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from capture_api.audit.trail import Outcome, record_capture, record_captures
from capture_api.deliver.archive import Archive, InstanceRef, Part10, StoreResult
from capture_api.deliver.spooled import instance_ref
from capture_api.exceptions import ArchiveAuthFailed, ArchiveRejected, ArchiveUnavailable
from capture_api.observability import metrics
from capture_api.observability.loops import LoopHealth
from capture_api.store import captures
from capture_api.store.db import Database, is_postgres, write_transaction
from capture_api.store.leases import (
    Handoff,
    LeasedWorker,
    LeaseKeeper,
    claim,
    next_due,
    save,
    save_in,
)
from capture_api.store.records import PENDING, CaptureRecord, CaptureStatus, utcnow
from capture_api.store.spool import Spool, from_photo_at
from capture_api.store.spool_source import FolderReader, SpoolReader
from capture_api.store.wakeup import Listener, due_in, wakeup_for

log = logging.getLogger("capture.outbox")


@dataclass(frozen=True)
class OutboxPolicy:
    """Timing of claims and retries (from Settings)."""

    lease: dt.timedelta = dt.timedelta(seconds=15)
    retry_base: float = 2.0
    retry_max: float = 300.0
    verify_attempts: int = 10
    spool_retention: dt.timedelta = dt.timedelta(0)
    poll: float = 0.5
    #: After a store the archive did not show yet: ask again this soon (seconds).
    verify_delay: float = 0.25
    #: How often an idle worker deletes this machine's spooled files no capture needs any
    #: more (``SpoolReader.tidy``: on a database spool, those another replica verified).
    spool_tidy_every: float = 600.0
    #: A file younger than this may still be waiting for the commit that names it.
    spool_tidy_grace: dt.timedelta = dt.timedelta(hours=1)

    def backoff(self, attempts: int) -> dt.timedelta:
        """Exponential backoff with full jitter (AWS architecture blog's "Full Jitter")."""
        ceiling = max(min(self.retry_max, self.retry_base * 2 ** min(attempts, 20)), 0.01)
        return dt.timedelta(seconds=random.uniform(min(self.retry_base / 2, ceiling), ceiling))


class OutboxWorker(LeasedWorker):
    """Claims pending captures and moves them forward; run it in one or more threads."""

    def __init__(
        self,
        engine: Database,
        archive: Archive,
        encode: Callable[[CaptureRecord], CaptureRecord],
        policy: OutboxPolicy = OutboxPolicy(),
        name: str | None = None,
        *,
        keeper: LeaseKeeper | None = None,
        health: LoopHealth | None = None,
        spool: SpoolReader | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        super().__init__(name, "worker")
        self.engine = engine
        self.archive = archive
        self.encode = encode
        self.policy = policy
        self.poll = policy.poll
        self.keeper = keeper or LeaseKeeper(engine, policy.lease)
        self.health = health or LoopHealth()
        self.spool = spool or FolderReader()
        self.wakeup = wakeup_for(engine)
        self._listener = Listener(engine, self.wakeup) if is_postgres(engine) else None
        #: Rows the uploads of this process encoded, handed over with their lease taken.
        self.handoff = handoff
        self._tidy_due = 0.0  # time.monotonic() of the next tidy (the first idle look)
        if handoff is not None:
            handoff.wakeup = self.wakeup

    def start(self, threads: int = 1) -> None:
        """Start the threads, and on PostgreSQL this process's ``LISTEN capture_outbox``."""
        if self._listener is not None:
            self._listener.start()
        super().start(threads)
        if self.handoff is not None and threads > 0:
            self.handoff.open = True

    def listening(self) -> bool:
        """Whether this process listens for other replicas' commits (always, on SQLite)."""
        return self._listener is None or self._listener.listening.is_set()

    def idle_timeout(self) -> float:
        """The safety poll, or less when a retry or a verification is due sooner."""
        states = [s.value for s in PENDING]
        due = next_due(self.engine, CaptureRecord, states)
        if due is None:
            return self.poll
        return min(self.poll, max((due - utcnow()).total_seconds(), 0.005))

    def waiting(self) -> AbstractContextManager[object]:
        """A thread waiting for work is one uploads may hand their rows to."""
        return self.handoff.waiting() if self.handoff is not None else nullcontext()

    def woke(self, cause: str) -> None:
        metrics.woke(cause)

    def run_once(self) -> bool:
        """Advance one capture handed over by an upload, else claim one; False when nothing
        is due."""
        handed = self.handoff.take() if self.handoff is not None else None
        if handed is not None and self.handoff is not None:
            self.found(more=len(self.handoff) > 0)
            try:
                record = captures.get(self.engine, str(handed))
                owner = self.handoff.owner
                if record is not None and record.lease_owner == owner:
                    self._work(record, owner)
            finally:
                self.handoff.done(handed)
            return True
        owner = self.owner
        states = [s.value for s in PENDING]
        record = claim(self.engine, CaptureRecord, states, owner, self.policy.lease)
        if record is None:
            self._sweep_spool()
            self._tidy_spool()
            return False
        self.found()
        self._work(record, owner)
        return True

    def _work(self, record: CaptureRecord, owner: str) -> None:
        """Advance ``record`` under ``owner``'s lease (kept alive meanwhile)."""
        if record.status not in PENDING:
            return
        loop = _LOOP[CaptureStatus(record.status)]
        with self.keeper.hold(CaptureRecord, record.id, owner):
            try:
                self._advance(record, owner)
            except Exception as exc:  # a bug or a broken disk: say so on the capture, go on
                self._fault(record, owner, loop, exc)
                return
        self.health.succeeded(loop)

    def on_loop_error(self, exc: Exception) -> None:
        """Claiming failed (the database is away): count it against delivery."""
        self.health.failed("delivery", exc)

    def stop(self, timeout: float = 10.0) -> None:
        if self.handoff is not None:
            self.handoff.open = False  # rows already handed over run out of lease if left
        super().stop(timeout)
        if self._listener is not None:
            self._listener.stop()
        self.keeper.close()

    # --- the state machine ----------------------------------------------------------------

    def _advance(self, record: CaptureRecord, owner: str) -> None:
        if record.status == CaptureStatus.RECEIVED:
            self._encode(record)  # left by a crash before encoding; encode releases the claim
        elif record.status == CaptureStatus.ENCODED:
            self._send(record, owner)
        elif record.status == CaptureStatus.STORED:
            self._verify(record, owner)

    def _encode(self, record: CaptureRecord) -> None:
        """Encode a photo a request left ``received``; accepted by another replica (its file
        on another machine), from the copy the database keeps (``CAPTURE_SPOOL=database``)."""
        try:
            here = self.spool.restore(record.photo_path)
        except OSError:
            here = None  # nowhere: the encode says so
        if here is None:
            self.encode(record)
        else:
            from_photo_at(here, record, self.encode)

    def _fault(self, record: CaptureRecord, owner: str, loop: str, exc: Exception) -> None:
        """An unexpected error: keep the status, say why and when the next attempt is."""
        reason = self.health.failed(loop, exc, subject=f"capture {record.id}")
        delay = self.policy.backoff(record.attempts)
        self._save(
            record.id,
            owner,
            attempts=record.attempts + 1,
            last_error=(
                f"capture could not {_STEP[loop]} this photo ({reason}); it is safe and capture "
                "keeps trying: if this lasts, tell your administrator (the service log has "
                "the details) (will retry)"
            ),
            next_attempt_at=utcnow() + delay,
        )

    def _send(self, record: CaptureRecord, owner: str) -> None:
        ref = instance_ref(record)
        try:  # streamed from the spool into the request: never read whole
            data = self.spool.source(record.dicom_path)
        except OSError as exc:
            self._finish(
                record,
                owner,
                [("stow", Outcome.FAILED, "spool lost")],
                status=CaptureStatus.FAILED,
                failure_kind="spool-lost",
                reason=f"the encoded photo is missing from the spool ({exc.strerror})",
            )
            return
        try:
            result = _timed_store(self.archive, data, ref)
        except ArchiveUnavailable as exc:
            self._retry(record, owner, str(exc), stow=True)
        except ArchiveRejected as exc:
            kind = "archive-auth" if isinstance(exc, ArchiveAuthFailed) else "archive-rejected"
            self._finish(
                record,
                owner,
                [("stow", Outcome.FAILED, str(exc))],
                status=CaptureStatus.FAILED,
                reason=str(exc),
                failure_kind=kind,
                stow_requests=record.stow_requests + 1,
            )
        else:
            warnings = json.loads(record.warnings_json) + list(result.warnings)
            stored: dict[str, object] = {
                "status": CaptureStatus.STORED,
                "stored_at": utcnow(),
                "warnings_json": json.dumps(warnings),
                "attempts": 0,
                "verify_attempts": 0,
                "last_error": None,
                "stow_requests": record.stow_requests + 1,
                "retrieve_url": result.retrieve_url,
                "stored_sop_class_uid": result.sop_class_uid,
            }
            # The same lease verifies: no second claim, no second commit when it is visible.
            self._check(record, owner, stored, [("stow", Outcome.SUCCESS, None)], attempts=0)

    def _verify(self, record: CaptureRecord, owner: str) -> None:
        self._check(record, owner, {}, [], attempts=record.verify_attempts)

    def _check(
        self,
        record: CaptureRecord,
        owner: str,
        values: dict[str, object],
        events: list[_Event],
        *,
        attempts: int,
    ) -> None:
        """Ask the archive (one search of the study) whether it shows ``record``, and write the
        outcome, with ``values`` and ``events`` of the step before, in one transaction.

        Every other ``stored`` row of the study the same search shows is verified with it.
        """
        others = [
            row
            for row in captures.stored_in_study(self.engine, record.study_uid or "")
            if row.id != record.id
        ]
        try:
            seen = self.archive.visible([instance_ref(row) for row in (record, *others)])
        except ArchiveUnavailable as exc:
            self._retry(record, owner, str(exc), done=values, events=events)
            return
        except ArchiveRejected as exc:
            self._finish(
                record,
                owner,
                [*events, ("verify", Outcome.FAILED, str(exc))],
                **(
                    values
                    | {
                        "status": CaptureStatus.FAILED,
                        "reason": str(exc),
                        "failure_kind": "archive-rejected",
                    }
                ),
            )
            return
        if record.sop_instance_uid in seen:
            self._verified(
                record, owner, values, events, [r for r in others if r.sop_instance_uid in seen]
            )
        elif attempts + 1 >= self.policy.verify_attempts:
            # Stored but never visible: send again (the archive treats it as a duplicate).
            self._finish(
                record,
                owner,
                events,
                **(
                    values
                    | {
                        "status": CaptureStatus.ENCODED,
                        "verify_attempts": 0,
                        "last_error": "the archive accepted the photo but does not show it; "
                        "re-sending",
                        "next_attempt_at": utcnow(),
                    }
                ),
            )
        else:
            wait = (
                self.policy.backoff(attempts)
                if attempts
                else dt.timedelta(seconds=self.policy.verify_delay)
            )
            self._finish(
                record,
                owner,
                events,
                **(
                    values
                    | {
                        "status": CaptureStatus.STORED,
                        "verify_attempts": attempts + 1,
                        "next_attempt_at": utcnow() + wait,
                    }
                ),
            )

    def _verified(
        self,
        record: CaptureRecord,
        owner: str,
        values: dict[str, object],
        events: list[_Event],
        others: list[CaptureRecord],
    ) -> None:
        """Verified (with the study's other rows the search showed): the state, the audit
        events and the spool's bookkeeping in one commit; the files go after it."""
        now = utcnow()
        purge = self.policy.spool_retention <= dt.timedelta(0)
        done: dict[str, object] = {
            "status": CaptureStatus.VERIFIED,
            "verified_at": now,
            "last_error": None,
        }
        if purge:
            done["spool_deleted_at"] = now
        with write_transaction(self.engine) as tx:
            if not save_in(tx, CaptureRecord, record.id, owner, **(values | done)):
                return  # the lease was lost: whoever holds the row now writes its outcome
            moved = captures.verify_others_in(tx, [row.id for row in others], done)
            due_in(tx, follow_up=True)  # the EHR notifier follows a verification up
            happened = [(action, outcome, record, detail) for action, outcome, detail in events]
            for row in [record, *moved]:
                happened.append(("verify", Outcome.SUCCESS, row, None))
                if purge:
                    happened.append(("spool-purge", Outcome.SUCCESS, row, None))
                    self.spool.forget_in(tx, [row.photo_path, row.dicom_path])
                    tx.after_commit(_unlinker(row))
                tx.after_commit(metrics.verified)
            record_captures(self.engine, happened, tx=tx)  # last: the chain's lock

    def _retry(
        self,
        record: CaptureRecord,
        owner: str,
        error: str,
        *,
        stow: bool = False,
        done: dict[str, object] | None = None,
        events: Sequence[_Event] = (),
    ) -> None:
        log.warning("archive unavailable, will retry (attempt %d)", record.attempts + 1)
        metrics.retried("stow" if stow else "verify")
        values = dict(done or {})
        # After a store that went through, its counts are ``done``'s (attempts reset to 0).
        attempts = 0 if "attempts" in values else record.attempts
        sent = values.pop("stow_requests", record.stow_requests)
        step = "stow" if stow else "verify"
        self._finish(
            record,
            owner,
            [*events, (step, Outcome.RETRY, error)],
            **(
                values
                | {
                    "attempts": attempts + 1,
                    "last_error": f"{error} (will retry)",
                    "next_attempt_at": utcnow() + self.policy.backoff(attempts),
                    "stow_requests": sent if not stow else record.stow_requests + 1,
                }
            ),
        )

    # --- persistence ----------------------------------------------------------------------

    def _finish(
        self, record: CaptureRecord, owner: str, events: Sequence[_Event], **values: object
    ) -> None:
        """Write the step's outcome, release the lease and record its audit events: one commit."""
        with write_transaction(self.engine) as tx:
            if not save_in(tx, CaptureRecord, record.id, owner, **values):
                return  # the lease was lost: whoever holds the row now writes its outcome
            happened = [(action, outcome, record, detail) for action, outcome, detail in events]
            record_captures(self.engine, happened, tx=tx)
        if values.get("status") == CaptureStatus.FAILED:
            metrics.failed(str(values.get("failure_kind")))

    def _save(self, capture_id: str, owner: str, **values: object) -> None:
        save(self.engine, CaptureRecord, capture_id, owner, **values)

    def _delete_spool(self, capture_id: str) -> None:
        row = captures.get(self.engine, capture_id)
        if row is None or row.spool_deleted_at is not None:
            return
        with write_transaction(self.engine) as tx:
            if captures.mark_spool_deleted_in(tx, capture_id):
                record_capture(self.engine, "spool-purge", Outcome.SUCCESS, row, tx=tx)
                self.spool.forget_in(tx, [row.photo_path, row.dicom_path])
                tx.after_commit(_unlinker(row))

    def _tidy_spool(self) -> None:
        """Now and then, when idle: this machine's spooled files nobody needs (``tidy``)."""
        now = time.monotonic()
        if now < self._tidy_due:
            return
        self._tidy_due = now + self.policy.spool_tidy_every
        try:
            gone = self.spool.tidy(self.policy.spool_tidy_grace)
        except Exception as exc:  # housekeeping: it must not count as delivery failing
            every = self.policy.spool_tidy_every
            log.warning("the spool tidy failed (%s); next in %.0f s", type(exc).__name__, every)
            return
        metrics.spool_tidied(gone)
        if gone:
            log.info("deleted %d spooled files no capture needs any more", gone)

    def _sweep_spool(self) -> None:
        """Delete spooled bytes of captures verified longer ago than the retention."""
        if self.policy.spool_retention <= dt.timedelta(0):
            return
        cutoff = utcnow() - self.policy.spool_retention
        for capture_id in captures.spool_purge_due(self.engine, cutoff):
            self._delete_spool(capture_id)


#: An audit event a step records with its outcome: (action, outcome, detail).
_Event = tuple[str, Outcome, str | None]


def _unlinker(row: CaptureRecord) -> Callable[[], None]:
    """Delete a verified capture's spooled files (run after the commit that records it: a
    crash in between leaves files, never a row that names files already gone)."""

    def unlink() -> None:
        Spool.delete(row.photo_path)
        Spool.delete(row.dicom_path)

    return unlink


#: Which loop each pending state belongs to (``capture_api.observability.loops``).
_LOOP = {
    CaptureStatus.RECEIVED: "delivery",
    CaptureStatus.ENCODED: "delivery",
    CaptureStatus.STORED: "verification",
}
_STEP = {"delivery": "send", "verification": "verify"}


def _timed_store(archive: Archive, part10: Part10, ref: InstanceRef) -> StoreResult:
    """``archive.store`` with its wall time observed (``capture_stow_seconds{outcome}``)."""
    started = time.perf_counter()
    outcome = "error"
    try:
        result = archive.store(part10, ref)
        outcome = "stored"
        return result
    except ArchiveUnavailable:
        outcome = "unavailable"
        raise
    except ArchiveRejected:
        outcome = "rejected"
        raise
    finally:
        metrics.STOW_SECONDS.labels(outcome).observe(time.perf_counter() - started)
