"""Complete a claimed worklist item once every photo of its encounter is in the archive.

The clinician says "done" when the last photo is taken, which is usually before the last one
is verified. So "complete" is a request: done at once when everything is already verified,
otherwise queued (``worklist_completion``, one row per context) and carried out by a
``CompletionWorker`` as soon as the remaining photos are verified (IHE EBIW: the workitem lists
the produced instances).

The queue is leased like the two outboxes (``capture_api.store.leases``): whoever completes a
workitem -- the clinician's request, or a worker thread of any replica -- first takes the row's
lease, keeps it alive with the heartbeat (``LeaseKeeper``) while the UPS-RS calls run, and
writes the outcome only while it still holds it. So two replicas never complete the same
workitem, and one that dies in the middle leaves a lease that expires within seconds. A refused
or unreachable worklist is retried with the outbox's backoff (exponential, full jitter), the
reason kept on the row (``last_error``: "the worklist server refused the completion: <its
Warning>") and reported to the ``worklist-completion`` loop's health (/readyz, /metrics).
So a completion the server refuses is done by itself once the cause is fixed (the scheduler
adds the missing code, the worklist's administrator lifts the refusal); a clinician's new
request tries at once. Only an item CANCELED at the worklist ends the retries (``canceled``).

The completion lists the photos with the archive's retrieval (``Archive.retrieval``: a
WADO-RS Retrieve URL and/or Retrieve AE Title, or the embedded archive's File-set), which
PS3.3 Table 10-3b requires in every Output Information Sequence item.

``release`` gives a claimed item back (CANCELED with a CID 9300 reason, PS3.4 CC.2.1), e.g.
when the wrong patient was opened or nothing was photographed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from capture_api.capture.retrieval import Retrieval
from capture_api.config import Settings
from capture_api.context.ups_dataset import RELEASED, WRONG_ENTRY
from capture_api.context.worklist import ProducedInstance, WorkitemCanceled, WorklistClient
from capture_api.deliver.outbox import OutboxPolicy
from capture_api.exceptions import Conflict
from capture_api.intake.service import CaptureService
from capture_api.observability.loops import LoopHealth, describe
from capture_api.store import contexts, rejections
from capture_api.store.db import Database
from capture_api.store.leases import LeasedWorker, LeaseKeeper, owner_name, save
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    CompletionStatus,
    ContextRecord,
    WorklistCompletionRecord,
    utcnow,
)

log = logging.getLogger("capture.worklist")

LOOP = "worklist-completion"
#: How long a clinician's request waits for a worker completing the same workitem right now
#: (its three UPS-RS calls take well under a second on a working worklist).
WAIT_FOR_WORKER_SECONDS = 10.0
_WAIT_STEP_SECONDS = 0.05
#: How often a worker looks for claims left behind (``release_abandoned``).
ABANDON_SWEEP_SECONDS = 60.0


class CompletionRefused(Conflict):
    """The encounter cannot be completed as it is (no photos, or photos that failed)."""


@dataclass(frozen=True)
class Completion:
    """What happened to a completion request."""

    completed: bool
    sop_instance_uids: list[str]
    pending: int


class WorklistCompletion:
    """Completion requests, and the completion step the request and the workers share."""

    def __init__(
        self,
        settings: Settings,
        engine: Database,
        service: CaptureService,
        health: LoopHealth | None = None,
        policy: OutboxPolicy | None = None,
        keeper: LeaseKeeper | None = None,
        retrieval: Callable[[], Retrieval] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.service = service
        self.health = health or LoopHealth()
        self.policy = policy or OutboxPolicy()
        self.keeper = keeper or LeaseKeeper(engine, self.policy.lease)
        #: The archive's ``retrieval`` (asked at each completion: the File-set UID of an
        #: embedded archive exists once it holds something).
        self.retrieval = retrieval or _retrieval_from(settings)

    # --- the clinician's request ---------------------------------------------------------------

    def request(self, context: ContextRecord) -> Completion:
        """Complete now if every photo is verified, else queue the request (202).

        Errors of the worklist during an immediate completion propagate (the API answers
        502/503); the request stays queued and is retried with backoff.
        """
        captures = self.service.for_context(context.id)
        if not captures:
            raise CompletionRefused(
                "no photos have been taken for this encounter yet: take one, or cancel"
            )
        failed = [c for c in captures if c.status == CaptureStatus.FAILED]
        if failed:
            raise CompletionRefused(
                f"{len(failed)} photo{'s' if len(failed) != 1 else ''} failed and will not "
                "reach the archive: retake or delete them, then complete"
            )
        kept = _not_rejected(self.engine, captures)
        if not kept:
            raise CompletionRefused(
                "every photo of this encounter was taken back: take a new one, or cancel"
            )
        if context.completed_at is None:
            contexts.request_completion(self.engine, context.id)
        done = self._complete_now(context, captures)
        verified = [c.sop_instance_uid or "" for c in kept if c.status == CaptureStatus.VERIFIED]
        return Completion(done, verified, len(captures) - len(verified) if not done else 0)

    def _complete_now(self, context: ContextRecord, captures: list[CaptureRecord]) -> bool:
        """Complete in this request when every photo is verified; True once completed.

        A worker may be completing the same workitem at this moment (it holds the lease): the
        request then waits for its outcome, up to ``WAIT_FOR_WORKER_SECONDS``, and takes over
        if the worker gave up.
        """
        if context.completed_at is not None:
            return True
        if any(c.status != CaptureStatus.VERIFIED for c in captures):
            return False
        owner = owner_name("worklist-request")
        deadline = time.monotonic() + WAIT_FOR_WORKER_SECONDS
        while (
            row := contexts.claim_completion(self.engine, context.id, owner, self.policy.lease)
        ) is None:
            queued = contexts.completion(self.engine, context.id)
            if queued is None or queued.status == CompletionStatus.COMPLETED:
                return queued is not None
            if time.monotonic() >= deadline:
                return False  # still being worked on: 202, it completes by itself
            time.sleep(_WAIT_STEP_SECONDS)
        with self.keeper.hold(WorklistCompletionRecord, row.id, owner):
            try:
                return self._complete(row, owner)
            except WorkitemCanceled as exc:
                contexts.end_completion(self.engine, row.id, owner, CompletionStatus.CANCELED, exc)
                raise
            except Exception as exc:
                self._retry_later(row, owner, describe(exc))
                raise

    # --- the queue -------------------------------------------------------------------------------

    def run_one(self, owner: str) -> bool | None:
        """Claim one due completion and carry it out for ``owner``.

        None when nothing is due; else whether the workitem is now completed. A failure is
        reported to the loop's health and retried later with backoff, never raised.
        """
        row = contexts.claim_due_completion(self.engine, owner, self.policy.lease)
        if row is None:
            return None
        return self._work(row, owner)

    def run_pending(self) -> int:
        """Carry out every completion due now, in this thread; returns how many completed.

        Each queued completion is tried at most once per call (one that fails waits for its
        backoff), so this returns even when the worklist keeps refusing.
        """
        owner = owner_name("worklist-completion")
        done, tried = 0, set[str]()
        while (
            row := contexts.claim_due_completion(self.engine, owner, self.policy.lease)
        ) is not None:
            if row.id in tried:  # due again already: leave it to the workers
                save(self.engine, WorklistCompletionRecord, row.id, owner)
                break
            tried.add(row.id)
            done += self._work(row, owner)
        return done

    def _work(self, row: WorklistCompletionRecord, owner: str) -> bool:
        """Complete one claimed row, holding its lease; a failure is reported and retried."""
        with self.keeper.hold(WorklistCompletionRecord, row.id, owner):
            try:
                done = self._complete(row, owner)
            except WorkitemCanceled as exc:  # final: retrying cannot complete it
                self.health.failed(LOOP, exc, subject=f"context {row.id}")
                contexts.end_completion(self.engine, row.id, owner, CompletionStatus.CANCELED, exc)
                return False
            except Exception as exc:  # unavailable, refused or a bug: one line, retried later
                reason = self.health.failed(LOOP, exc, subject=f"context {row.id}")
                self._retry_later(row, owner, reason)
                return False
        self.health.succeeded(LOOP)
        return done

    # --- one completion, under its lease ---------------------------------------------------------

    def _complete(self, row: WorklistCompletionRecord, owner: str) -> bool:
        """The UPS-RS calls for one claimed completion, then its outcome; True once completed.

        Photos not all verified (the worker's claim only takes contexts whose photos are, so
        this is a late check): the lease is released and the request waits.
        """
        context = self.service.context(row.id)
        captures = self.service.for_context(row.id)
        if not captures or any(c.status != CaptureStatus.VERIFIED for c in captures):
            save(self.engine, WorklistCompletionRecord, row.id, owner, next_attempt_at=utcnow())
            return False
        assert context.workitem_uid and context.workitem_transaction_uid and self._client_url
        with self._client() as worklist:
            worklist.complete(
                context.workitem_uid,
                context.workitem_transaction_uid,
                [_produced(c) for c in _not_rejected(self.engine, captures)],
                self.retrieval(),
                started_at=min(c.created_at for c in captures),
            )
        if not contexts.finish_completion(self.engine, row.id, owner):
            # Our lease ran out (the database was away for the heartbeat): whoever holds it
            # now finds the workitem COMPLETED, which the client treats as done.
            log.warning("worklist completion of context %s finished after its lease", row.id)
        return True

    def _retry_later(self, row: WorklistCompletionRecord, owner: str, reason: str) -> None:
        save(
            self.engine,
            WorklistCompletionRecord,
            row.id,
            owner,
            attempts=row.attempts + 1,
            last_error=f"{reason} (will retry)",
            next_attempt_at=utcnow() + self.policy.backoff(row.attempts),
        )

    # --- giving an item back -----------------------------------------------------------------

    def release(
        self, context: ContextRecord, *, wrong_patient: bool = False, abandoned: bool = False
    ) -> None:
        """CANCEL the context's claimed workitem (PS3.4 CC.2.1) and stop its completion.

        The reason (CID 9300) is "Incorrect worklist entry selected" for the wrong patient,
        else "Discontinued Procedure Step rescheduling recommended": the encounter still needs
        its photos. Photos already in the archive are listed (PS3.17 GGG.3). Releasing an
        item already CANCELED is a no-op; a COMPLETED one raises ``WorkitemCompleted``.
        """
        assert context.workitem_uid and context.workitem_transaction_uid
        verified = [
            _produced(c)
            for c in self.service.for_context(context.id)
            if c.status == CaptureStatus.VERIFIED
        ]
        reason: Any = WRONG_ENTRY if wrong_patient else RELEASED
        text = (
            "discontinued: the wrong patient was opened on the capture phone"
            if wrong_patient
            else "discontinued: left open on capture without being finished, to be rescheduled"
            if abandoned
            else "discontinued: released from the capture phone, to be rescheduled"
        )
        with self._client() as worklist:
            worklist.release(
                context.workitem_uid,
                context.workitem_transaction_uid,
                reason=reason,
                text=text,
                instances=verified,
                retrieval=self.retrieval() if verified else None,
            )
        contexts.release_workitem(self.engine, context.id)

    def release_abandoned(self, now: dt.datetime | None = None) -> int:
        """Give back claims a phone left behind: opened ``worklist_abandon_hours`` ago and
        never asked to complete (the app closed, the battery died). Without this they would
        stay IN PROGRESS at the worklist for good. Photos already archived are listed on the
        CANCELED item. Returns how many were released; a failure is retried next time."""
        hours = self.settings.worklist_abandon_hours
        if not hours or not self.settings.worklist_url:
            return 0
        before = (now or utcnow()) - dt.timedelta(hours=hours)
        released = 0
        for context in contexts.abandoned_claims(self.engine, before):
            try:
                self.release(context, abandoned=True)
                released += 1
            except Exception as exc:  # the worklist is away or refuses: next round
                self.health.failed(LOOP, exc, subject=f"context {context.id}")
        return released

    # --- helpers --------------------------------------------------------------------------

    @property
    def _client_url(self) -> str | None:
        return self.settings.worklist_url

    def _client(self) -> WorklistClient:
        return WorklistClient(
            self.settings.worklist_url or "",
            station_code=self.settings.worklist_station_code,
            label=self.settings.worklist_label,
            aet=self.settings.worklist_aet,
        )


class CompletionWorker(LeasedWorker):
    """Threads that carry out queued worklist completions (``Runtime`` starts one per process).

    The same leased mechanism as ``OutboxWorker`` and ``NotifyWorker``: any number of them, in
    any number of replicas, complete each workitem once.
    """

    def __init__(self, completion: WorklistCompletion, name: str | None = None) -> None:
        super().__init__(name, "worklist")
        self.completion = completion
        self.poll = completion.policy.poll
        self._next_sweep = 0.0

    def run_once(self) -> bool:
        """Carry out one due completion; False when none is due (then give back, at most once
        a minute, the claims left behind: ``WorklistCompletion.release_abandoned``)."""
        if self.completion.run_one(self.owner) is not None:
            return True
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + ABANDON_SWEEP_SECONDS
            self.completion.release_abandoned()
        return False

    def on_loop_error(self, exc: Exception) -> None:
        """Claiming failed (the database is away)."""
        self.completion.health.failed(LOOP, exc)


def _retrieval_from(settings: Settings) -> Callable[[], Retrieval]:
    """Without an archive at hand (tests): the WADO-RS base of the settings."""
    base = settings.wado_url or settings.dicomweb_url
    fixed = Retrieval(wado_rs_base=base, ae_title=settings.archive_retrieve_aet)
    return lambda: fixed


def _not_rejected(engine: Database, captures: list[CaptureRecord]) -> list[CaptureRecord]:
    """The photos not taken back (IHE IOCM, ``capture_api.correct``): only they were produced."""
    rejected = rejections.rejected_among(engine, (c.sop_instance_uid or "" for c in captures))
    return [c for c in captures if c.sop_instance_uid not in rejected]


def _produced(capture: CaptureRecord) -> ProducedInstance:
    return ProducedInstance(
        study_uid=capture.study_uid or "",
        series_uid=capture.series_uid or "",
        sop_instance_uid=capture.sop_instance_uid or "",
    )
