"""Accepting a photo: spool it durably, record it, encode it, and answer.

The order is the promise: the photo is on disk (fsync'd) and its row committed before the
API says 202; encoding then happens at once so a bad photo gets its 4xx in the same request.
If the process dies in between, the outbox finds the ``received`` row and encodes it later.
A re-sent capture id returns the first result; the same id with a different photo, or from
another context, is refused (409) in the same words, so the answer tells nothing about a
capture of another context (issue 14, finding 4: a capture id belongs to its context).

The request holds a lease on its new row while it encodes (kept alive by the heartbeat), so
the outbox does not encode the same photo at the same time; and an encode only lands by a
conditional ``received ->`` update, so a late one can never overwrite a capture that has moved
on (found by the delivery benchmark at concurrency 16). A re-sent upload of a photo a crash
left ``received`` takes the row and encodes it at once, instead of waiting for a worker.

The API streams the photo into the spool as the body arrives (``accept_spooled``): the
bytes are hashed on the way and written once. Encodes run at most ``encode_concurrency`` at
a time (default: the number of cores): more would only share the same cores while each
holds a photo in memory (issue 13).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from capture_api.audit.subjects import remember
from capture_api.audit.trail import Outcome, record_capture
from capture_api.capture.anatomy import Laterality, get_site
from capture_api.capture.consent_policy import NEVER, ConsentPolicy
from capture_api.capture.lesions import Dermoscopy
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import PersonName
from capture_api.capture.schemas import ContextIn, EncounterIn, PatientIn
from capture_api.capture.sensitivity import Sensitivity
from capture_api.encode.pipeline import EncoderOptions, wrap_photo
from capture_api.encode.uids import derived_uid
from capture_api.exceptions import (
    CaptureConflict,
    CorruptImage,
    ImageTooLarge,
    InputRejected,
    InvalidMetadata,
    UnknownContext,
    UnsupportedFormat,
)
from capture_api.intake.lesion_photos import (
    dermoscopy_json,
    dermoscopy_of,
    lesion_mark,
    lesion_references,
)
from capture_api.observability import metrics
from capture_api.privacy.consents import consent_for_capture
from capture_api.store import captures, contexts
from capture_api.store.db import Alongside, Database
from capture_api.store.leases import Handoff, LeaseKeeper, claim_row, owner_name
from capture_api.store.records import CaptureRecord, CaptureStatus, ContextRecord, utcnow
from capture_api.store.spool import Spool, SpooledFile, from_photo_at, mapped

#: failure_kind values for input the encoder refused (``refusal`` turns them back into errors).
_KINDS: dict[type[InputRejected], str] = {
    UnsupportedFormat: "unsupported-format",
    CorruptImage: "corrupt-image",
    ImageTooLarge: "too-large",
    InvalidMetadata: "invalid-metadata",
}

#: The same, the other way: what a refused capture's upload raises (``refusal``).
_REFUSED: dict[str, type[InputRejected]] = {
    **{kind: error for error, kind in _KINDS.items()},
    "invalid-input": InputRejected,
}


def refusal(record: CaptureRecord) -> InputRejected | None:
    """The error a refused upload answers with (again, when the same photo is re-sent).

    None unless the capture failed because its input was refused: a capture that failed
    later (archive, spool) was accepted, and its upload answers with its status.
    """
    error = _REFUSED.get(record.failure_kind or "")
    if record.status != CaptureStatus.FAILED.value or error is None:
        return None
    return error(record.reason or "")


@dataclass(frozen=True)
class CaptureRequest:
    """The metadata sent with one photo (validated by the API layer)."""

    capture_id: str
    context_id: str
    body_site: str | None = None
    laterality: str | None = None
    sensitivity: str = "normal"
    categories: list[str] = field(default_factory=list)
    note: str | None = None
    view: str | None = None
    operator: str | None = None
    device: str | None = None
    captured_at: dt.datetime | None = None
    lesion_uid: str | None = None  # the patient's lesion the photo shows (store.lesions)
    dermoscopy: Dermoscopy | None = None  # taken through a dermatoscope


class CaptureService:
    """The capture use cases over one database and one spool."""

    def __init__(
        self,
        engine: Database,
        spool: Spool,
        options: EncoderOptions,
        lease: dt.timedelta = dt.timedelta(seconds=15),
        consent_policy: ConsentPolicy = NEVER,
        keeper: LeaseKeeper | None = None,
        encode_concurrency: int | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.engine = engine
        self.spool = spool
        self.options = options
        self.lease = lease
        self.consent_policy = consent_policy  # capture_api.capture.consent_policy
        self.keeper = keeper or LeaseKeeper(engine, lease)
        #: This process's delivery workers, when they run: an encoded row goes to them with
        #: its lease, in the commit that encoded it (no claim commit; ``leases.Handoff``).
        self.handoff = handoff
        self._encode_slots = threading.BoundedSemaphore(encode_concurrency or os.cpu_count() or 1)

    # --- contexts ---------------------------------------------------------------------------

    def create_context(self, body: ContextIn, source: str = "integration") -> ContextRecord:
        """Store a patient/encounter context; its study UID groups the encounter's photos."""
        context_id = uuid.uuid4().hex
        record = ContextRecord(
            id=context_id,
            patient_json=body.patient.model_dump_json(),
            encounter_json=body.encounter.model_dump_json() if body.encounter else None,
            study_uid=derived_uid(self.options.uid_root, "context-study", context_id),
            source=source,
        )
        return contexts.add(self.engine, record)

    def context(self, context_id: str) -> ContextRecord:
        record = contexts.get(self.engine, context_id)
        if record is None:
            raise UnknownContext(f"no patient context {context_id!r}: open the patient again")
        return record

    # --- captures ---------------------------------------------------------------------------

    def accept(self, request: CaptureRequest, photo: BinaryIO) -> tuple[CaptureRecord, bool]:
        """Spool, record and encode one photo; return the record and whether it is new."""
        context, consent_id = self._check_request(request)  # 4xx and 428 before storing
        upload = self.spool.write_stream(
            self.spool.temporary(), photo, self.options.limits.max_bytes
        )
        return self._take(request, upload, context, consent_id)

    def accept_spooled(
        self, request: CaptureRequest, upload: SpooledFile, context: ContextRecord | None = None
    ) -> tuple[CaptureRecord, bool]:
        """Record and encode a photo already durable in the spool (the API streamed it there).

        ``context`` is the request's context if the caller read it already (the access check).
        The upload is removed if the request is refused, or when it turns out to be a re-send.
        """
        try:
            context, consent_id = self._check_request(request, context)
        except BaseException:
            Spool.delete(upload.path)
            raise
        return self._take(request, upload, context, consent_id)

    def _take(
        self,
        request: CaptureRequest,
        upload: SpooledFile,
        context: ContextRecord,
        consent_id: str | None,
    ) -> tuple[CaptureRecord, bool]:
        """The spooled upload becomes a capture (or the re-send of one), encoded at once."""
        existing = self.get(request.capture_id)
        if existing is not None:
            try:
                resent = self._resent(existing, request, upload.sha256)
                return self._resume(resent, upload), False
            finally:
                Spool.delete(upload.path)  # a re-send: unless its photo was taken, not needed
        target = self._photo_path(request.capture_id, upload.sha256)
        self.spool.move(upload.path, target)
        record = self._new_record(request, upload.sha256, upload.size, target)
        owner = _upload_owner()
        record.lease_owner, record.lease_expires_at = owner, utcnow() + self.lease
        record.consent_id = consent_id
        kept = functools.partial(self.spool.keep_in, path=target)  # with the row, one commit
        if not captures.insert_new(self.engine, record, kept):  # a concurrent request had it
            existing = self.get(request.capture_id)
            if existing is None:
                raise
            return self._resent(existing, request, upload.sha256), False
        metrics.captured()
        with self.keeper.hold(CaptureRecord, record.id, owner):
            return self.encode(record, context), True

    def _check_request(
        self, request: CaptureRequest, context: ContextRecord | None = None
    ) -> tuple[ContextRecord, str | None]:
        """Refuse bad metadata (4xx) and a missing consent (428); the context, and the
        consent's id if any."""
        if context is None or context.id != request.context_id:
            context = self.context(request.context_id)
        self._capture_context(request, context, instance_number=1)
        consent_id = consent_for_capture(
            self.engine,
            self.consent_policy,
            context,
            level=request.sensitivity,
            body_site=request.body_site,
            view=request.view,
        )
        return context, consent_id

    def encode(self, record: CaptureRecord, context: ContextRecord | None = None) -> CaptureRecord:
        """received -> encoded (DICOM spooled) or failed (the encoder refused the photo).

        Completes the received step and releases whatever claim the row had (the upload's or
        a worker's). If another encode of the same row landed first, this one leaves no trace.
        """
        if context is None or context.id != record.context_id:  # the upload read it already
            context = self.context(record.context_id)
        attempt = self.spool.path_for(f"{record.id}:{uuid.uuid4().hex}", ".dcm")
        with self._encode_slots:  # the photo is in memory only while it holds a slot
            try:
                ctx = self._capture_context(request_of(record), context, record.instance_number)
                wrapped = wrap_photo(mapped(record.photo_path or ""), ctx, self.options)
            except InputRejected as exc:
                return self._fail_input(record, exc)
            layout = wrapped.layout()
            if layout is not None:  # the photo's own bytes: referenced, not written again
                dicom = self.spool.write_composed(attempt, layout, Path(record.photo_path or ""))
            else:  # turned upright or from HEIF: header + the new JPEG, no joined copy
                dicom = self.spool.write_with(attempt, wrapped.write)
        now = utcnow()
        handoff = self.handoff if self.handoff is not None and self.handoff.ready() else None
        landed = self._finish_received(
            record,
            functools.partial(self.spool.keep_in, path=dicom.path),  # with the row, one commit
            **(handoff.lease() if handoff is not None else {}),
            status=CaptureStatus.ENCODED.value,
            sop_instance_uid=wrapped.sop_instance_uid,
            study_uid=wrapped.study_instance_uid,
            series_uid=wrapped.series_instance_uid,
            dicom_path=str(dicom.path),
            warnings_json=json.dumps(list(wrapped.warnings)),
            encoded_at=now,
            next_attempt_at=now,
        )
        if landed is None:
            Spool.delete(dicom.path)
            return self._current(record.id)
        if handoff is not None:
            handoff.give(record.id)
        remember(self.engine, landed, context)  # the request's audit row needs no read
        return landed

    def requeue_failed(self, kinds: tuple[str, ...] = ("archive-auth",)) -> int:
        """Send failed captures again after an administrator fixed the cause.

        Only deliveries the archive refused (``archive-auth``, ``archive-rejected``) whose DICOM
        object is still spooled can be re-sent; a refused photo cannot. Returns how many.
        """
        allowed = [k for k in kinds if k in ("archive-auth", "archive-rejected")]
        return captures.requeue_failed(self.engine, allowed)

    def get(self, capture_id: str) -> CaptureRecord | None:
        return captures.get(self.engine, capture_id)

    def for_context(self, context_id: str) -> list[CaptureRecord]:
        return captures.for_context(self.engine, context_id)

    def changed_in_context(
        self, context_id: str, since: dt.datetime, seen: dict[str, dt.datetime]
    ) -> list[CaptureRecord]:
        """The context's photos that moved on since ``seen`` was noted (``captures.changed``)."""
        return captures.changed(self.engine, context_id, since, seen)

    # --- helpers ----------------------------------------------------------------------------

    def _resume(self, record: CaptureRecord, upload: SpooledFile) -> CaptureRecord:
        """A re-sent photo still ``received`` (its first request died): encode it now.

        Only when no live lease holds it: a row another request or worker is encoding (and
        keeping alive) is left to it. The first request's spooled photo may be on no disk
        here: it was accepted by a replica that died in its encode (``CAPTURE_SPOOL=database``,
        issue 13), or its file was lost. Then the re-sent ``upload`` is encoded: ``_resent``
        checked it is the same photo (SHA-256). Before, this answered 500 (file not found).
        """
        if record.status != CaptureStatus.RECEIVED:
            return record
        owner = _upload_owner()
        states = [CaptureStatus.RECEIVED.value]
        claimed = claim_row(self.engine, CaptureRecord, record.id, states, owner, self.lease)
        if claimed is None:
            return record
        with self.keeper.hold(CaptureRecord, claimed.id, owner):
            if claimed.photo_path and Path(claimed.photo_path).is_file():
                return self.encode(claimed)
            # its own path when its own file was lost: the re-send restores it and stays
            here = self.spool.move(upload.path, self._photo_path(claimed.id, claimed.sha256))
            return from_photo_at(here, claimed, self.encode)

    def _photo_path(self, capture_id: str, sha256: str) -> Path:
        """Where a capture's photo is spooled. Content-addressed: a racing re-send with other
        bytes can never overwrite it; the same name on every replica (and in the database)."""
        return self.spool.path_for(f"{capture_id}:{sha256}", ".photo")

    def _resent(
        self, existing: CaptureRecord, request: CaptureRequest, sha256: str
    ) -> CaptureRecord:
        """The first capture, when this is its re-send: the same photo into the same context.

        Anything else is one refusal in one wording, naming nothing of the existing capture.
        """
        if existing.sha256 != sha256 or existing.context_id != request.context_id:
            raise CaptureConflict(
                f"capture id {request.capture_id!r} is already used for a different photo or "
                "another patient: a new photo needs a new capture id"
            )
        return existing

    def _new_record(
        self, request: CaptureRequest, sha256: str, size: int, photo: Path
    ) -> CaptureRecord:
        return CaptureRecord(
            id=request.capture_id,
            context_id=request.context_id,
            sha256=sha256,
            size_bytes=size,
            body_site_code=request.body_site,
            laterality=request.laterality,
            sensitivity_level=request.sensitivity,
            sensitivity_categories=",".join(sorted(set(request.categories))),
            note=request.note,
            view=request.view,
            operator=request.operator,
            device=request.device,
            captured_at=request.captured_at,
            photo_path=str(photo),
            lesion_uid=request.lesion_uid,
            dermoscopy_json=dermoscopy_json(request.dermoscopy),
        )

    def _capture_context(
        self, request: CaptureRequest, context: ContextRecord, instance_number: int
    ) -> CaptureContext:
        patient = PatientIn.model_validate_json(context.patient_json).to_patient()
        encounter = (
            EncounterIn.model_validate_json(context.encounter_json).to_encounter()
            if context.encounter_json
            else None
        )
        return CaptureContext(
            capture_id=request.capture_id,
            patient=patient,
            encounter=encounter,
            study_uid=context.study_uid,
            instance_number=instance_number,
            body_site=get_site(request.body_site) if request.body_site else None,
            laterality=Laterality.parse(request.laterality) if request.laterality else None,
            view=request.view,
            note=request.note,
            sensitivity=Sensitivity.parse(request.sensitivity, request.categories),
            operator=PersonName.parse(request.operator) if request.operator else None,
            device=request.device,
            captured_at=request.captured_at,
            lesion=lesion_mark(self.engine, request.lesion_uid, patient),
            dermoscopy=request.dermoscopy,
            references=lesion_references(self.engine, request, context.id),
        )

    def _fail_input(self, record: CaptureRecord, exc: InputRejected) -> CaptureRecord:
        kind = next((k for cls, k in _KINDS.items() if isinstance(exc, cls)), "invalid-input")
        landed = self._finish_received(
            record,
            functools.partial(self.spool.drop_in, path=record.photo_path),  # nothing to keep
            status=CaptureStatus.FAILED.value,
            reason=str(exc),
            failure_kind=kind,
        )
        if landed is not None:
            metrics.failed(kind)
            Spool.delete(record.photo_path)
            record_capture(self.engine, "capture", Outcome.REFUSED, landed, detail=str(exc))
        return landed or self._current(record.id)

    def _finish_received(
        self,
        record: CaptureRecord,
        keep: Alongside | None,
        **values: object,
    ) -> CaptureRecord | None:
        """Move a row out of ``received`` (only if it is still there) and release its claim,
        with what ``keep`` writes; the row as it now stands, or None when another encode moved
        it first."""
        return captures.finish_received(self.engine, record, keep, **values)

    def _current(self, capture_id: str) -> CaptureRecord:
        record = self.get(capture_id)
        if record is None:  # rows are never deleted
            raise LookupError(f"capture {capture_id} vanished")
        return record


def _upload_owner() -> str:
    """The lease owner of a request's own encode: this process, role ``upload``."""
    return owner_name("upload")


def request_of(record: CaptureRecord) -> CaptureRequest:
    """The upload's metadata as the row kept it (to encode it again, or to re-file it)."""
    return CaptureRequest(
        capture_id=record.id,
        context_id=record.context_id,
        body_site=record.body_site_code,
        laterality=record.laterality,
        sensitivity=record.sensitivity_level,
        categories=[c for c in record.sensitivity_categories.split(",") if c],
        note=record.note,
        view=record.view,
        operator=record.operator,
        device=record.device,
        captured_at=record.captured_at,
        lesion_uid=record.lesion_uid,
        dermoscopy=dermoscopy_of(record.dermoscopy_json),
    )
