"""Deleting rejected instances from the archive, when the site asks for it (issue 18).

With ``CAPTURE_ARCHIVE_DELETE_REJECTED`` on and an Orthanc archive, a thread waits until a
rejection note (KOS) is verified in the archive and then deletes the instance it rejects
(``deliver.OrthancRemover``). After the note, not before: the archive's own record of why the
photo went must be there first. A delete that fails (archive away) is tried again on the next
pass; one already done (404 on lookup) counts as done, so replicas racing are harmless.
"""

from __future__ import annotations

from capture_api.audit.trail import Outcome, record
from capture_api.deliver import OrthancRemover
from capture_api.exceptions import ArchiveError
from capture_api.observability.loops import LoopHealth
from capture_api.store import rejections
from capture_api.store.db import Database
from capture_api.store.leases import LeasedWorker


class RemovalWorker(LeasedWorker):
    """One thread that deletes the rejected instances whose KOS is in the archive."""

    def __init__(
        self, engine: Database, remover: OrthancRemover, poll: float, health: LoopHealth
    ) -> None:
        super().__init__(None, "iocm-delete")
        self.engine = engine
        self.remover = remover
        self.poll = poll
        self.health = health

    def run_once(self) -> bool:
        """Delete what is due; True when something was deleted."""
        done = False
        for rejection in rejections.removal_due(self.engine):
            try:
                held = self.remover.remove(rejection.sop_instance_uid)
            except ArchiveError as exc:
                self.health.failed("iocm-delete", exc)
                return done
            rejections.mark_archive_removed(self.engine, rejection.capture_id)
            record(
                self.engine,
                "reject",
                Outcome.SUCCESS,
                capture_id=rejection.capture_id,
                sop_instance_uid=rejection.sop_instance_uid,
                detail="deleted from the archive (CAPTURE_ARCHIVE_DELETE_REJECTED)"
                if held
                else "not in the archive any more (deleted already)",
            )
            done = True
        if done:
            self.health.succeeded("iocm-delete")
        return done

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.remover.close()
