"""The notification worker: each verified photo reaches the EHR as FHIR R4 resources, once.

A pull model, so nothing is lost between "verified" and "enqueued": every pass first inserts
the missing ``notification`` rows -- one per (verified capture, resource type in the EHR
registration's ``notify`` list) -- relying on the unique (capture_id, resource_type) constraint
so replicas racing to insert the same row are harmless (the loser's unique violation is
caught). Then it claims due pending rows exactly like the delivery outbox
(``capture_api.deliver.outbox``): candidates ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, each
taken by a conditional UPDATE that only succeeds while no live lease holds it; a dead worker's
lease expires and another worker takes over.

Each row becomes one FHIR R4 conditional create (R4 http.html 3.1.0.8.1) keyed on the SOP
Instance UID identifier, so a retry, a second worker or a re-run never makes a second resource.
Outcomes: 201/200 -> sent (the EHR's id kept); 412 (several matches) and 400/422/403/404 ->
failed with the EHR's reason (OperationOutcome diagnostics), never retried; 401 -> a fresh
SMART Backend Services token once, then retry later; 5xx, 408, 429, timeouts, EHR down ->
retry with ``OutboxPolicy.backoff`` (exponential, full jitter), as STOW does. Before the first
post to an EHR the worker reads its CapabilityStatement (once per worker start); resource types
it cannot create with ``conditionalCreate`` are failed with that reason instead of posted.
When no creation is due, the worker marks the resources of rejected photos ``entered-in-error``
(``retraction``, issue 18).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import httpx

from capture_api.audit import trail as audit
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.context.smart import LaunchError, find_registration
from capture_api.deliver.outbox import OutboxPolicy
from capture_api.notify import resources, wound_size
from capture_api.notify.backend_auth import (
    PUBLIC_CLIENT_REASON,
    BackendTokens,
    NotifyAuthError,
    NotifyUnavailable,
)
from capture_api.notify.fhir_writer import (
    Capabilities,
    FhirWriter,
    Outcome,
    write_with_token,
)
from capture_api.notify.recent import RecentWindow
from capture_api.notify.retraction import Retractions
from capture_api.oauth import Discovery
from capture_api.observability.loops import LoopHealth
from capture_api.store import measurements, notifications
from capture_api.store.db import Database
from capture_api.store.leases import LeasedWorker, LeaseKeeper, claim, save
from capture_api.store.records import (
    CaptureRecord,
    ContextRecord,
    NotificationRecord,
    NotificationStatus,
    utcnow,
)

log = logging.getLogger("capture.notify")
DEFAULT_TIMEOUT_SECONDS = 30.0


class NotifyWorker(LeasedWorker):
    """Enqueues and sends EHR notifications; run it in one or more threads (like OutboxWorker)."""

    def __init__(
        self,
        engine: Database,
        settings: Settings,
        policy: OutboxPolicy | None = None,
        http: httpx.Client | None = None,
        name: str | None = None,
        batch: int = 100,
        *,
        keeper: LeaseKeeper | None = None,
        health: LoopHealth | None = None,
        discovery: Discovery | None = None,
    ) -> None:
        super().__init__(name, "notify")
        self.engine = engine
        self.settings = settings
        self.policy = policy or OutboxPolicy()
        self.poll = self.policy.poll
        self.keeper = keeper or LeaseKeeper(engine, self.policy.lease)
        self.health = health or LoopHealth()
        self.batch = batch
        self._owns_http = http is None
        self.http = http or httpx.Client(timeout=DEFAULT_TIMEOUT_SECONDS)
        self.tokens = BackendTokens(self.http, discovery)
        self.writer = FhirWriter(self.http)
        self.wado_base = settings.wado_url or settings.dicomweb_url
        self.retractions = Retractions(
            engine, settings, self.policy, self.keeper, self.tokens, self.wado_base, batch
        )
        self._capabilities: dict[str, Capabilities] = {}
        self._lock = threading.Lock()
        self._warned_no_wado = False
        self.recent = RecentWindow()  # which verified photos a look for missing rows reads

    # --- running ---------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.keeper.close()
        if self._owns_http:
            self.http.close()

    def run_once(self) -> bool:
        """Enqueue what is missing, then claim and send one notification; False when idle."""
        self.enqueue_missing()
        owner = self.owner
        pending = [NotificationStatus.PENDING.value]
        row = claim(self.engine, NotificationRecord, pending, owner, self.policy.lease)
        if row is None:  # nothing to create: mark rejected photos' resources (retraction)
            return self.retractions.run_once(owner)
        with self.keeper.hold(NotificationRecord, row.id, owner):
            try:
                self._deliver(row, owner)
            except Exception as exc:  # a bug: say so on the row and in /readyz, retry later
                reason = self.health.failed(
                    "notification", exc, subject=f"capture {row.capture_id}"
                )
                self._retry(row, owner, f"capture could not notify the EHR ({reason})")
                return True
        self.health.succeeded("notification")
        return True

    def on_loop_error(self, exc: Exception) -> None:
        """Enqueueing or claiming failed (the database is away)."""
        self.health.failed("notification", exc)

    # --- enqueueing (pull model) ------------------------------------------------------------

    def enqueue_missing(self) -> int:
        """Insert the missing rows for verified captures of notifying EHRs; returns how many."""
        registrations = [r for r in self.settings.ehrs if r.notify]
        if not registrations:
            return 0
        if not self.wado_base:
            if not self._warned_no_wado:
                log.warning(
                    "EHR notifications are configured but no WADO-RS base is: set "
                    "CAPTURE_WADO_URL (or CAPTURE_DICOMWEB_URL); nothing is enqueued"
                )
                self._warned_no_wado = True
            return 0
        added = 0
        began, since = self.recent.begin()
        complete = True
        for registration in registrations:
            base = registration.iss.rstrip("/")
            for resource_type in dict.fromkeys(registration.notify):
                spellings = [base, f"{base}/"]
                capture_ids = self._missing(resource_type, spellings, since)
                complete = complete and len(capture_ids) < self.batch
                for capture_id in capture_ids:
                    added += self._insert(capture_id, resource_type, registration.iss)
        self.recent.end(began, since, complete=complete)
        return added

    def _missing(
        self, resource_type: str, spellings: list[str], since: dt.datetime | None
    ) -> list[str]:
        """Outbox rows that need a ``resource_type`` row (those that became ready ``since``;
        all: None): verified photos for Media and DocumentReference; verified wound SRs whose
        photo is in the EHR for Observation."""
        if resource_type == wound_size.OBSERVATION:
            return measurements.observations_missing(self.engine, spellings, self.batch, since)
        return notifications.missing(self.engine, resource_type, spellings, self.batch, since)

    def _insert(self, capture_id: str, resource_type: str, iss: str) -> int:
        """Insert one row; another replica may have won the race (unique violation)."""
        return int(notifications.insert(self.engine, capture_id, resource_type, iss))

    def _deliver(self, row: NotificationRecord, owner: str) -> None:
        loaded = self._load(row)
        if loaded is None:
            self._fail(row, owner, "the capture or its context no longer exists")
            return
        capture, context, fhir_user = loaded
        try:
            registration = find_registration(self.settings, row.iss)
        except LaunchError:
            self._fail(row, owner, f"the EHR {row.iss} is no longer registered with capture")
            return
        if row.resource_type not in registration.notify:
            self._fail(row, owner, f"{row.resource_type} is no longer in the EHR's notify list")
            return
        if registration.auth_method is ClientAuthMethod.NONE:
            self._fail(row, owner, PUBLIC_CLIENT_REASON)
            return
        if not self.wado_base:
            self._fail(row, owner, "no WADO-RS base is configured (CAPTURE_WADO_URL)")
            return
        try:
            problem = self._capabilities_of(registration.iss).problem(row.resource_type)
        except NotifyUnavailable as exc:
            self._retry(row, owner, str(exc))
            return
        if problem:
            self._fail(row, owner, problem)
            return
        inputs = resources.NotifyInputs(
            wado_base=self.wado_base,
            mrn_system=registration.mrn_system,
            fhir_user=fhir_user,
            iss=registration.iss,
        )
        try:
            if row.resource_type == wound_size.OBSERVATION:
                resource = wound_size.build_observation(
                    self.engine, capture, context, registration.mrn_system, registration.iss
                )
            else:
                resource = resources.build(row.resource_type, capture, context, inputs)
            condition = resources.if_none_exist(capture)
        except resources.ResourceInvalid as exc:
            self._fail(row, owner, str(exc))
            return
        self._post(row, owner, registration, resource, condition)

    def _post(
        self,
        row: NotificationRecord,
        owner: str,
        registration: EhrRegistration,
        resource: dict[str, Any],
        condition: str,
    ) -> None:
        try:
            result = write_with_token(
                self.tokens,
                registration,
                lambda token: self.writer.conditional_create(
                    registration.iss, resource, condition, token
                ),
            )
        except NotifyAuthError as exc:
            self._fail(row, owner, str(exc))
            return
        except NotifyUnavailable as exc:
            self._retry(row, owner, str(exc))
            return
        if result.outcome is Outcome.SENT:
            log.info("notified the EHR: %s for capture %s", row.resource_type, row.capture_id)
            self._save(
                row.id,
                owner,
                status=NotificationStatus.SENT.value,
                resource_id=result.resource_id,
                reason=None,
            )
            audit.record_notification(self.engine, row, audit.Outcome.SUCCESS)
        elif result.outcome is Outcome.PERMANENT:
            self._fail(row, owner, result.reason or "the EHR refused the resource")
        elif result.outcome is Outcome.UNAUTHORIZED:
            self._retry(row, owner, "the EHR refused a freshly issued token (HTTP 401)")
        else:
            self._retry(row, owner, result.reason or "the EHR is unavailable")

    def _capabilities_of(self, iss: str) -> Capabilities:
        """The EHR's CapabilityStatement, read once per worker start (per EHR)."""
        key = iss.rstrip("/")
        with self._lock:
            known = self._capabilities.get(key)
        if known is not None:
            return known
        capabilities = self.writer.capabilities(iss)
        with self._lock:
            self._capabilities[key] = capabilities
        return capabilities

    def _load(
        self, row: NotificationRecord
    ) -> tuple[CaptureRecord, ContextRecord, str | None] | None:
        return notifications.delivery_inputs(self.engine, row.capture_id)

    # --- persistence ----------------------------------------------------------------------

    def _fail(self, row: NotificationRecord, owner: str, reason: str) -> None:
        log.warning("EHR notification failed: %s for capture %s", row.resource_type, row.capture_id)
        self._save(row.id, owner, status=NotificationStatus.FAILED.value, reason=reason)
        audit.record_notification(self.engine, row, audit.Outcome.FAILED, reason)

    def _retry(self, row: NotificationRecord, owner: str, error: str) -> None:
        log.warning("EHR unavailable, will retry notification (attempt %d)", row.attempts + 1)
        self._save(
            row.id,
            owner,
            attempts=row.attempts + 1,
            reason=f"{error} (will retry)",
            next_attempt_at=utcnow() + self.policy.backoff(row.attempts),
        )

    def _save(self, row_id: int | None, owner: str, **values: object) -> None:
        save(self.engine, NotificationRecord, row_id, owner, **values)


def worker_from_settings(
    engine: Database, settings: Settings, policy: OutboxPolicy
) -> NotifyWorker:
    """The integrator's one-liner (``Runtime.build``): a worker when any EHR notifies."""
    return NotifyWorker(engine, settings, policy)
