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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from capture_api.audit.trail import Outcome, record_capture
from capture_api.deliver.archive import Archive, InstanceRef, StoreResult
from capture_api.exceptions import ArchiveAuthFailed, ArchiveRejected, ArchiveUnavailable
from capture_api.observability import metrics
from capture_api.observability.loops import LoopHealth
from capture_api.store import captures
from capture_api.store.db import Database
from capture_api.store.leases import LeasedWorker, LeaseKeeper, claim, save
from capture_api.store.records import PENDING, CaptureRecord, CaptureStatus, utcnow
from capture_api.store.spool import Spool

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
    ) -> None:
        super().__init__(name, "worker")
        self.engine = engine
        self.archive = archive
        self.encode = encode
        self.policy = policy
        self.poll = policy.poll
        self.keeper = keeper or LeaseKeeper(engine, policy.lease)
        self.health = health or LoopHealth()

    def run_once(self) -> bool:
        """Claim and advance one capture; False when nothing is due."""
        owner = self.owner
        states = [s.value for s in PENDING]
        record = claim(self.engine, CaptureRecord, states, owner, self.policy.lease)
        if record is None:
            self._sweep_spool()
            return False
        loop = _LOOP[CaptureStatus(record.status)]
        with self.keeper.hold(CaptureRecord, record.id, owner):
            try:
                self._advance(record, owner)
            except Exception as exc:  # a bug or a broken disk: say so on the capture, go on
                self._fault(record, owner, loop, exc)
                return True
        self.health.succeeded(loop)
        return True

    def on_loop_error(self, exc: Exception) -> None:
        """Claiming failed (the database is away): count it against delivery."""
        self.health.failed("delivery", exc)

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.keeper.close()

    # --- the state machine ----------------------------------------------------------------

    def _advance(self, record: CaptureRecord, owner: str) -> None:
        if record.status == CaptureStatus.RECEIVED:
            self.encode(record)  # left by a crash before encoding; encode releases the claim
        elif record.status == CaptureStatus.ENCODED:
            self._send(record, owner)
        elif record.status == CaptureStatus.STORED:
            self._verify(record, owner)

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
        ref = _ref(record)
        try:
            data = Path(record.dicom_path or "").read_bytes()
        except OSError as exc:
            self._save(
                record.id,
                owner,
                status=CaptureStatus.FAILED,
                failure_kind="spool-lost",
                reason=f"the encoded photo is missing from the spool ({exc.strerror})",
            )
            record_capture(self.engine, "stow", Outcome.FAILED, record, detail="spool lost")
            return
        try:
            result = _timed_store(self.archive, data, ref)
        except ArchiveUnavailable as exc:
            self._retry(record, owner, str(exc), stow=True)
        except ArchiveRejected as exc:
            kind = "archive-auth" if isinstance(exc, ArchiveAuthFailed) else "archive-rejected"
            self._save(
                record.id,
                owner,
                status=CaptureStatus.FAILED,
                reason=str(exc),
                failure_kind=kind,
                stow_requests=record.stow_requests + 1,
            )
            record_capture(self.engine, "stow", Outcome.FAILED, record, detail=str(exc))
        else:
            warnings = json.loads(record.warnings_json) + list(result.warnings)
            self._save(
                record.id,
                owner,
                status=CaptureStatus.STORED,
                stored_at=utcnow(),
                warnings_json=json.dumps(warnings),
                attempts=0,
                last_error=None,
                stow_requests=record.stow_requests + 1,
                next_attempt_at=utcnow(),
            )
            record_capture(self.engine, "stow", Outcome.SUCCESS, record)

    def _verify(self, record: CaptureRecord, owner: str) -> None:
        try:
            visible = self.archive.is_visible(_ref(record))
        except ArchiveUnavailable as exc:
            self._retry(record, owner, str(exc))
            return
        except ArchiveRejected as exc:
            self._save(
                record.id,
                owner,
                status=CaptureStatus.FAILED,
                reason=str(exc),
                failure_kind="archive-rejected",
            )
            record_capture(self.engine, "verify", Outcome.FAILED, record, detail=str(exc))
            return
        if visible:
            self._save(
                record.id,
                owner,
                status=CaptureStatus.VERIFIED,
                verified_at=utcnow(),
                last_error=None,
            )
            record_capture(self.engine, "verify", Outcome.SUCCESS, record)
            if self.policy.spool_retention <= dt.timedelta(0):
                self._delete_spool(record.id)
        elif record.verify_attempts + 1 >= self.policy.verify_attempts:
            # Stored but never visible: send again (the archive treats it as a duplicate).
            self._save(
                record.id,
                owner,
                status=CaptureStatus.ENCODED,
                verify_attempts=0,
                last_error="the archive accepted the photo but does not show it; re-sending",
                next_attempt_at=utcnow(),
            )
        else:
            self._save(
                record.id,
                owner,
                verify_attempts=record.verify_attempts + 1,
                next_attempt_at=utcnow() + self.policy.backoff(record.verify_attempts),
            )

    def _retry(self, record: CaptureRecord, owner: str, error: str, *, stow: bool = False) -> None:
        log.warning("archive unavailable, will retry (attempt %d)", record.attempts + 1)
        metrics.retried("stow" if stow else "verify")
        self._save(
            record.id,
            owner,
            attempts=record.attempts + 1,
            last_error=f"{error} (will retry)",
            next_attempt_at=utcnow() + self.policy.backoff(record.attempts),
            stow_requests=record.stow_requests + (1 if stow else 0),
        )
        step = "stow" if stow else "verify"
        record_capture(self.engine, step, Outcome.RETRY, record, detail=error)

    # --- persistence ----------------------------------------------------------------------

    def _save(self, capture_id: str, owner: str, **values: object) -> None:
        save(self.engine, CaptureRecord, capture_id, owner, **values)
        if values.get("status") == CaptureStatus.VERIFIED:
            metrics.verified()
        elif values.get("status") == CaptureStatus.FAILED:
            metrics.failed(str(values.get("failure_kind")))

    def _delete_spool(self, capture_id: str) -> None:
        row = captures.get(self.engine, capture_id)
        if row is None or row.spool_deleted_at is not None:
            return
        Spool.delete(row.photo_path)
        Spool.delete(row.dicom_path)
        captures.mark_spool_deleted(self.engine, capture_id)
        record_capture(self.engine, "spool-purge", Outcome.SUCCESS, row)

    def _sweep_spool(self) -> None:
        """Delete spooled bytes of captures verified longer ago than the retention."""
        if self.policy.spool_retention <= dt.timedelta(0):
            return
        cutoff = utcnow() - self.policy.spool_retention
        for capture_id in captures.spool_purge_due(self.engine, cutoff):
            self._delete_spool(capture_id)


#: Which loop each pending state belongs to (``capture_api.observability.loops``).
_LOOP = {
    CaptureStatus.RECEIVED: "delivery",
    CaptureStatus.ENCODED: "delivery",
    CaptureStatus.STORED: "verification",
}
_STEP = {"delivery": "send", "verification": "verify"}


def _timed_store(archive: Archive, part10: bytes, ref: InstanceRef) -> StoreResult:
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


def _ref(record: CaptureRecord) -> InstanceRef:
    return InstanceRef(
        record.study_uid or "", record.series_uid or "", record.sop_instance_uid or ""
    )
