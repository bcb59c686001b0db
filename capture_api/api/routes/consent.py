"""The patient's consent to photography for one context (``capture_api.privacy.consents``).

``POST /api/v1/contexts/{id}/consent`` records it (201, audited) as a FHIR R4 Consent;
``GET`` returns the one in force (the latest) with the captures taken under it, or 404. When
the deployment's policy (``CAPTURE_CONSENT_REQUIRED``) wants consent, ``POST /api/v1/captures``
answers 428 until it is recorded. Answers are ``no-store`` (they carry PHI).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.errors import responses
from capture_api.api.no_store import NoStoreRoute
from capture_api.config import Settings
from capture_api.context.smart import find_registration
from capture_api.exceptions import CaptureError, InvalidMetadata, NotFound
from capture_api.notify.resources import subject_reference
from capture_api.privacy.consents import (
    ConsentIn,
    captures_under,
    latest_consent,
    record_consent,
)
from capture_api.review.timeline import patient_of
from capture_api.store.records import ConsentRecord

router = APIRouter(
    prefix="/contexts/{context_id}/consent", tags=["consent"], route_class=NoStoreRoute
)
NONE_RECORDED = "no consent is recorded for this patient's session"


class ConsentOut(BaseModel):
    """A recorded consent, its FHIR R4 Consent, and the captures that reference it."""

    consent_id: str
    context_id: str
    consenter: str
    consenter_name: str | None
    method: str
    form_capture_id: str | None
    recorded_at: dt.datetime
    recorded_by: str | None
    captures: list[str]
    fhir: dict[str, Any]


def _out(row: ConsentRecord, captures: list[str]) -> ConsentOut:
    return ConsentOut(
        consent_id=row.id,
        context_id=row.context_id,
        consenter=row.consenter,
        consenter_name=row.consenter_name,
        method=row.method,
        form_capture_id=row.form_capture_id,
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
        captures=captures,
        fhir=json.loads(row.resource_json),
    )


def _mrn_system(settings: Settings, iss: str | None) -> str | None:
    """The registration's MRN system for a logical patient reference (None: no EHR)."""
    if iss is None:
        return None
    try:
        return find_registration(settings, iss).mrn_system
    except CaptureError:  # the EHR was unregistered since: reference by issuer instead
        return None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentOut,
    responses=responses(
        *CONTEXT_ERRORS, (InvalidMetadata, "The form's photo is not a consent form of this session")
    ),
)
def record(context_id: str, body: ConsentIn, access: AccessDep) -> ConsentOut:
    """Record the patient's (or guardian's) consent to photography; audited."""
    context = access.context(context_id, "consent")
    runtime = access.runtime
    row = record_consent(
        runtime.engine,
        context,
        body,
        actor=access.actor,
        patient_reference=subject_reference(context, _mrn_system(runtime.settings, context.iss)),
        patient_mrn=patient_of(context).id,
    )
    return _out(row, captures_under(runtime.engine, row.id))


@router.get(
    "", response_model=ConsentOut, responses=responses(*CONTEXT_ERRORS, (NotFound, NONE_RECORDED))
)
def get(context_id: str, access: AccessDep) -> ConsentOut:
    """The consent in force for this context (the latest recorded), or 404."""
    access.context(context_id, "read")
    row = latest_consent(access.runtime.engine, context_id)
    if row is None:
        raise NotFound(NONE_RECORDED)
    return _out(row, captures_under(access.runtime.engine, row.id))
