"""What a photo of a tracked lesion carries beyond its site: the lesion, the dermatoscope,
and (for a dermoscopic image) the overview and close-up photos of the same lesion it points to.

Kept apart from ``service`` so the capture use case reads as before: these helpers turn the
upload's ``lesion_uid`` and dermoscopy settings into the encoder's ``LesionMark``,
``Dermoscopy`` and ``ImageReference`` values, from the database (``store.lesions``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydicom.uid import VLPhotographicImageStorage

from capture_api.capture.lesions import (
    ContactMethod,
    Dermoscopy,
    ImageReference,
    LesionMark,
    LesionPin,
    Polarization,
)
from capture_api.capture.patient import Patient
from capture_api.exceptions import InvalidMetadata
from capture_api.store import lesions
from capture_api.store.db import Database

if TYPE_CHECKING:
    from capture_api.intake.service import CaptureRequest


def lesion_mark(db: Database, tracking_uid: str | None, patient: Patient) -> LesionMark | None:
    """The lesion a photo shows, if it is one of this patient's (else a 422 with the reason)."""
    if not tracking_uid:
        return None
    record = lesions.get(db, tracking_uid)
    issuer = (
        patient.issuer.local_namespace or patient.issuer.universal_id if patient.issuer else None
    )
    if record is None or record.patient_id != patient.patient_id or record.issuer != (issuer or ""):
        raise InvalidMetadata(
            f"lesion {tracking_uid!r} is not one of this patient's lesions: pin it on the map first"
        )
    pin = None
    if record.view and record.x is not None and record.y is not None:
        pin = LesionPin(record.view, record.x, record.y)
    return LesionMark(record.tracking_uid, record.label, record.description, pin)


def lesion_references(
    db: Database, request: CaptureRequest, context_id: str
) -> tuple[ImageReference, ...]:
    """For a dermoscopic photo: this visit's clinical photos of the same lesion (overview first)."""
    if request.dermoscopy is None or not request.lesion_uid:
        return ()
    refs = []
    for capture in lesions.photos_of(db, request.lesion_uid):
        if (
            capture.context_id != context_id
            or capture.dermoscopy_json
            or capture.id == request.capture_id
        ):
            continue
        purpose = "overview" if "overview" in (capture.view or "").casefold() else "close-up"
        refs.append(
            ImageReference(VLPhotographicImageStorage, capture.sop_instance_uid or "", purpose)
        )
    refs.sort(key=lambda ref: ref.purpose != "overview")
    return tuple(refs)


def dermoscopy_json(scope: Dermoscopy | None) -> str | None:
    """The dermatoscope's settings as the capture row keeps them (null: a clinical photo)."""
    if scope is None:
        return None
    return json.dumps(
        {
            "polarization": scope.polarization.value if scope.polarization else None,
            "contact": scope.contact.value if scope.contact else None,
            "immersion": scope.immersion,
        }
    )


def dermoscopy_of(text: str | None) -> Dermoscopy | None:
    """The settings back from the capture row."""
    if not text:
        return None
    values = json.loads(text)
    return Dermoscopy(
        polarization=Polarization(values["polarization"]) if values.get("polarization") else None,
        contact=ContactMethod(values["contact"]) if values.get("contact") else None,
        immersion=values.get("immersion"),
    )
