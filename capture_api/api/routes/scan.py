"""Wristband / QR scan or a typed MRN: find the patient in the EHR, show the banner to confirm.

The scanned or typed value is only an identifier; every demographic comes from the EHR's FHIR
Patient. In a session launched for a patient, another patient's wristband is refused (403).
"""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from capture_api.api.access import AccessDep
from capture_api.api.errors import responses
from capture_api.api.routes.contexts import ContextOut, context_out
from capture_api.capture import FreeText
from capture_api.context.fhir import FhirError, FhirNotFound, FhirUnavailable
from capture_api.exceptions import InvalidMetadata, NotSignedIn, PatientMismatch

router = APIRouter(prefix="/scan", tags=["contexts"])


class ScanIn(BaseModel):
    """What the scanner read: ``system|value`` (FHIR token) or just the MRN."""

    model_config = ConfigDict(extra="forbid")
    identifier: FreeText = Field(min_length=1, max_length=256)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ContextOut,
    responses=responses(
        (NotSignedIn, "Not signed in"),
        (PatientMismatch, "Another patient than the one opened from the EHR"),
        (FhirNotFound, "No such patient in the EHR"),
        (InvalidMetadata, "The code holds no patient identifier, or several patients match"),
        (FhirError, "The EHR refused the search (its answer in detail)"),
        (FhirUnavailable, "The EHR cannot be reached now"),
    ),
)
def scan_patient(body: ScanIn, access: AccessDep) -> ContextOut:
    """Open a capture context for the patient with this identifier (confirm the banner)."""
    return context_out(access.contexts.scan(access.require_session(), body.identifier))
