"""Complete a claimed worklist item once every photo of its encounter is in the archive.

The clinician says "done" when the last photo is taken, which is usually before the last one
is verified. So "complete" is a request: done at once when everything is already verified,
otherwise remembered (``complete_requested_at``) and carried out by ``run_pending`` as soon
as the remaining photos are verified (IHE EBIW: the workitem lists the produced instances).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import col, select

from capture_api.config import Settings
from capture_api.context.worklist import ProducedInstance, WorklistClient
from capture_api.exceptions import Conflict
from capture_api.intake.service import CaptureService
from capture_api.observability.loops import LoopHealth
from capture_api.store.db import session
from capture_api.store.records import CaptureRecord, CaptureStatus, ContextRecord, utcnow

log = logging.getLogger("capture.worklist")


class CompletionRefused(Conflict):
    """The encounter cannot be completed as it is (no photos, or photos that failed)."""


@dataclass(frozen=True)
class Completion:
    """What happened to a completion request."""

    completed: bool
    sop_instance_uids: list[str]
    pending: int


class WorklistCompletion:
    """Completion requests and the background step that fulfils them."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        service: CaptureService,
        health: LoopHealth | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.service = service
        self.health = health or LoopHealth()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self, context: ContextRecord) -> Completion:
        """Complete now if every photo is verified, else remember the request (202)."""
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
        self._mark(context.id, complete_requested_at=utcnow())
        done = self.complete_if_ready(context.id)
        verified = [
            c.sop_instance_uid or "" for c in captures if c.status == CaptureStatus.VERIFIED
        ]
        return Completion(done, verified, len(captures) - len(verified) if not done else 0)

    def complete_if_ready(self, context_id: str) -> bool:
        """Complete the workitem when all photos are verified; True once completed."""
        context = self.service.context(context_id)
        if context.completed_at is not None:
            return True
        captures = self.service.for_context(context_id)
        if not captures or any(c.status != CaptureStatus.VERIFIED for c in captures):
            return False
        assert context.workitem_uid and context.workitem_transaction_uid and self._client_url
        with self._client() as worklist:
            worklist.complete(
                context.workitem_uid,
                context.workitem_transaction_uid,
                [_produced(c) for c in captures],
                started_at=min(c.created_at for c in captures),
            )
        self._mark(context_id, completed_at=utcnow())
        return True

    def run_pending(self) -> int:
        """Complete every requested encounter whose photos are now all verified."""
        with session(self.engine) as s:
            due = s.exec(
                select(ContextRecord.id)
                .where(col(ContextRecord.complete_requested_at).is_not(None))
                .where(col(ContextRecord.completed_at).is_(None))
            ).all()
        done = 0
        for context_id in due:
            try:
                done += self.complete_if_ready(context_id)
            except Exception as exc:  # unavailable, refused or a bug: one line, retried
                self.health.failed("worklist-completion", exc, subject=f"context {context_id}")
            else:
                self.health.succeeded("worklist-completion")
        return done

    # --- background thread --------------------------------------------------------------------

    def start(self, interval: float = 2.0) -> None:
        if not self.settings.worklist_url:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.run_pending()
                except Exception as exc:  # the database is away: try again next interval
                    self.health.failed("worklist-completion", exc)

        self._thread = threading.Thread(target=loop, name="worklist-completion", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

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

    def _mark(self, context_id: str, **values: object) -> None:
        with session(self.engine) as s:
            row = s.get(ContextRecord, context_id)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)
            s.add(row)
            s.commit()


def _produced(capture: CaptureRecord) -> ProducedInstance:
    return ProducedInstance(
        study_uid=capture.study_uid or "",
        series_uid=capture.series_uid or "",
        sop_instance_uid=capture.sop_instance_uid or "",
    )
