"""Recorded consent to photography: what the clinician enters, how it is kept, what it gates.

A consent belongs to one capture context (the encounter's photo session). Recording is
append-only: recording again (a correction, a guardian arriving) adds a newer consent, and the
latest is the one in force; a capture stores the id of the consent in force when it was taken
(``CaptureRecord.consent_id``), so later corrections never rewrite what a photo was taken under.
The scanned form is a photo of the same context with the view ``consent form``, taken before
the consent is recorded (the consent policy never holds it back) and then linked both ways.
"""

from __future__ import annotations

import json
import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capture_api.audit.trail import Outcome, Purpose, record
from capture_api.capture.consent_policy import ConsentPolicy, is_consent_form
from capture_api.capture.schemas import unit_of
from capture_api.capture.sensitivity import SensitivityLevel
from capture_api.capture.text import FreeText
from capture_api.exceptions import ConsentRequired, InvalidMetadata
from capture_api.privacy.actor import Actor
from capture_api.privacy.consent_fhir import ConsentFacts, build_consent
from capture_api.store import consents as consent_rows
from capture_api.store.db import Database
from capture_api.store.records import (
    CaptureRecord,
    CaptureStatus,
    ConsentRecord,
    ContextRecord,
    utcnow,
)

ACTION = "consent"


class Consenter(StrEnum):
    """Who gave consent."""

    PATIENT = "patient"
    GUARDIAN = "guardian"  # parent or legal guardian (a minor, a patient who cannot consent)
    OTHER = "other"  # another authorised representative


class ConsentMethod(StrEnum):
    """How consent was given."""

    VERBAL = "verbal"
    WRITTEN = "written"


class ConsentIn(BaseModel):
    """The consent as the clinician records it (``POST /api/v1/contexts/{id}/consent``)."""

    model_config = ConfigDict(extra="forbid")
    consenter: Consenter
    consenter_name: FreeText | None = Field(
        default=None, max_length=128, description="Required when the consenter is not the patient"
    )
    method: ConsentMethod
    form_capture_id: FreeText | None = Field(
        default=None,
        max_length=128,
        description="Capture id of the photo of the signed form (view 'consent form')",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ConsentIn:
        self.consenter_name = " ".join((self.consenter_name or "").split()) or None
        if self.consenter is not Consenter.PATIENT and self.consenter_name is None:
            raise ValueError(f"give the {self.consenter.value}'s name (consenter_name)")
        if self.form_capture_id and self.method is not ConsentMethod.WRITTEN:
            raise ValueError("a scanned form (form_capture_id) goes with method 'written'")
        return self


# --- recording --------------------------------------------------------------------------------


def record_consent(
    engine: Database,
    context: ContextRecord,
    body: ConsentIn,
    *,
    actor: Actor,
    patient_reference: dict[str, object],
    patient_mrn: str,
) -> ConsentRecord:
    """Store a new consent (with its FHIR Consent) for the context; audited."""
    form = _form_capture(engine, context, body.form_capture_id)
    consent_id = uuid.uuid4().hex
    now = utcnow()
    resource = build_consent(
        ConsentFacts(
            consent_id=consent_id,
            patient=dict(patient_reference),
            consenter=body.consenter.value,
            consenter_name=body.consenter_name,
            method=body.method.value,
            recorded_at=now,
            form=form,
        )
    )
    row = ConsentRecord(
        id=consent_id,
        context_id=context.id,
        consenter=body.consenter.value,
        consenter_name=body.consenter_name,
        method=body.method.value,
        form_capture_id=form.id if form else None,
        recorded_by=actor.fhir_user,
        recorded_at=now,
        resource_json=_json(resource),
    )
    consent_rows.add(engine, row)  # and the form's photo, taken before any consent, under it
    detail = f"consent {consent_id}: {body.method.value}, by the {body.consenter.value}"
    record(
        engine,
        ACTION,
        Outcome.SUCCESS,
        actor=actor.fhir_user,
        session_id=actor.session_id,
        patient=patient_mrn,
        detail=detail + (f", form {form.id}" if form else ""),
        purpose=Purpose.PATRQT,
        context_id=context.id,
    )
    return row


def _form_capture(
    engine: Database, context: ContextRecord, capture_id: str | None
) -> CaptureRecord | None:
    """The scanned form's capture: of this context, view ``consent form``, not failed."""
    if capture_id is None:
        return None
    form = consent_rows.capture(engine, capture_id)
    if form is None or form.context_id != context.id:
        raise InvalidMetadata(
            f"no photo {capture_id!r} in this patient's session: take the form's photo first"
        )
    if not is_consent_form(form.view):
        raise InvalidMetadata(
            f"photo {capture_id!r} is not a consent form: take the form's photo with the view "
            "'consent form'"
        )
    if form.status == CaptureStatus.FAILED or form.sop_instance_uid is None:
        raise InvalidMetadata(f"the photo of the form was refused ({form.reason}): take it again")
    return form


# --- reading ----------------------------------------------------------------------------------


def latest_consent(engine: Database, context_id: str) -> ConsentRecord | None:
    """The consent in force for a context: the latest recorded, or None."""
    return consent_rows.latest(engine, context_id)


def captures_under(engine: Database, consent_id: str) -> list[str]:
    """The ids of the captures that reference this consent, oldest first."""
    return consent_rows.capture_ids_under(engine, consent_id)


# --- the gate on new photos -------------------------------------------------------------------


def consent_for_capture(
    engine: Database,
    policy: ConsentPolicy,
    context: ContextRecord,
    *,
    level: str,
    body_site: str | None,
    view: str | None,
) -> str | None:
    """The consent a new photo will reference; ``ConsentRequired`` (428) if it needs one first."""
    latest = latest_consent(engine, context.id)
    if latest is not None:
        return latest.id
    why = policy.reason(
        unit=unit_of(context.encounter_json),
        level=SensitivityLevel(level),
        body_site=body_site,
        view=view,
    )
    if why is not None:
        raise ConsentRequired(
            f"{why}: record the patient's consent first "
            f"(POST /api/v1/contexts/{context.id}/consent), then send the photo again"
        )
    return None


def _json(resource: dict[str, object]) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
