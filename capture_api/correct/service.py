"""Taking a photo back (IHE IOCM), and re-filing a wrong patient's photo for the right one.

``reject`` records the rejection once (the ``rejection`` row is keyed by the photo), then
queues the KOS rejection note in the photo's outbox (``deliver.enqueue_object``), which stores
and verifies it like a photo -- also when the archive is away at the time. From then on the
views leave the photo out (``review``), the notifier marks its chart resources
``entered-in-error`` (``notify.retraction``) and the trail holds who, why and when.

``refile`` issues the photo again for the patient of a context the clinician opened as any
patient is opened (launch, wristband, worklist), through the capture service's own intake:
the new photo is numbered, encoded, delivered, verified and written to the chart like any
other. Each step is idempotent: a double tap, a retried request and two racing requests
reject once, send one KOS and make one new photo.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import dataclass, replace

from capture_api.audit.trail import Outcome, record
from capture_api.capture.rejection import RejectReason
from capture_api.capture.schemas import PatientIn
from capture_api.correct import reissue, sources
from capture_api.correct.errors import NotArchived, RefileRefused
from capture_api.correct.kos import kos_uids, rejection_note
from capture_api.deliver import Archive, document_id, enqueue_object
from capture_api.deliver.spooled import part10
from capture_api.exceptions import NotFound
from capture_api.intake import CaptureService, request_of
from capture_api.privacy.actor import Actor
from capture_api.store import captures, rejections
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    ContextRecord,
    ObjectKind,
    RejectionRecord,
    utcnow,
)

log = logging.getLogger("capture.correct")

#: How long the phone offers to file a wrong patient's photo for the next patient opened.
REFILE_WINDOW = dt.timedelta(hours=24)
#: A photo is in the archive (or on its way to being shown there) in these states.
ARCHIVED = (CaptureStatus.STORED, CaptureStatus.VERIFIED)


@dataclass(frozen=True)
class Rejected:
    """A rejection and the outbox row of its KOS; ``created`` False for a repeated request."""

    rejection: RejectionRecord
    kos: CaptureRecord
    created: bool


class Corrections:
    """The rejection and re-filing use cases over one database, intake and archive."""

    def __init__(self, intake: CaptureService, archive: Archive) -> None:
        self.intake = intake
        self.engine = intake.engine
        self.archive = archive

    # --- rejecting ----------------------------------------------------------------------------

    def photo(self, capture_id: str) -> CaptureRecord:
        """The photo a rejection names (documents are not rejected this way)."""
        capture = captures.get(self.engine, capture_id)
        if capture is None or capture.object_kind != ObjectKind.PHOTO.value:
            raise NotFound(f"no capture {capture_id!r}")
        return capture

    def reject(
        self, capture: CaptureRecord, reason: RejectReason, actor: Actor, comment: str | None
    ) -> Rejected:
        """Reject the photo once and queue its KOS; a repeated request answers the first's."""
        existing = rejections.get(self.engine, capture.id)
        if existing is not None:
            return Rejected(existing, self._ensure_kos(existing, capture), created=False)
        if capture.status not in ARCHIVED or not capture.sop_instance_uid:
            raise NotArchived(
                "this photo is not in the archive yet: wait until it shows as sent, or ask "
                "again later (a photo that failed never reached anyone)"
            )
        context = self.intake.context(capture.context_id)
        patient = PatientIn.model_validate_json(context.patient_json)
        kos_series, kos_uid = kos_uids(self.intake.options.uid_root, capture.sop_instance_uid)
        row = RejectionRecord(
            capture_id=capture.id,
            sop_instance_uid=capture.sop_instance_uid,
            study_uid=capture.study_uid or "",
            series_uid=capture.series_uid or "",
            reason=reason.kos_title.value,
            comment=comment,
            context_id=capture.context_id,
            patient_id=patient.id,
            patient_issuer=_issuer(patient),
            actor=actor.fhir_user,
            session_id=actor.session_id,
            kos_capture_id=document_id(ObjectKind.KOS, kos_uid),
            kos_sop_instance_uid=kos_uid,
        )
        stored, created = rejections.insert(self.engine, row)
        kos = self._ensure_kos(stored, capture, context)
        if created:
            log.info("photo rejected (%s); KOS queued", reason.value)
            record(
                self.engine,
                "reject",
                Outcome.SUCCESS,
                actor=actor.fhir_user,
                session_id=actor.session_id,
                capture_id=capture.id,
                context_id=capture.context_id,
                sop_instance_uid=capture.sop_instance_uid,
                detail=f"{reason.kos_title.meaning} ({reason.kos_title.value}); KOS {kos_uid} "
                f"(series {kos_series})" + (f"; {comment}" if comment else ""),
            )
        return Rejected(stored, kos, created)

    def rejected(self, capture: CaptureRecord) -> Rejected:
        """The photo's rejection and its KOS (``NotFound`` when it is not rejected)."""
        rejection = rejections.get(self.engine, capture.id)
        if rejection is None:
            raise NotFound(f"capture {capture.id!r} is not rejected")
        return Rejected(rejection, self._ensure_kos(rejection, capture), created=False)

    def _ensure_kos(
        self,
        rejection: RejectionRecord,
        capture: CaptureRecord,
        context: ContextRecord | None = None,
    ) -> CaptureRecord:
        """The KOS's outbox row, queued now if a crash came between the rejection and it."""
        queued = captures.get(self.engine, rejection.kos_capture_id)
        if queued is not None:
            return queued
        context = context or self.intake.context(capture.context_id)
        evidence = sources.header(capture, context, self.intake.spool, self.archive)
        note = rejection_note(
            evidence,
            RejectReason.from_code(rejection.reason),
            uid_root=self.intake.options.uid_root,
            institution_name=self.intake.options.institution_name,
            comment=rejection.comment,
        )
        return enqueue_object(
            self.engine,
            self.intake.spool,
            note,
            kind=ObjectKind.KOS,
            context_id=capture.context_id,
            sensitivity_level=capture.sensitivity_level,
            sensitivity_categories=capture.sensitivity_categories,
            operator=capture.operator,
        )

    # --- re-filing ----------------------------------------------------------------------------

    def refile(self, capture: CaptureRecord, target: ContextRecord, actor: Actor) -> CaptureRecord:
        """Issue a wrong patient's rejected photo again for ``target``'s patient (once)."""
        rejection = self._refilable(capture, target)
        new_id = reissue.refiled_capture_id(capture.id)
        if rejection.refiled_capture_id is not None:
            done = captures.get(self.engine, rejection.refiled_capture_id)
            if done is not None:
                return done
        data = part10(capture, self.intake.spool, self.archive)
        jpeg, dataset = sources.jpeg_of(data)
        request = replace(
            request_of(capture),
            capture_id=new_id,
            context_id=target.id,
            captured_at=capture.captured_at or reissue.acquired_at(dataset),
            lesion_uid=None,  # the lesion is the other patient's
        )
        new, _ = self.intake.accept(request, io.BytesIO(reissue.with_icc(jpeg, dataset)))
        if rejections.set_refiled(self.engine, capture.id, new.id, target.id):
            self._audit_refile(capture, new, target, actor)
        return new

    def awaiting_refile(
        self, target: ContextRecord, actor: Actor
    ) -> list[tuple[RejectionRecord, CaptureRecord]]:
        """Photos this user took back as another patient's in the last ``REFILE_WINDOW``,
        not re-filed yet, that could be filed for ``target``'s patient (newest first)."""
        patient = PatientIn.model_validate_json(target.patient_json)
        codes = [r.kos_title.value for r in RejectReason if r.refilable]
        since = utcnow() - REFILE_WINDOW
        return [
            (rejection, capture)
            for rejection, capture in rejections.awaiting_refile(
                self.engine, actor.fhir_user, codes, since
            )
            if (rejection.patient_id, rejection.patient_issuer) != (patient.id, _issuer(patient))
        ]

    def _refilable(self, capture: CaptureRecord, target: ContextRecord) -> RejectionRecord:
        rejection = rejections.get(self.engine, capture.id)
        if rejection is None:
            raise RefileRefused(
                "reject the photo as taken of the wrong patient before re-filing it"
            )
        if not RejectReason.from_code(rejection.reason).refilable:
            raise RefileRefused("a photo rejected for its quality is not re-filed: take a new one")
        patient = PatientIn.model_validate_json(target.patient_json)
        if (patient.id, _issuer(patient)) == (rejection.patient_id, rejection.patient_issuer):
            raise RefileRefused(
                "this is the patient the photo was rejected for: open the right patient "
                "(from the EHR, the wristband or the worklist) and re-file it there"
            )
        if rejection.refiled_context_id not in (None, target.id):
            raise RefileRefused("this photo was already re-filed for another patient")
        return rejection

    def _audit_refile(
        self, old: CaptureRecord, new: CaptureRecord, target: ContextRecord, actor: Actor
    ) -> None:
        """Both patients' trails: the new instance names the rejected one, and back."""
        for capture, detail in (
            (new, f"re-filed from rejected instance {old.sop_instance_uid} (capture {old.id})"),
            (old, f"rejected instance re-filed as capture {new.id} for another patient"),
        ):
            record(
                self.engine,
                "refile",
                Outcome.SUCCESS,
                actor=actor.fhir_user,
                session_id=actor.session_id,
                capture_id=capture.id,
                context_id=capture.context_id,
                detail=detail,
            )


def _issuer(patient: PatientIn) -> str:
    """The issuer a patient is told apart by ("" when the EHR named none)."""
    if patient.issuer is None:
        return ""
    return patient.issuer.namespace or patient.issuer.universal_id or ""
