"""The WoundSize Observation of a measured wound, completed and checked before it is sent.

The Observation is built when the server measured the wound (``capture_api.wounds``, from the
server's numbers, with ``capture_api.measure.fhir``) and kept with the measurement. It is sent
only once its SR is verified in the archive **and** the photo's Media (or DocumentReference)
is in the EHR, because it is ``derivedFrom`` that resource: here it gets the subject the
photo's resources use, that reference, and the photo's security labels, and is validated with
the R4B model. The conditional create key is the SR's SOP Instance UID (the SR's outbox row's
``sop_instance_uid``), so the Observation is created once, whatever the retries.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from capture_api.notify.resources import ResourceInvalid, security_labels, subject_reference
from capture_api.store import measurements
from capture_api.store.db import Database
from capture_api.store.records import CaptureRecord, ContextRecord

__all__ = ["OBSERVATION", "build_observation"]

OBSERVATION = measurements.OBSERVATION
#: Observation.performer's reference types (R4 observation.html).
_PERFORMER_TYPES = frozenset(
    {"Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "RelatedPerson"}
)


def build_observation(
    db: Database,
    sr_row: CaptureRecord,
    context: ContextRecord,
    mrn_system: str | None,
    iss: str | None = None,
) -> dict[str, Any]:
    """The Observation for the SR outbox row ``sr_row``, or ``ResourceInvalid`` (not sent)."""
    found = measurements.observation_inputs(db, sr_row.id)
    if found is None:
        raise ResourceInvalid(
            "the wound measurement was superseded or removed, or the photo is not in the EHR: "
            "no Observation is sent for it"
        )
    row, photo_reference = found
    resource: dict[str, Any] = json.loads(row.observation_json)
    resource["subject"] = subject_reference(context, mrn_system)
    resource["derivedFrom"] = [{"reference": photo_reference}]
    performer = _performer(row.operator, iss)
    if performer:
        resource["performer"] = [{"reference": performer}]
    resource.setdefault("meta", {})["security"] = security_labels(
        sr_row.sensitivity_level, sr_row.sensitivity_categories
    )
    try:
        parsed = Observation.model_validate(resource)
    except ValidationError as exc:
        raise ResourceInvalid(f"the Observation does not validate: {exc}") from exc
    out: dict[str, Any] = json.loads(parsed.model_dump_json(exclude_none=True))
    return out


def _performer(fhir_user: str | None, iss: str | None) -> str | None:
    """The nurse who measured (their SMART fhirUser), relative to the EHR's base when it is
    on it; None for a fhirUser of a type Observation.performer cannot reference."""
    if not fhir_user:
        return None
    reference = fhir_user
    base = (iss or "").rstrip("/")
    if base and reference.startswith(base + "/"):
        reference = reference[len(base) + 1 :]
    parts = reference.split("/")
    return reference if len(parts) >= 2 and parts[-2] in _PERFORMER_TYPES else None
