"""The patient's consent to clinical photography as a FHIR R4 Consent (consent.html).

Built as plain JSON and validated with the ``fhir.resources`` R4B model (R4B keeps R4's
Consent) before it is stored, like the Media and DocumentReference in ``capture_api.notify``.
Choices, documented once here (docs/privacy.md has the table):

* ``status = active``; ``scope`` = consentscope ``patient-privacy`` (a privacy consent
  directive: agreement to *collect and use* information, here photographs); ``category`` =
  LOINC 59284-0 "Patient Consent"; ``policyRule`` = v3-ActCode ``OPTIN`` (R4 invariant ppc-1
  wants a policy or a policyRule; ppc-2 wants ``patient`` with the privacy scope).
* ``patient``: the EHR's ``Patient/<id>``, else a logical reference by MRN (the same reference
  the Media and DocumentReference use, ``notify.resources.subject_reference``).
* ``performer`` (who agreed): the patient's reference; a guardian or other person as a
  ``RelatedPerson`` reference by display only (capture holds no RelatedPerson resource), the
  relationship in words ("Jane Doe (guardian)").
* verbal or written: R4 Consent has no element for how consent was given, so an extension
  (``METHOD_EXTENSION``) carries a v3 ParticipationMode coding, ``VERBAL`` or ``WRITTEN``.
* the scanned form (a photo of the same context, view "consent form"): ``sourceReference`` is
  a logical reference to the DocumentReference of that photo, by the identifier capture gives
  every photo's DocumentReference (``urn:dicom:uid`` | ``urn:oid:<SOP Instance UID>``), so it
  resolves wherever EHR notification created it and still names the archived form otherwise.
* ``provision``: ``permit`` the actions ``collect`` and ``use`` (consentaction) for the purpose
  ``TREAT`` (v3-ActReason), from the moment it was recorded.
* ``meta.security``: Confidentiality ``N``; the consent names no body site or finding.
* The DICOM objects do not carry the consent: no standard attribute of the VL Photographic
  Image IOD holds a consent reference, and Image Comments or a private tag would not be read
  by anyone. Captures reference it in capture's database (``capture.consent_id``).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import uuid
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from capture_api.exceptions import EncodeError
from capture_api.notify.resources import LOINC, RFC3986_SYSTEM, security_labels
from capture_api.notify.resources import identifier_of as photo_identifier
from capture_api.store.records import CaptureRecord

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
#: Our extension on Consent: how the consent was given (v3 ParticipationMode VERBAL/WRITTEN).
METHOD_EXTENSION = "http://capture.example/fhir/StructureDefinition/consent-method"
PATIENT_CONSENT_LOINC = ("59284-0", "Patient Consent")
_MODE = {"verbal": ("VERBAL", "verbal"), "written": ("WRITTEN", "written")}
_HOW = {"verbal": "verbally", "written": "in writing"}
_XHTML = "http://www.w3.org/1999/xhtml"


@dataclass(frozen=True)
class ConsentFacts:
    """What was recorded, in capture's words (validated by the API layer)."""

    consent_id: str  # a UUID's hex: also the resource id and its urn:uuid identifier
    patient: dict[str, Any]  # a FHIR Reference to the patient
    consenter: str  # patient | guardian | other
    consenter_name: str | None
    method: str  # verbal | written
    recorded_at: dt.datetime
    form: CaptureRecord | None = None


def build_consent(facts: ConsentFacts) -> dict[str, Any]:
    """The FHIR R4 Consent for ``facts`` (see the module docstring), validated."""
    code, display = _MODE[facts.method]
    when = _instant(facts.recorded_at)
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": facts.consent_id,
        "meta": {"security": security_labels("normal", "")},
        "text": {"status": "generated", "div": _narrative(facts)},
        "extension": [
            {
                "url": METHOD_EXTENSION,
                "valueCoding": {"system": PARTICIPATION_MODE, "code": code, "display": display},
            }
        ],
        "identifier": [
            {"system": RFC3986_SYSTEM, "value": f"urn:uuid:{uuid.UUID(hex=facts.consent_id)}"}
        ],
        "status": "active",
        "scope": _concept(CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        "category": [_concept(LOINC, *PATIENT_CONSENT_LOINC)],
        "patient": facts.patient,
        "dateTime": when,
        "performer": [_performer(facts)],
        "policyRule": _concept(ACT_CODE, "OPTIN", "opt-in"),
        "provision": {
            "type": "permit",
            "period": {"start": when},
            "action": [_concept(CONSENT_ACTION, a, a.capitalize()) for a in ("collect", "use")],
            "purpose": [{"system": ACT_REASON, "code": "TREAT", "display": "treatment"}],
        },
    }
    if facts.form is not None:
        resource["sourceReference"] = {
            "type": "DocumentReference",
            "identifier": photo_identifier(facts.form),
            "display": "Scanned consent form (clinical photo)",
        }
    return validate_consent(resource)


def validate_consent(resource: dict[str, Any]) -> dict[str, Any]:
    """Validate with the R4B model; return the model's JSON (R4 json.html)."""
    try:
        parsed = Consent.model_validate(resource)
    except ValidationError as exc:  # our builder's bug, never the clinician's input
        raise EncodeError(f"the Consent does not validate: {exc}") from exc
    out: dict[str, Any] = json.loads(parsed.model_dump_json(exclude_none=True))
    return out


def _performer(facts: ConsentFacts) -> dict[str, Any]:
    if facts.consenter == "patient":
        return dict(facts.patient)
    name = facts.consenter_name or "unnamed"
    return {"type": "RelatedPerson", "display": f"{name} ({facts.consenter})"}


def _narrative(facts: ConsentFacts) -> str:
    who = "the patient" if facts.consenter == "patient" else f"the patient's {facts.consenter}"
    text = f"Consent to clinical photography, given {_HOW[facts.method]} by {who}."
    return f'<div xmlns="{_XHTML}"><p>{html.escape(text, quote=False)}</p></div>'


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _instant(value: dt.datetime) -> str:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.isoformat(timespec="seconds")
