"""A rejected photo's chart resources, set to ``entered-in-error`` in the EHR, once (issue 18).

When capture takes a photo back (``capture_api.correct``) the Media and DocumentReference it
created in the EHR must say so: FHIR R4 ``Media.status`` and ``DocumentReference.status``
``entered-in-error`` ("this resource should never have existed", R4 valueset-event-status /
document-reference-status). A pull model beside the notifications' (``worker``): every pass
queues one ``notification_retraction`` row per ``notification`` row of a rejected photo, then
claims due rows under a lease like the other outboxes.

A row waits while its resource's creation is still pending (the create may yet go out: the
retraction follows it); a resource that was never created (its notification failed) needs
nothing. The update is a ``PUT`` of the resource as capture built it, with the EHR's id and
the new status -- the same content rebuilt from the capture, so no read scope is needed and a
retry writes the same thing (the update is idempotent).
"""

from __future__ import annotations

import logging

from capture_api.audit import trail as audit
from capture_api.config import EhrRegistration, Settings
from capture_api.context.smart import LaunchError, find_registration
from capture_api.deliver.outbox import OutboxPolicy
from capture_api.notify import resources
from capture_api.notify.backend_auth import BackendTokens, NotifyAuthError, NotifyUnavailable
from capture_api.notify.fhir_writer import Outcome, update, write_with_token
from capture_api.store import notifications, rejections
from capture_api.store.db import Database
from capture_api.store.leases import LeaseKeeper, claim, save
from capture_api.store.records import (
    NotificationStatus,
    RetractionRecord,
    RetractionStatus,
    utcnow,
)

log = logging.getLogger("capture.notify")
ENTERED_IN_ERROR = "entered-in-error"
NEVER_CREATED = "the chart never had this resource (its creation failed): nothing to retract"
NO_ID = (
    "the EHR did not say the resource's id when it was created: mark it entered-in-error "
    "in the EHR by hand"
)


class Retractions:
    """Queues and sends the entered-in-error updates; driven by ``NotifyWorker.run_once``."""

    def __init__(
        self,
        engine: Database,
        settings: Settings,
        policy: OutboxPolicy,
        keeper: LeaseKeeper,
        tokens: BackendTokens,
        wado_base: str | None,
        batch: int = 100,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.policy = policy
        self.keeper = keeper
        self.tokens = tokens
        self.http = tokens.http
        self.wado_base = wado_base
        self.batch = batch

    def enqueue_missing(self) -> int:
        """Queue a retraction for each chart resource of a rejected photo; returns how many."""
        added = 0
        for capture_id, resource_type, iss in rejections.missing_retractions(
            self.engine, self.batch
        ):
            added += int(rejections.insert_retraction(self.engine, capture_id, resource_type, iss))
        return added

    def run_once(self, owner: str) -> bool:
        """Claim and work one due retraction; False when none is due."""
        self.enqueue_missing()
        pending = [RetractionStatus.PENDING.value]
        row = claim(self.engine, RetractionRecord, pending, owner, self.policy.lease)
        if row is None:
            return False
        with self.keeper.hold(RetractionRecord, row.id, owner):
            self._retract(row, owner)
        return True

    def _retract(self, row: RetractionRecord, owner: str) -> None:
        created = rejections.created_resource(self.engine, row.capture_id, row.resource_type)
        if created is None or created.status == NotificationStatus.FAILED.value:
            self._save(row, owner, status=RetractionStatus.SENT.value, reason=NEVER_CREATED)
            return
        if created.status != NotificationStatus.SENT.value:
            self._retry(row, owner, "the resource is still being created in the EHR")
            return
        if not created.resource_id:
            self._fail(row, owner, NO_ID)
            return
        try:
            registration = find_registration(self.settings, row.iss)
        except LaunchError:
            self._fail(row, owner, f"the EHR {row.iss} is no longer registered with capture")
            return
        try:
            resource = self._resource(row, created.resource_id, registration)
        except resources.ResourceInvalid as exc:
            self._fail(row, owner, str(exc))
            return
        self._put(row, owner, registration, resource)

    def _resource(
        self, row: RetractionRecord, resource_id: str, registration: EhrRegistration
    ) -> dict[str, object]:
        loaded = notifications.delivery_inputs(self.engine, row.capture_id)
        if loaded is None or not self.wado_base:
            raise resources.ResourceInvalid("the capture, its context or the WADO-RS base is gone")
        capture, context, fhir_user = loaded
        inputs = resources.NotifyInputs(
            wado_base=self.wado_base,
            mrn_system=registration.mrn_system,
            fhir_user=fhir_user,
            iss=registration.iss,
        )
        built = resources.build(row.resource_type, capture, context, inputs)
        built |= {"id": resource_id, "status": ENTERED_IN_ERROR}
        return resources.validate(row.resource_type, built)

    def _put(
        self,
        row: RetractionRecord,
        owner: str,
        registration: EhrRegistration,
        resource: dict[str, object],
    ) -> None:
        try:
            result = write_with_token(
                self.tokens,
                registration,
                lambda token: update(self.http, registration.iss, resource, token),
            )
        except NotifyAuthError as exc:
            self._fail(row, owner, str(exc))
            return
        except NotifyUnavailable as exc:
            self._retry(row, owner, str(exc))
            return
        if result.outcome is Outcome.SENT:
            log.info("chart resource set entered-in-error: %s", row.resource_type)
            self._save(
                row, owner, status=RetractionStatus.SENT.value, resource_id=result.resource_id
            )
            self._audit(row, audit.Outcome.SUCCESS)
        elif result.outcome in (Outcome.PERMANENT, Outcome.UNAUTHORIZED):
            self._fail(row, owner, result.reason or "the EHR refused the update")
        else:
            self._retry(row, owner, result.reason or "the EHR is unavailable")

    # --- persistence ----------------------------------------------------------------------

    def _audit(self, row: RetractionRecord, outcome: audit.Outcome, reason: str = "") -> None:
        audit.record(
            self.engine,
            "retract",
            outcome,
            capture_id=row.capture_id,
            detail=f"{row.resource_type} {ENTERED_IN_ERROR}" + (f": {reason}" if reason else ""),
            peer=row.iss,
        )

    def _fail(self, row: RetractionRecord, owner: str, reason: str) -> None:
        log.warning("entered-in-error update failed: %s", row.resource_type)
        self._save(row, owner, status=RetractionStatus.FAILED.value, reason=reason)
        self._audit(row, audit.Outcome.FAILED, reason)

    def _retry(self, row: RetractionRecord, owner: str, error: str) -> None:
        self._save(
            row,
            owner,
            attempts=row.attempts + 1,
            reason=f"{error} (will retry)",
            next_attempt_at=utcnow() + self.policy.backoff(row.attempts),
        )

    def _save(self, row: RetractionRecord, owner: str, **values: object) -> None:
        save(self.engine, RetractionRecord, row.id, owner, **values)
