"""The measured wound as a FHIR R4 Observation following the HL7 skin wound IG's WoundSize.

Profile: ``WoundSize`` of the HL7 "Lower Extremity Skin Wound Assessment" implementation guide
(STU1 continuous build, ``http://hl7.org/fhir/us/lower-extremity-skin-wound-assessment/``;
its source, HL7/fhir-skin-wound-ig ``WoundSize.xml``, fixes the codes below, their displays,
UCUM units, and prohibits ``Observation.value[x]``):

* ``code``: LOINC 72287-6 "Wound size panel"; ``category``: ``exam``;
* ``component``: 39126-8 "Length of Wound" (cm), 39125-0 "Width of Wound" (cm),
  89260-4 "Area of wound" (cm2), values in UCUM (``http://unitsofmeasure.org``);
* ``subject``, ``encounter``, ``effectiveDateTime``, optional ``performer``;
* ``bodySite``: the laterality-free SNOMED site (the photo's Anatomic Region code), the side in
  ``text`` and coded in the same laterality extension the Media resources use
  (``capture_api.notify.resources.LATERALITY_EXTENSION``; a test holds the two together);
* ``derivedFrom``: the photo's Media (and, when given, the SR or ImagingStudy);
* ``method``: what the calibration was (text, e.g. "perspective-corrected with a 30 mm printed
  marker"), and a ``note`` with the calibration quality parameters, since a wound size
  without its method cannot be compared across visits;
* ``meta.security``: the photo's confidentiality and ActCode categories, as for the Media.

A builder only: it returns JSON, validated by the tests with ``fhir.resources.R4B``; sending
it is the notifier's job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from capture_api.capture.anatomy import BodySite, Laterality
from capture_api.capture.sensitivity import ACT_CODE_SYSTEM, CONFIDENTIALITY_SYSTEM, Sensitivity
from capture_api.measure.wound import WoundMeasurement

__all__ = ["LATERALITY_EXTENSION", "WOUND_SIZE_PROFILE", "build_wound_size_observation"]

WOUND_SIZE_PROFILE = (
    "http://hl7.org/fhir/us/lower-extremity-skin-wound-assessment/StructureDefinition/WoundSize"
)
#: The same URL as capture_api.notify.resources.LATERALITY_EXTENSION.
LATERALITY_EXTENSION = "http://capture.example/fhir/StructureDefinition/laterality"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
DICOM_UID_SYSTEM = "urn:dicom:uid"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_SIDE_WORDS = {"L": "left", "R": "right", "B": "both sides"}
_CONFIDENTIALITY_DISPLAY = {"N": "normal", "R": "restricted", "V": "very restricted"}


def build_wound_size_observation(
    measurement: WoundMeasurement,
    *,
    patient: str,
    media: str,
    effective: dt.datetime,
    encounter: str | None = None,
    performer: str | None = None,
    body_site: BodySite | None = None,
    laterality: Laterality | None = None,
    sensitivity: Sensitivity | None = None,
    report: str | None = None,
    identifier_uid: str | None = None,
) -> dict[str, Any]:
    """The WoundSize Observation as JSON.

    References are literal FHIR references (``"Patient/123"``, ``"Media/abc"``, or absolute
    URLs). ``identifier_uid`` (e.g. the SR's SOP Instance UID) becomes
    ``urn:dicom:uid|urn:oid:<uid>``, the conditional-create key a retry can reuse.
    """
    if effective.tzinfo is None:
        raise ValueError("the effective time needs a UTC offset (FHIR dateTime with a time)")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": {"profile": [WOUND_SIZE_PROFILE]},
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "exam", "display": "Exam"}]}
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "72287-6", "display": "Wound size panel"}],
            "text": "Wound size panel",
        },
        "subject": {"reference": patient},
        "effectiveDateTime": effective.isoformat(timespec="seconds"),
        "method": {"text": measurement.quality.summary()},
        "note": [{"text": "Calibration: " + "; ".join(measurement.quality.parameters())}],
        "derivedFrom": [{"reference": ref} for ref in (media, report) if ref],
        "component": _components(measurement),
    }
    if identifier_uid:
        resource["identifier"] = [
            {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{identifier_uid}"}
        ]
    if encounter:
        resource["encounter"] = {"reference": encounter}
    if performer:
        resource["performer"] = [{"reference": performer}]
    if body_site is not None:
        resource["bodySite"] = _body_site(body_site, laterality)
    if sensitivity is not None:
        resource["meta"]["security"] = _security(sensitivity)
    return resource


def _components(measurement: WoundMeasurement) -> list[dict[str, Any]]:
    rows = [
        ("39126-8", "Length of Wound", measurement.length_mm / 10, "cm"),
        ("39125-0", "Width of Wound", measurement.width_mm / 10, "cm"),
        ("89260-4", "Area of wound", measurement.area_cm2, "cm2"),
    ]
    return [
        {
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "valueQuantity": {
                "value": round(value, 2),
                "unit": unit,
                "system": UCUM,
                "code": unit,
            },
        }
        for code, display, value, unit in rows
    ]


def _body_site(site: BodySite, laterality: Laterality | None) -> dict[str, Any]:
    concept: dict[str, Any] = {
        "coding": [{"system": SNOMED, "code": site.code_value, "display": site.meaning}],
        "text": site.meaning,
    }
    modifier = None if laterality is None else laterality.modifier_code
    if laterality is not None and modifier is not None:
        concept["text"] = f"{site.meaning}, {_SIDE_WORDS[laterality.value]}"
        concept["extension"] = [
            {
                "url": LATERALITY_EXTENSION,
                "valueCoding": {
                    "system": SNOMED,
                    "code": str(modifier.value),
                    "display": str(modifier.meaning),
                },
            }
        ]
    return concept


def _security(sensitivity: Sensitivity) -> list[dict[str, str]]:
    level = sensitivity.level.confidentiality_code
    labels = [
        {
            "system": CONFIDENTIALITY_SYSTEM,
            "code": level,
            "display": _CONFIDENTIALITY_DISPLAY[level],
        }
    ]
    for category in sorted(sensitivity.categories, key=lambda c: c.value):
        if category.is_act_code:
            labels.append({"system": ACT_CODE_SYSTEM, "code": category.value})
    return labels
