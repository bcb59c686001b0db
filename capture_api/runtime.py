"""Wiring: settings -> database, spool, archive, capture service and the background workers.

One object per process, built at start-up (the API's lifespan, the ``worker`` command) and
torn down at shutdown. Nothing here talks to the network at construction time, so the
service starts even when the archive is down.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from capture_api.audit import forwarding
from capture_api.capture.consent_policy import ConsentPolicy
from capture_api.capture.sensitivity_policy import policy_for
from capture_api.config import Settings
from capture_api.context.ups_events import LiveWorklist, WorklistEvents
from capture_api.correct.removal import RemovalWorker
from capture_api.deliver.archive import Archive
from capture_api.deliver.orthanc_rest import remover_from_settings
from capture_api.deliver.outbox import OutboxPolicy, OutboxWorker
from capture_api.encode import MemoryBudget, MiB
from capture_api.encode.pipeline import EncoderOptions
from capture_api.encode.prepare import Limits
from capture_api.encounters.ehr_context import EhrContexts
from capture_api.encounters.worklist_completion import CompletionWorker, WorklistCompletion
from capture_api.intake.service import CaptureService
from capture_api.notify.worker import NotifyWorker
from capture_api.oauth import Discovery
from capture_api.observability import bench_counts, metrics
from capture_api.observability.loops import LoopHealth
from capture_api.store.db import Database, make_engine, migrate
from capture_api.store.leases import Handoff, LeaseKeeper, owner_name, release_dead_local
from capture_api.store.records import (
    CaptureRecord,
    NotificationRecord,
    RetractionRecord,
    WorklistCompletionRecord,
)
from capture_api.store.spool import Spool
from capture_api.store.spool_blobs import DatabaseSpool
from capture_api.store.spool_source import FolderReader, SpoolReader
from capture_api.store.wakeup import wakeup_for
from capture_api.wounds import WoundService


@dataclass
class Runtime:
    """Everything a process needs to accept, deliver and show captures."""

    settings: Settings
    engine: Database
    service: CaptureService
    archive: Archive
    worker: OutboxWorker
    ehr_contexts: EhrContexts
    worklist_completion: WorklistCompletion
    notifier: NotifyWorker | None
    keeper: LeaseKeeper
    loops: LoopHealth
    #: SMART configurations per EHR, shared by launches, session refreshes and notifications.
    discovery: Discovery = field(default_factory=Discovery)
    #: Completes queued worklist items (only with a worklist configured).
    completer: CompletionWorker | None = None
    #: Today's worklist, kept fresh by UPS events where the worklist offers them.
    worklist: LiveWorklist = field(default_factory=lambda: LiveWorklist(None))
    #: Deletes rejected instances from Orthanc (only with CAPTURE_ARCHIVE_DELETE_REJECTED).
    remover: RemovalWorker | None = None
    #: Wound measurement on captured photos (issue 16).
    wounds: WoundService | None = None

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.sqlalchemy_url)
        if settings.bench_counters:
            bench_counts.install(engine)
        migrate(engine)
        metrics.count_commits(engine)  # capture_db_commits_total
        options = EncoderOptions(
            uid_root=settings.uid_root,
            institution_name=settings.institution_name,
            station_name=settings.station_name,
            limits=Limits(
                settings.max_upload_bytes,
                settings.max_pixels,
                MemoryBudget(settings.decode_memory_mb * MiB),
            ),
        )
        lease = dt.timedelta(seconds=settings.lease_seconds)
        keeper, loops = LeaseKeeper(engine, lease), LoopHealth()
        consent = ConsentPolicy(settings.consent_required, policy_for(settings.sensitive_sites))
        spool, reader = spool_from_settings(settings, engine)
        handoff = Handoff(keeper, CaptureRecord, owner_name("worker-handoff"))
        service = CaptureService(
            engine, spool, options, lease, consent, keeper, settings.encode_concurrency, handoff
        )
        archive = archive_from_settings(settings)
        policy = policy_from_settings(settings)
        worker = OutboxWorker(
            engine,
            archive,
            service.encode,
            policy,
            keeper=keeper,
            health=loops,
            spool=reader,
            handoff=handoff,
        )
        discovery = Discovery()
        ehr_contexts = EhrContexts(settings, engine, service, discovery)
        completion = WorklistCompletion(
            settings, engine, service, loops, policy, keeper, retrieval=archive.retrieval
        )
        completer = CompletionWorker(completion) if settings.worklist_url else None
        notifier = (
            NotifyWorker(engine, settings, policy, keeper=keeper, health=loops, discovery=discovery)
            if settings.notify_enabled and any(r.notify for r in settings.ehrs)
            else None
        )
        for follower in (notifier, completer):  # they follow verifications up: wake with them
            if follower is not None:
                follower.wakeup = wakeup_for(engine)
                follower.wakeup.followed = True
        return cls(
            settings,
            engine,
            service,
            archive,
            worker,
            ehr_contexts,
            completion,
            notifier,
            keeper,
            loops,
            discovery,
            completer,
            live_worklist(settings),
            removal_worker(settings, engine, policy, loops),
            WoundService(engine, spool, archive, settings.uid_root),
        )

    def start(self) -> None:
        """Free this machine's dead processes' claims, queue the audit events never sent to
        the audit record repository, then start the workers if enabled, and listen to the
        worklist's UPS events (the API answers the phones' lists)."""
        # Photos a killed process of this machine held are taken up now, not a lease later.
        release_dead_local(self.engine, _LEASED)
        forwarding.replay(self.engine)
        if self.worklist.events is not None:
            self.worklist.events.start()
        if self.settings.worker_enabled:
            self.start_workers(self.settings.worker_threads)

    def start_workers(self, threads: int) -> None:
        """The leased workers: ``threads`` delivery threads, the notifier, the completer."""
        self.worker.start(threads)
        if self.notifier is not None:
            self.notifier.start(1)
        if self.completer is not None:
            self.completer.start(1)
        if self.remover is not None:
            self.remover.start(1)

    def close(self) -> None:
        if self.worklist.events is not None:
            self.worklist.events.stop()
        if self.notifier is not None:
            self.notifier.stop()
        if self.completer is not None:
            self.completer.stop()
        if self.remover is not None:
            self.remover.stop()
        self.worker.stop()
        self.keeper.close()
        self.archive.close()
        self.engine.dispose()


#: The tables whose rows are claimed under a lease (``capture_api.store.leases``).
_LEASED = (CaptureRecord, NotificationRecord, RetractionRecord, WorklistCompletionRecord)


def spool_from_settings(settings: Settings, engine: Database) -> tuple[Spool, SpoolReader]:
    """The spool the requests write (``CAPTURE_SPOOL``) and how the outbox reads it."""
    if settings.spool == "database":
        spool = DatabaseSpool(settings.spool_dir, engine)
        return spool, spool
    folder = Spool(settings.spool_dir)
    return folder, FolderReader(folder.root, engine)


def archive_from_settings(settings: Settings) -> Archive:
    """DICOMweb when a base URL is configured, else the embedded local DICOMDIR archive."""
    if settings.dicomweb_url:
        from capture_api.deliver.dicomweb import DicomWebArchive

        return DicomWebArchive.from_settings(settings)
    from capture_api.deliver.local_archive import LocalArchive

    return LocalArchive(settings.local_archive_dir)


def removal_worker(
    settings: Settings, engine: Database, policy: OutboxPolicy, loops: LoopHealth
) -> RemovalWorker | None:
    """The thread that deletes rejected instances, when the site asks for it (docs/iocm.md)."""
    remover = remover_from_settings(settings)
    if remover is None:
        return None
    return RemovalWorker(engine, remover, policy.poll, loops)


def live_worklist(settings: Settings) -> LiveWorklist:
    """The worklist copy the API answers from; UPS events only with a worklist configured
    and ``CAPTURE_WORKLIST_EVENTS`` on (the thread starts with ``Runtime.start``)."""
    events = None
    if settings.worklist_url and settings.worklist_events:
        events = WorklistEvents(settings.worklist_url, settings.worklist_aet)
    return LiveWorklist(events, max_age=settings.worklist_cache_seconds)


def policy_from_settings(settings: Settings) -> OutboxPolicy:
    return OutboxPolicy(
        lease=dt.timedelta(seconds=settings.lease_seconds),
        retry_base=settings.retry_base_seconds,
        retry_max=settings.retry_max_seconds,
        verify_attempts=settings.verify_attempts,
        spool_retention=dt.timedelta(seconds=settings.spool_retention_seconds),
        poll=settings.poll_seconds,
    )
