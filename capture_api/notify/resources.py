"""FHIR R4 resources that tell the EHR a clinical photo is in the archive (STANDARDS.md 5).

Built as plain JSON and validated against the ``fhir.resources`` R4B models before anything is
sent (R4B shares R4's Media and DocumentReference definitions), so a resource the EHR would
refuse for its structure fails here, with the model's message, and is never retried.

Choices, documented once here:

* **Identifier** (both resources): ``system = urn:dicom:uid``, ``value = urn:oid:<SOP Instance
  UID>`` -- the FHIR R4 convention for DICOM UIDs (ImagingStudy.identifier, R4 imagingstudy.html
  "DICOM UIDs"). It is also the conditional-create key (R4 http.html 3.1.0.8.1,
  ``If-None-Exist: identifier=urn:dicom:uid|urn:oid:...``), so a retry never duplicates.
* **Media** (R4 media.html): ``status = completed``; ``type = image`` (media-type);
  ``modality = DCM XC`` (External-camera Photography, the VL Photographic modality);
  ``subject`` the EHR's Patient (or a logical reference by MRN identifier when the context has no
  FHIR id); ``encounter``; ``created`` = acquisition time; ``issued`` = when the archive
  verified it; ``operator`` = the launching user's ``fhirUser`` when still known (else only the
  operator's name as ``display``; else omitted); ``note``; ``content`` = an
  ``application/dicom`` Attachment whose ``url`` is the instance's WADO-RS URL (PS3.18 10.4.1).
* **bodySite with laterality**: R4 binds Media.bodySite to SNOMED CT body structures ("may
  include laterality") but defines no laterality element. We keep the laterality-free site code
  (the same code as the DICOM Anatomic Region Sequence) as the only coding, put the side in
  ``bodySite.text`` ("Forearm, left") for people, and carry it coded as an extension on the
  CodeableConcept: ``LATERALITY_EXTENSION`` with a SNOMED ``valueCoding`` from DICOM CID 244
  (7771000 Left, 24028007 Right, 51440002 Bilateral) -- the same qualifier the encoder writes
  to Anatomic Region Modifier Sequence. The pattern mirrors mCODE's laterality qualifier
  extension on bodySite; receivers that ignore extensions still see the side in ``text``.
* **DocumentReference** (R4 documentreference.html, IHE MHD style): ``status = current``;
  ``type`` = LOINC 72170-4 "Photographic image" (18748-4 "Diagnostic imaging study" denotes a
  study report, not a single photo); ``masterIdentifier`` = ``urn:ietf:rfc:3986`` |
  ``urn:oid:<SOP UID>`` as MHD does; ``date`` = when verified; ``context.encounter``;
  ``context.period.start`` = acquisition; ``securityLabel`` = the labels below. R4
  DocumentReference has no bodySite: the Media carries it.
* **Security labels** (STANDARDS.md 5.4): HL7 v3 Confidentiality N / R / V from the capture's
  level, plus the HL7 v3 ActCode sensitivity categories (SEX, SDV, ADOL) in ``meta.security``
  (and DocumentReference.securityLabel). Capture-local categories (BREAST, FACE) have no code
  system an EHR knows: they are not sent; the Confidentiality level already carries how
  restricted the photo is.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.media import Media
from pydantic import ValidationError

from capture_api.capture.anatomy import Laterality, get_site
from capture_api.capture.schemas import PatientIn
from capture_api.capture.sensitivity import (
    ACT_CODE_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    SensitivityCategory,
    SensitivityLevel,
)
from capture_api.exceptions import CaptureError, InvalidMetadata
from capture_api.store.records import CaptureRecord, ContextRecord

DICOM_UID_SYSTEM = "urn:dicom:uid"
RFC3986_SYSTEM = "urn:ietf:rfc:3986"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
#: Our extension on Media.bodySite (a CodeableConcept) carrying the SNOMED laterality qualifier.
LATERALITY_EXTENSION = "http://capture.example/fhir/StructureDefinition/laterality"
#: LOINC "Photographic image" (Document Ontology), DocumentReference.type.
PHOTO_LOINC = ("72170-4", "Photographic image")
SUPPORTED_TYPES = ("Media", "DocumentReference")
_CONFIDENTIALITY_DISPLAY = {"N": "normal", "R": "restricted", "V": "very restricted"}
_ACT_CODE_DISPLAY = {
    "SEX": "sexuality and reproductive health information sensitivity",
    "SDV": "sexual assault, abuse, or domestic violence information sensitivity",
    "ADOL": "adolescent information sensitivity",
}
#: Reference types allowed for Media.operator (R4); a fhirUser of another type is not sent.
_OPERATOR_TYPES = frozenset({"Practitioner", "PractitionerRole", "Patient", "RelatedPerson"})


class ResourceInvalid(CaptureError):
    """The resource we built does not validate (a permanent problem: never retried)."""


@dataclass(frozen=True)
class NotifyInputs:
    """What the resources need beyond the capture and its context."""

    wado_base: str  # WADO-RS base URL the EHR links to (Settings.wado_url or dicomweb_url)
    mrn_system: str | None = None  # EhrRegistration.mrn_system, for logical subject references
    fhir_user: str | None = None  # the launching user's fhirUser (SMART), absolute or relative
    iss: str | None = None  # the EHR's FHIR base, to make fhirUser relative


def identifier_of(capture: CaptureRecord) -> dict[str, str]:
    """``{system: urn:dicom:uid, value: urn:oid:<SOP Instance UID>}``."""
    if not capture.sop_instance_uid:
        raise ResourceInvalid("the capture has no SOP Instance UID")
    return {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{capture.sop_instance_uid}"}


def if_none_exist(capture: CaptureRecord) -> str:
    """The ``If-None-Exist`` header value (R4 http.html 3.1.0.8.1): ``identifier=system|value``.

    ``|`` separates system and value (R4 search.html#token); neither part contains one.
    """
    ident = identifier_of(capture)
    return f"identifier={ident['system']}|{ident['value']}"


def wado_url(wado_base: str, capture: CaptureRecord) -> str:
    """The instance's WADO-RS URL (PS3.18 10.4.1 Retrieve Instance)."""
    base = wado_base.rstrip("/")
    return (
        f"{base}/studies/{capture.study_uid}/series/{capture.series_uid}"
        f"/instances/{capture.sop_instance_uid}"
    )


def security_labels(level: str, categories: str) -> list[dict[str, str]]:
    """``meta.security`` Codings: v3-Confidentiality N/R/V, then ActCode categories (5.4)."""
    try:
        code = SensitivityLevel(level).confidentiality_code
    except ValueError:
        code = "R"  # an unknown stored level is treated as restricted, never as normal
    labels = [
        {"system": CONFIDENTIALITY_SYSTEM, "code": code, "display": _CONFIDENTIALITY_DISPLAY[code]}
    ]
    for raw in sorted({c for c in categories.split(",") if c}):
        try:
            category = SensitivityCategory(raw)
        except ValueError:
            continue
        if category.is_act_code:
            labels.append(
                {"system": ACT_CODE_SYSTEM, "code": raw, "display": _ACT_CODE_DISPLAY[raw]}
            )
    return labels


def subject_reference(context: ContextRecord, mrn_system: str | None) -> dict[str, Any]:
    """``Patient/<id>`` when the EHR gave one, else a logical reference by MRN (R4 references)."""
    if context.fhir_patient_id:
        return {"reference": f"Patient/{context.fhir_patient_id}"}
    patient = PatientIn.model_validate_json(context.patient_json)
    system = mrn_system
    if system is None and patient.issuer and patient.issuer.universal_id:
        uid = patient.issuer.universal_id
        system = uid if ":" in uid else f"urn:oid:{uid}"
    identifier: dict[str, Any] = {"value": patient.id}
    if system:
        identifier["system"] = system
    else:
        identifier["type"] = {"coding": [{"system": V2_0203, "code": "MR"}]}
    return {"type": "Patient", "identifier": identifier}


def body_site(capture: CaptureRecord) -> dict[str, Any] | None:
    """Media.bodySite: one SNOMED site coding, side in ``text`` and in our extension."""
    if not capture.body_site_code:
        return None
    try:
        site = get_site(capture.body_site_code)
    except InvalidMetadata as exc:
        raise ResourceInvalid(str(exc)) from exc
    concept: dict[str, Any] = {
        "coding": [{"system": SNOMED, "code": site.code_value, "display": site.meaning}],
        "text": site.meaning,
    }
    if capture.laterality:
        side = Laterality(capture.laterality)
        modifier = side.modifier_code
        if modifier is not None:
            concept["text"] = site.display_name(side)  # the name the phone and the PACS show
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


def _title(capture: CaptureRecord) -> str:
    concept = body_site(capture)
    where = f": {concept['text']}" if concept else ""
    return f"Clinical photo{where}"


def _operator(capture: CaptureRecord, inputs: NotifyInputs) -> dict[str, str] | None:
    reference = None
    if inputs.fhir_user:
        reference = inputs.fhir_user
        if inputs.iss and reference.startswith(inputs.iss.rstrip("/") + "/"):
            reference = reference[len(inputs.iss.rstrip("/")) + 1 :]
        parts = reference.split("/")
        if len(parts) < 2 or parts[-2] not in _OPERATOR_TYPES:
            reference = None
    display = capture.operator.replace("^", " ").strip() if capture.operator else None
    if reference is None and not display:
        return None
    out: dict[str, str] = {}
    if reference:
        out["reference"] = reference
    if display:
        out["display"] = display
    return out


def _instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")


def build_media(
    capture: CaptureRecord, context: ContextRecord, inputs: NotifyInputs
) -> dict[str, Any]:
    """A FHIR R4 Media for the verified photo (see the module docstring), validated."""
    resource: dict[str, Any] = {
        "resourceType": "Media",
        "meta": {
            "security": security_labels(capture.sensitivity_level, capture.sensitivity_categories)
        },
        "identifier": [identifier_of(capture)],
        "status": "completed",
        "type": {"coding": [{"system": MEDIA_TYPE, "code": "image", "display": "Image"}]},
        "modality": {
            "coding": [{"system": DCM, "code": "XC", "display": "External-camera Photography"}]
        },
        "subject": subject_reference(context, inputs.mrn_system),
        "content": {
            "contentType": "application/dicom",
            "url": wado_url(inputs.wado_base, capture),
            "title": _title(capture),
        },
    }
    if context.fhir_encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{context.fhir_encounter_id}"}
    if created := _instant(capture.captured_at):
        resource["createdDateTime"] = created
        resource["content"]["creation"] = created
    if issued := _instant(capture.verified_at):
        resource["issued"] = issued
    if operator := _operator(capture, inputs):
        resource["operator"] = operator
    if site := body_site(capture):
        resource["bodySite"] = site
    if capture.note:
        resource["note"] = [{"text": capture.note}]
    return validate("Media", resource)


def build_document_reference(
    capture: CaptureRecord, context: ContextRecord, inputs: NotifyInputs
) -> dict[str, Any]:
    """A FHIR R4 DocumentReference for the verified photo (module docstring), validated."""
    labels = security_labels(capture.sensitivity_level, capture.sensitivity_categories)
    ident = identifier_of(capture)
    attachment: dict[str, Any] = {
        "contentType": "application/dicom",
        "url": wado_url(inputs.wado_base, capture),
        "title": _title(capture),
    }
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "meta": {"security": labels},
        "masterIdentifier": {"system": RFC3986_SYSTEM, "value": ident["value"]},
        "identifier": [ident],
        "status": "current",
        "type": {
            "coding": [{"system": LOINC, "code": PHOTO_LOINC[0], "display": PHOTO_LOINC[1]}],
        },
        "subject": subject_reference(context, inputs.mrn_system),
        "securityLabel": [{"coding": [label]} for label in labels],
        "content": [{"attachment": attachment}],
    }
    if date := _instant(capture.verified_at):
        resource["date"] = date
    if operator := _operator(capture, inputs):
        resource["author"] = [operator]
    if created := _instant(capture.captured_at):
        attachment["creation"] = created
    doc_context: dict[str, Any] = {}
    if context.fhir_encounter_id:
        doc_context["encounter"] = [{"reference": f"Encounter/{context.fhir_encounter_id}"}]
    if created:
        doc_context["period"] = {"start": created}
    if doc_context:
        resource["context"] = doc_context
    if capture.note:
        resource["description"] = capture.note[:1024]
    return validate("DocumentReference", resource)


def build(
    resource_type: str, capture: CaptureRecord, context: ContextRecord, inputs: NotifyInputs
) -> dict[str, Any]:
    """The resource of ``resource_type`` (one of ``SUPPORTED_TYPES``)."""
    if resource_type == "Media":
        return build_media(capture, context, inputs)
    if resource_type == "DocumentReference":
        return build_document_reference(capture, context, inputs)
    raise ResourceInvalid(
        f"capture cannot create {resource_type} resources (supported: {', '.join(SUPPORTED_TYPES)})"
    )


def validate(resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
    """Validate with the R4B model and return the model's JSON (R4 json.html)."""
    try:
        if resource_type == "Media":
            parsed: Media | DocumentReference = Media.model_validate(resource)
        else:
            parsed = DocumentReference.model_validate(resource)
    except ValidationError as exc:
        raise ResourceInvalid(f"the {resource_type} does not validate: {exc}") from exc
    out: dict[str, Any] = json.loads(parsed.model_dump_json(exclude_none=True))
    return out
