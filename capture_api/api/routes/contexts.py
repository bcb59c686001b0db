"""Patient/encounter contexts: what every capture is tied to.

In the product a context comes from the EHR (SMART launch), the worklist or a wristband scan;
this endpoint is the integration entry point for systems that already know the patient.
"""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.deps import ServiceDep
from capture_api.api.errors import responses
from capture_api.capture import ContextIn, EncounterIn, PatientIn
from capture_api.exceptions import InvalidMetadata, PatientMismatch
from capture_api.store.records import ContextRecord

router = APIRouter(prefix="/contexts", tags=["contexts"])


class ContextOut(BaseModel):
    """A stored context: use ``context_id`` when uploading captures."""

    context_id: str
    study_uid: str
    source: str
    patient: PatientIn
    encounter: EncounterIn | None


def context_out(record: ContextRecord) -> ContextOut:
    return ContextOut(
        context_id=record.id,
        study_uid=record.study_uid,
        source=record.source,
        patient=PatientIn.model_validate_json(record.patient_json),
        encounter=(
            EncounterIn.model_validate_json(record.encounter_json)
            if record.encounter_json
            else None
        ),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ContextOut,
    responses=responses(
        (PatientMismatch, "EHRs are registered: contexts come only from the EHR"),
        (InvalidMetadata, "A patient or encounter value DICOM cannot carry (reason in detail)"),
    ),
)
def create_context(body: ContextIn, service: ServiceDep, access: AccessDep) -> ContextOut:
    """Open a capture context for a patient known to a trusted caller (integration mode only).

    When EHRs are registered, contexts come only from a launch, a scan or the worklist (403).
    """
    access.check_can_create_context()
    body.patient.to_patient()  # DICOM's rules (LO, PN): a 422 now, not on every photo later
    if body.encounter:
        body.encounter.to_encounter()
    return context_out(service.create_context(body))


@router.get("/{context_id}", response_model=ContextOut, responses=responses(*CONTEXT_ERRORS))
def get_context(context_id: str, access: AccessDep) -> ContextOut:
    """The patient banner data of a context."""
    return context_out(access.context(context_id, "read"))
