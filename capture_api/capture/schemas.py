"""The wire form of a patient/encounter context (API bodies and the stored JSON).

Validated at the boundary with the DICOM limits, then turned into the plain context values
the encoder uses. The product's clinicians never type these: EHR launch, worklist and
wristband scan fill them (later releases); the API accepts them from trusted integrations.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from capture_api.capture.patient import Encounter, Issuer, Patient, PersonName, Sex
from capture_api.capture.text import FreeText


class IssuerIn(BaseModel):
    """An assigning authority: a local namespace and/or an OID/URI."""

    model_config = ConfigDict(extra="forbid")
    namespace: FreeText | None = Field(default=None, max_length=64)
    universal_id: FreeText | None = Field(default=None, max_length=64)

    def to_issuer(self) -> Issuer:
        return Issuer(local_namespace=self.namespace, universal_id=self.universal_id)


def _empty(value: str | None) -> bool:
    return not value


class NameIn(BaseModel):
    """A person's name as the EHR or the worklist gives it (the DICOM PN components).

    ``middle``, ``prefix`` and ``suffix`` are the third to fifth PN components (PS3.5
    6.2.1.1): a worklist's "Müller^Zoë^Ann" keeps its middle name. Empty ones are left out of
    the JSON, so a name without them reads as before.
    """

    model_config = ConfigDict(extra="forbid")
    family: FreeText = Field(min_length=1, max_length=64)
    given: FreeText = Field(default="", max_length=64)
    middle: FreeText | None = Field(default=None, max_length=64, exclude_if=_empty)
    prefix: FreeText | None = Field(default=None, max_length=64, exclude_if=_empty)
    suffix: FreeText | None = Field(default=None, max_length=64, exclude_if=_empty)

    def to_name(self) -> PersonName:
        return PersonName(
            self.family, self.given, self.middle or "", self.prefix or "", self.suffix or ""
        )


class PatientIn(BaseModel):
    """The patient of a context."""

    model_config = ConfigDict(extra="forbid")
    id: FreeText = Field(min_length=1, max_length=64, description="MRN (Patient ID)")
    issuer: IssuerIn | None = None
    name: NameIn | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None

    def to_patient(self) -> Patient:
        return Patient(
            patient_id=self.id,
            issuer=self.issuer.to_issuer() if self.issuer else None,
            name=self.name.to_name() if self.name else None,
            birth_date=self.birth_date,
            sex=self.sex,
        )


class EncounterIn(BaseModel):
    """The encounter (visit) of a context (IHE EBIW: Admission ID and issuer)."""

    model_config = ConfigDict(extra="forbid")
    admission_id: FreeText | None = Field(default=None, max_length=64)
    issuer: IssuerIn | None = None
    description: FreeText | None = Field(default=None, max_length=64)
    started_at: dt.datetime | None = None
    accession_number: FreeText | None = Field(default=None, max_length=16)
    unit: FreeText | None = Field(
        default=None, max_length=64, description="The ward or clinic (reports group by it)"
    )

    def to_encounter(self) -> Encounter:
        return Encounter(
            admission_id=self.admission_id,
            issuer=self.issuer.to_issuer() if self.issuer else None,
            description=self.description,
            started_at=self.started_at,
            accession_number=self.accession_number,
        )


class ContextIn(BaseModel):
    """A context to create: who the photos are of, and in which encounter."""

    model_config = ConfigDict(extra="forbid")
    patient: PatientIn
    encounter: EncounterIn | None = None


def unit_of(encounter_json: str | None) -> str | None:
    """The encounter's ward/clinic, or None when it names none (or cannot be read)."""
    if not encounter_json:
        return None
    try:
        unit = EncounterIn.model_validate_json(encounter_json).unit
    except ValidationError:  # written by an older/newer release: read the one field we need
        try:
            raw: Any = json.loads(encounter_json)
        except ValueError:
            return None
        unit = raw.get("unit") if isinstance(raw, dict) else None
        if not isinstance(unit, str):
            return None
    unit = " ".join(unit.split()) if unit else ""
    return unit or None
