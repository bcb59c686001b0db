"""The encounter worklist (IHE EBIW over UPS-RS, DICOM PS3.18 chapter 11 / PS3.4 Annex CC).

``GET /worklist`` lists today's SCHEDULED workitems of this station; ``POST /worklist/{uid}/
claim`` takes one (Change State to IN PROGRESS) and opens a capture context for its patient
and encounter; ``POST /worklist/contexts/{id}/complete`` records the archived photos on the
workitem (Update: Output Information Sequence) and sets it COMPLETED once every photo is
``verified``; ``.../cancel`` gives a claimed item up (CANCELED).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel

from capture_api.api.access import AccessDep
from capture_api.api.deps import ServiceDep, get_runtime
from capture_api.capture.schemas import EncounterIn, PatientIn
from capture_api.context.worklist import (
    WorkitemNotFound,
    WorkitemTaken,
    WorklistClient,
    WorklistError,
    WorklistUnavailable,
)
from capture_api.encounters.worklist_completion import CompletionRefused
from capture_api.store import contexts

router = APIRouter(prefix="/worklist", tags=["worklist"])

_ERRORS: dict[int | str, dict[str, str]] = {
    502: {"description": "The worklist refused the request (its answer in detail)"},
    503: {"description": "No worklist configured, or it cannot be reached"},
}


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
def _worklist(request: Request) -> Iterator[WorklistClient]:
    """A client for the configured worklist, with its errors turned into HTTP answers."""
    settings = get_runtime(request).settings
    if not settings.worklist_url:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="no worklist is configured for this service: ask an administrator to set "
            "CAPTURE_WORKLIST_URL (and CAPTURE_WORKLIST_STATION_CODE)",
        )
    client = WorklistClient(
        settings.worklist_url,
        station_code=settings.worklist_station_code,
        label=settings.worklist_label,
        aet=settings.worklist_aet,
    )
    try:
        yield client
    except WorkitemTaken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except WorkitemNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except WorklistUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from exc
    except WorklistError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from exc
    finally:
        client.close()


@router.get("", response_model=list[WorklistItemOut], responses=_ERRORS)
def list_worklist(request: Request, access: AccessDep) -> list[WorklistItemOut]:
    """Today's encounters scheduled for this station (SCHEDULED workitems), earliest first."""
    if access.ehr_mode:
        access.require_session()
    with _worklist(request) as worklist:
        items = worklist.today()
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
    responses={409: {"description": "Another device has claimed it"}, **_ERRORS},
)
def claim_workitem(
    uid: Annotated[str, PathParam(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)],  # a DICOM UID
    request: Request,
    service: ServiceDep,
    access: AccessDep,
) -> ClaimOut:
    """Take the encounter (IN PROGRESS) and open a capture context for it.

    409 when another device is already photographing this encounter; 403 when this session was
    launched for another patient.
    """
    signed_in = access.require_session() if access.ehr_mode else None
    with _worklist(request) as worklist:
        context = worklist.get(uid).to_context()
        if signed_in is not None:
            access.contexts.check_same_patient(signed_in, context.patient, action="worklist-claim")
        transaction_uid = worklist.claim(uid)
        try:
            record = service.create_context(context, source="worklist")
            contexts.link_workitem(service.engine, record.id, uid, transaction_uid)
            if signed_in is not None:
                access.contexts.adopt(signed_in, record.id)
        except Exception:
            worklist.cancel(uid, transaction_uid)  # do not leave it IN PROGRESS for nobody
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
    if not record.workitem_uid or not record.workitem_transaction_uid:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="this patient context was not opened from the worklist",
        )
    return record.workitem_uid, record.workitem_transaction_uid


@router.post(
    "/contexts/{context_id}/complete",
    response_model=CompleteOut,
    responses={
        202: {"description": "Will complete once the remaining photos are in the archive"},
        404: {"description": "Unknown context"},
        409: {"description": "No photos, failed photos, or not a worklist context"},
        **_ERRORS,
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
    try:
        with _worklist(request):
            result = completion.request(access.context(context_id, "worklist"))
    except CompletionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    if not result.completed:
        response.status_code = status.HTTP_202_ACCEPTED
    return CompleteOut(
        context_id=context_id,
        workitem_uid=uid,
        state="COMPLETED" if result.completed else "COMPLETION REQUESTED",
        sop_instance_uids=result.sop_instance_uids,
        pending=result.pending,
    )


@router.post(
    "/contexts/{context_id}/cancel",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "Unknown context"}, **_ERRORS},
)
def cancel_context(context_id: str, request: Request, access: AccessDep) -> None:
    """Give the encounter's workitem up (CANCELED), e.g. when the wrong patient was opened."""
    uid, transaction_uid = _claimed(access, context_id)
    with _worklist(request) as worklist:
        worklist.cancel(uid, transaction_uid)
