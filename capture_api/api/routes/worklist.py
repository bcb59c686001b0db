"""The encounter worklist (IHE EBIW over UPS-RS, DICOM PS3.18 chapter 11 / PS3.4 Annex CC).

``GET /worklist`` lists today's SCHEDULED workitems of this station; ``POST /worklist/{uid}/
claim`` takes one (Change State to IN PROGRESS) and opens a capture context for its patient
and encounter; ``POST /worklist/contexts/{id}/complete`` records the archived photos on the
workitem (Update: Output Information Sequence) and sets it COMPLETED once every photo is
``verified``; ``.../cancel`` gives a claimed item back (CANCELED with a CID 9300 reason and
the final state attributes PS3.4 Table CC.2.5-3 asks for). The list is answered from a copy
the worklist's UPS events keep fresh where it offers them (``context.ups_events``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Request, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.audit_middleware import shown_patients
from capture_api.api.deps import ServiceDep, get_runtime
from capture_api.api.errors import Declared, raises, responses
from capture_api.capture.schemas import EncounterIn, PatientIn
from capture_api.context.worklist import (
    WorkitemCanceled,
    WorkitemCompleted,
    WorkitemNotFound,
    WorkitemTaken,
    WorklistClient,
    WorklistError,
    WorklistRefused,
    WorklistUnavailable,
)
from capture_api.encounters.worklist_completion import CompletionRefused
from capture_api.exceptions import Conflict, NotSignedIn, PatientMismatch
from capture_api.store import contexts

router = APIRouter(prefix="/worklist", tags=["worklist"])

NOT_CONFIGURED = (
    "no worklist is configured for this service: ask an administrator to set "
    "CAPTURE_WORKLIST_URL (and CAPTURE_WORKLIST_STATION_CODE)"
)
NOT_FROM_WORKLIST = "this patient context was not opened from the worklist"
RELEASED = "this encounter's worklist item was given back already: it is no longer ours"
#: What every worklist call can answer (``_worklist``).
_WORKLIST: tuple[Declared, ...] = (
    (WorklistError, "The worklist refused the request (its answer in detail)"),
    (WorklistUnavailable, "No worklist configured, or it cannot be reached"),
)


class WorklistItemOut(BaseModel):
    """One encounter on today's worklist, as the phone lists it."""

    uid: str
    name: str
    family_name: str | None
    given_name: str | None
    birth_date: dt.date | None
    sex: str | None
    mrn: str | None
    admission_id: str | None
    scheduled_at: dt.datetime | None
    description: str | None
    priority: str | None
    station: str | None


class ClaimOut(BaseModel):
    """The capture context opened for a claimed workitem: upload photos to ``context_id``."""

    context_id: str
    study_uid: str
    workitem_uid: str
    patient: PatientIn
    encounter: EncounterIn | None


class CompleteOut(BaseModel):
    """The workitem is COMPLETED with these instances in its Output Information Sequence."""

    context_id: str
    workitem_uid: str
    state: str
    sop_instance_uids: list[str]
    pending: int = 0


@contextmanager
@raises(WorklistError, WorklistUnavailable)
def _worklist(request: Request) -> Iterator[WorklistClient]:
    """A client for the configured worklist (its errors are answered by ``api.errors``)."""
    settings = get_runtime(request).settings
    if not settings.worklist_url:
        raise WorklistUnavailable(NOT_CONFIGURED)
    client = WorklistClient(
        settings.worklist_url,
        station_code=settings.worklist_station_code,
        label=settings.worklist_label,
        aet=settings.worklist_aet,
    )
    try:
        yield client
    finally:
        client.close()


@router.get("", response_model=list[WorklistItemOut], responses=responses(NotSignedIn, *_WORKLIST))
def list_worklist(request: Request, access: AccessDep) -> list[WorklistItemOut]:
    """Today's encounters scheduled for this station (SCHEDULED workitems), earliest first.

    Every patient listed is named in the audit trail (one row each: who saw them listed)."""
    if access.ehr_mode:
        access.require_session()
    with _worklist(request) as worklist:
        items = get_runtime(request).worklist.today(worklist.today)
    shown_patients(
        request,
        [(w.patient_id, w.patient_issuer_uid or w.patient_issuer) for w in items if w.patient_id],
    )
    return [
        WorklistItemOut(
            uid=w.uid,
            name=w.display_name,
            family_name=w.family_name,
            given_name=w.given_name,
            birth_date=w.birth_date,
            sex=w.sex.value if w.sex else None,
            mrn=w.patient_id,
            admission_id=w.admission_id,
            scheduled_at=w.scheduled_start,
            description=w.description,
            priority=w.priority,
            station=w.station_code,
        )
        for w in items
    ]


@router.post(
    "/{uid}/claim",
    status_code=status.HTTP_201_CREATED,
    response_model=ClaimOut,
    responses=responses(
        NotSignedIn,
        (PatientMismatch, "This session was launched for another patient"),
        (WorkitemNotFound, "No such workitem on the worklist"),
        (WorkitemTaken, "Another device has claimed it"),
        (WorkitemCompleted, "It is completed already"),
        (WorkitemCanceled, "It was canceled on the worklist"),
        *_WORKLIST,
    ),
)
def claim_workitem(
    uid: Annotated[str, PathParam(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)],  # a DICOM UID
    request: Request,
    service: ServiceDep,
    access: AccessDep,
) -> ClaimOut:
    """Take the encounter (IN PROGRESS) and open a capture context for it.

    409 when another device is already photographing this encounter, or it is completed or
    canceled (``code`` says which); 403 when this session was launched for another patient.
    """
    signed_in = access.require_session() if access.ehr_mode else None
    with _worklist(request) as worklist:
        item = worklist.get(uid)
        context = item.to_context()
        if signed_in is not None:
            access.contexts.check_same_patient(signed_in, context.patient, action="worklist-claim")
        transaction_uid = worklist.claim(uid, item)
        get_runtime(request).worklist.changed()
        try:
            record = service.create_context(context, source="worklist")
            contexts.link_workitem(service.engine, record.id, uid, transaction_uid)
            if signed_in is not None:
                access.contexts.adopt(signed_in, record.id)
        except Exception:
            worklist.release(uid, transaction_uid)  # do not leave it IN PROGRESS for nobody
            raise
    return ClaimOut(
        context_id=record.id,
        study_uid=record.study_uid,
        workitem_uid=uid,
        patient=context.patient,
        encounter=context.encounter,
    )


def _claimed(access: AccessDep, context_id: str) -> tuple[str, str]:
    record = access.context(context_id, "worklist")
    if not record.workitem_uid:
        raise Conflict(NOT_FROM_WORKLIST)
    if not record.workitem_transaction_uid:
        raise Conflict(RELEASED)
    return record.workitem_uid, record.workitem_transaction_uid


@router.post(
    "/contexts/{context_id}/complete",
    response_model=CompleteOut,
    responses={
        202: {"description": "Will complete once the remaining photos are in the archive"},
        **responses(
            *CONTEXT_ERRORS,
            (Conflict, "Not a worklist context"),
            (CompletionRefused, "No photos, or failed photos"),
            (WorkitemCanceled, "The item was canceled on the worklist"),
            (WorklistRefused, "The worklist server refused the completion (its reason)"),
            *_WORKLIST,
        ),
    },
)
def complete_context(
    context_id: str, request: Request, response: Response, access: AccessDep
) -> CompleteOut:
    """Finish the encounter: the workitem becomes COMPLETED, listing its archived photos.

    At once (200) when every photo is verified; otherwise 202, and it completes by itself as
    soon as the remaining photos are verified in the archive. 409 when a photo failed.
    """
    uid, _ = _claimed(access, context_id)
    completion = get_runtime(request).worklist_completion
    with _worklist(request):
        result = completion.request(access.context(context_id, "worklist"))
    if not result.completed:
        response.status_code = status.HTTP_202_ACCEPTED
    return CompleteOut(
        context_id=context_id,
        workitem_uid=uid,
        state="COMPLETED" if result.completed else "COMPLETION REQUESTED",
        sop_instance_uids=result.sop_instance_uids,
        pending=result.pending,
    )


class ReleaseIn(BaseModel):
    """Why the encounter is given back (its CID 9300 reason on the workitem)."""

    reason: Literal["released", "wrong-patient"] = "released"


@router.post(
    "/contexts/{context_id}/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(
        *CONTEXT_ERRORS,
        (Conflict, "Not a worklist context, or given back already"),
        (WorkitemCompleted, "It is completed already"),
        *_WORKLIST,
    ),
)
def cancel_context(
    context_id: str,
    request: Request,
    access: AccessDep,
    body: Annotated[ReleaseIn | None, Body()] = None,
) -> None:
    """Give the encounter's workitem back (CANCELED), e.g. when the wrong patient was opened.

    The workitem gets the CANCELED final state (PS3.4 Table CC.2.5-3): the cancellation time,
    a CID 9300 reason ("rescheduling recommended", or "incorrect worklist entry selected"
    for ``wrong-patient``) and the photos already archived.
    """
    _claimed(access, context_id)
    runtime = get_runtime(request)
    with _worklist(request):
        runtime.worklist_completion.release(
            access.context(context_id, "worklist"),
            wrong_patient=body is not None and body.reason == "wrong-patient",
        )
    runtime.worklist.changed()
