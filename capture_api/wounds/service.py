"""Measuring a wound on a captured photo, end to end (issue 16).

``WoundService.measure`` takes the nurse's confirmed outline (image pixels of the archived
photo) and, optionally, a ruler calibration, and:

1. reads the photo back as archived (``photo.load_photo``: spool, else the archive);
2. calibrates it itself: the printed marker found in the pixels, or the two ruler points
   (``capture_api.measure``); no usable marker and no ruler is a ``MeasurementRejected``
   with the reason, and **nothing is written** (the photo stays a photo without numbers);
3. computes area, length, width and perimeter from outline + calibration: these server
   numbers, never the phone's, are what is stored, archived and sent;
4. builds the TID 1500 SR and queues it on the photos' outbox (``enqueue_object``): same
   patient, study and sensitivity as the photo, stored and verified like a photo;
5. records the ``wound_measurement`` row, with the WoundSize Observation that the notifier
   sends once the SR is verified and the photo's Media is in the EHR.

A request repeated with the same photo, outline and calibration (a double tap, a retry) is the
same measurement: its id, and so its SR's UIDs, are derived from what was asked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass

import cv2

from capture_api.capture.anatomy import BodySite, Laterality, get_site
from capture_api.capture.schemas import PatientIn
from capture_api.capture.sensitivity import Sensitivity, SensitivityLevel
from capture_api.deliver.archive import Archive
from capture_api.deliver.documents import enqueue_object
from capture_api.encode import derived_uid
from capture_api.exceptions import Conflict, InputRejected, InvalidMetadata, MeasurementRejected
from capture_api.measure import (
    Calibration,
    WoundMeasurement,
    build_measurement_sr,
    build_wound_size_observation,
    calibrate_from_marker,
    calibrate_from_ruler,
    measure_wound,
    snap_outline,
)
from capture_api.store import measurements
from capture_api.store.db import Database
from capture_api.store.records import (
    CaptureRecord,
    ContextRecord,
    ObjectKind,
    WoundMeasurementRecord,
    utcnow,
)
from capture_api.store.spool import Spool
from capture_api.wounds.photo import load_photo, photo_jpeg
from capture_api.wounds.tracking import tracking_id, tracking_uid

__all__ = ["MEDIA_PLACEHOLDER", "MeasureRequest", "Ruler", "WoundService"]

#: ``derivedFrom`` of the stored Observation until the notifier knows the photo's Media id.
MEDIA_PLACEHOLDER = "Media/photo-not-yet-in-the-ehr"
_SR_SERIES_NUMBER = 900


@dataclass(frozen=True)
class Ruler:
    """The fallback calibration: two image points on a ruler and the distance between them."""

    start: tuple[float, float]
    end: tuple[float, float]
    distance_mm: float


@dataclass(frozen=True)
class MeasureRequest:
    """What the phone sends: the confirmed outline, and a ruler when there is no marker."""

    outline: list[tuple[float, float]]
    ruler: Ruler | None = None
    head_direction: tuple[tuple[float, float], tuple[float, float]] | None = None
    snapped: bool = False
    phone_area_cm2: float | None = None
    operator: str | None = None

    def key(self, capture_id: str) -> str:
        """The measurement id: the same photo, outline and calibration give the same id."""
        asked = {"capture": capture_id, **asdict(self)}
        asked.pop("phone_area_cm2")
        asked.pop("operator")
        text = json.dumps(asked, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class WoundService:
    """The wound measurement use cases over one database, spool and archive."""

    def __init__(
        self, engine: Database, spool: Spool, archive: Archive, uid_root: str | None
    ) -> None:
        self.engine = engine
        self.spool = spool
        self.archive = archive
        self.uid_root = uid_root

    def measure(
        self, photo_row: CaptureRecord, context: ContextRecord, request: MeasureRequest
    ) -> WoundMeasurementRecord:
        """Measure, archive (SR) and record; ``MeasurementRejected`` writes nothing."""
        _check_photo(photo_row)
        measurement_id = request.key(photo_row.id)
        existing = measurements.get(self.engine, measurement_id)
        if existing is not None:
            return existing
        photo = load_photo(photo_row, self.spool, self.archive)
        calibration = self._calibrate(photo.pixels, photo.size, request.ruler)
        measured = measure_wound(
            request.outline, calibration, head_direction=request.head_direction
        )
        patient = PatientIn.model_validate_json(context.patient_json)
        issuer = _issuer(patient)
        wound_uid = tracking_uid(
            self.uid_root,
            patient.id,
            issuer,
            photo_row.body_site_code,
            photo_row.laterality,
            photo_row.lesion_uid,
        )
        wound_label = tracking_id(photo_row.body_site_code, photo_row.laterality)
        now = utcnow()
        sr = build_measurement_sr(
            photo.header,
            measured,
            tracking_id=wound_label,
            tracking_uid=wound_uid,
            series_instance_uid=derived_uid(self.uid_root, "wound-sr-series", photo_row.id),
            sop_instance_uid=derived_uid(self.uid_root, "wound-sr", measurement_id),
            series_number=_SR_SERIES_NUMBER,
            instance_number=len(measurements.for_capture(self.engine, photo_row.id)) + 1,
            now=now,
        )
        queued = enqueue_object(
            self.engine,
            self.spool,
            sr,
            kind=ObjectKind.SR,
            context_id=context.id,
            sensitivity_level=photo_row.sensitivity_level,
            sensitivity_categories=photo_row.sensitivity_categories,
            body_site_code=photo_row.body_site_code,
            laterality=photo_row.laterality,
            operator=photo_row.operator,  # the photo's (64 characters), not the fhirUser URL
        )
        taken = photo_row.captured_at or photo_row.created_at
        observation = self._observation(measured, photo_row, context, taken, str(sr.SOPInstanceUID))
        row = WoundMeasurementRecord(
            id=measurement_id,
            capture_id=photo_row.id,
            context_id=context.id,
            patient_id=patient.id,
            issuer=issuer,
            body_site_code=photo_row.body_site_code,
            laterality=photo_row.laterality,
            area_cm2=measured.area_cm2,
            length_mm=measured.length_mm,
            width_mm=measured.width_mm,
            perimeter_mm=measured.perimeter_mm,
            method=measured.quality.method,
            perspective_corrected=measured.quality.perspective_corrected,
            tilt_deg=measured.quality.tilt_deg,
            mm_per_px=measured.quality.mm_per_px,
            quality_json=json.dumps(
                {
                    "parameters": measured.quality.parameters(),
                    "notes": list(measured.quality.notes),
                    "summary": measured.quality.summary(),
                }
            ),
            outline_json=json.dumps(measured.outline_px.round(2).tolist()),
            snapped=request.snapped,
            phone_area_cm2=request.phone_area_cm2,
            tracking_uid=wound_uid,
            tracking_id=wound_label,
            sr_sop_instance_uid=str(sr.SOPInstanceUID),
            sr_capture_id=queued.id,
            observation_json=json.dumps(observation),
            operator=request.operator,
            measured_at=taken,
            created_at=now,
        )
        return measurements.record(self.engine, row)

    def snap(
        self, photo_row: CaptureRecord, outline: list[tuple[float, float]]
    ) -> list[tuple[float, float]]:
        """A GrabCut-refined outline near the rough one, for the nurse to accept or discard."""
        _check_photo(photo_row)
        photo = load_photo(photo_row, self.spool, self.archive)
        try:
            snapped = snap_outline(photo.pixels, outline)
        except cv2.error as exc:  # a degenerate crop or mask: GrabCut found nothing usable
            raise MeasurementRejected(
                "the edge could not be found near this tracing: keep your own tracing",
                reason="snap-failed",
            ) from exc
        return [(round(float(x), 2), round(float(y), 2)) for x, y in snapped]

    def calibration(self, photo_row: CaptureRecord) -> Calibration:
        """The photo's marker calibration, for the phone's live numbers while tracing; a
        ``MeasurementRejected`` says what is wrong (no marker, too small, too oblique, hidden)."""
        _check_photo(photo_row)
        photo = load_photo(photo_row, self.spool, self.archive)
        return calibrate_from_marker(photo.pixels)

    def image(self, photo_row: CaptureRecord) -> bytes:
        """The archived photo as the JPEG it holds (the pixels outlines are drawn on).

        Only for a photo of normal sensitivity: every view serves sensitive photos blurred
        (``privacy.visibility``), and a clear copy is not sent back to a phone for tracing.
        """
        _check_photo(photo_row)
        if photo_row.sensitivity_level != SensitivityLevel.NORMAL.value:
            raise Conflict(
                "the photo is marked sensitive: capture does not send its clear image back to a "
                "phone, so its wound cannot be traced here"
            )
        return photo_jpeg(photo_row, self.spool, self.archive)

    def of_photo(self, capture_id: str) -> list[WoundMeasurementRecord]:
        """A photo's measurements, the current one first."""
        return measurements.for_capture(self.engine, capture_id)

    @staticmethod
    def _calibrate(pixels: object, size: tuple[int, int], ruler: Ruler | None) -> Calibration:
        if ruler is not None:
            return calibrate_from_ruler(ruler.start, ruler.end, ruler.distance_mm, size)
        return calibrate_from_marker(pixels)  # type: ignore[arg-type]

    def _observation(
        self,
        measured: WoundMeasurement,
        photo_row: CaptureRecord,
        context: ContextRecord,
        taken: dt.datetime,
        sr_uid: str,
    ) -> dict[str, object]:
        """The WoundSize Observation from the server's numbers; the notifier completes its
        subject and ``derivedFrom`` when it sends it."""
        site = _site(photo_row.body_site_code)
        side = Laterality(photo_row.laterality) if photo_row.laterality else None
        patient = f"Patient/{context.fhir_patient_id}" if context.fhir_patient_id else "Patient/?"
        encounter = f"Encounter/{context.fhir_encounter_id}" if context.fhir_encounter_id else None
        return build_wound_size_observation(
            measured,
            patient=patient,
            media=MEDIA_PLACEHOLDER,
            effective=taken if taken.tzinfo else taken.replace(tzinfo=dt.UTC),
            encounter=encounter,
            body_site=site,
            laterality=side if site is not None else None,
            sensitivity=Sensitivity.parse(
                photo_row.sensitivity_level,
                [c for c in photo_row.sensitivity_categories.split(",") if c],
            ),
            identifier_uid=sr_uid,
        )


def _check_photo(row: CaptureRecord) -> None:
    if row.object_kind != ObjectKind.PHOTO.value:
        raise InputRejected("only a photo can be measured, not a document capture made")


def _issuer(patient: PatientIn) -> str:
    if patient.issuer is None:
        return ""
    return patient.issuer.namespace or patient.issuer.universal_id or ""


def _site(code: str | None) -> BodySite | None:
    if not code:
        return None
    try:
        return get_site(code)
    except InvalidMetadata:
        return None
