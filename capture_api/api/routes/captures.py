"""Upload photos and follow them to the archive (received -> encoded -> stored -> verified)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.capture_events import HEADERS as SSE_HEADERS
from capture_api.api.capture_events import MEDIA_TYPE, RECENT_SECONDS
from capture_api.api.capture_events import capture_events as capture_stream
from capture_api.api.deps import ServiceDep
from capture_api.api.errors import responses
from capture_api.api.upload_form import PhotoForm, read_photo_form, request_body_schema
from capture_api.capture import FreeText
from capture_api.capture.lesions import Dermoscopy
from capture_api.exceptions import (
    CaptureConflict,
    ConsentRequired,
    ImageTooLarge,
    InputRejected,
    NotFound,
    NotSignedIn,
    UnsupportedFormat,
)
from capture_api.intake import CaptureRequest, refusal
from capture_api.store.records import CaptureRecord, CaptureStatus, utcnow
from capture_api.store.spool import Spool, incoming
from capture_api.store.wakeup import wakeup_for

router = APIRouter(prefix="/captures", tags=["captures"])

_ERRORS = responses(
    *CONTEXT_ERRORS,
    (CaptureConflict, "Capture id already used for a different photo or in another context"),
    (ImageTooLarge, "Photo larger than the configured limit"),
    (UnsupportedFormat, "Not a JPEG/HEIC photo (format named in detail)"),
    (InputRejected, "Damaged photo or invalid metadata (reason in detail)"),
    (ConsentRequired, "The deployment wants the patient's consent recorded first"),
)


class CaptureOut(BaseModel):
    """One capture's state, as the phone shows it until the archive has the photo."""

    capture_id: str
    context_id: str
    status: CaptureStatus
    reason: str | None
    retrying: str | None = Field(
        description="Why the photo is not in the archive yet, while capture keeps trying"
    )
    retry_at: dt.datetime | None = Field(
        description="When capture tries again (with ``retrying``), else null"
    )
    warnings: list[str]
    body_site: str | None
    laterality: str | None
    sensitivity: str
    lesion: str | None = Field(description="The lesion's Tracking UID, for a photo of a lesion")
    dermoscopic: bool = Field(description="Taken through a dermatoscope (Dermoscopic image)")
    instance_number: int
    sop_instance_uid: str | None
    study_uid: str | None
    series_uid: str | None
    created_at: dt.datetime
    stored_at: dt.datetime | None
    verified_at: dt.datetime | None
    status_url: str


def capture_out(
    record: CaptureRecord, request: Request, status_path: Callable[[str], str] | None = None
) -> CaptureOut:
    """What the API shows of a capture (``status_path``: ``status_paths(request)``, for lists)."""
    status_url = (status_path or status_paths(request))(record.id)
    retrying = record.last_error if record.status != CaptureStatus.FAILED else None
    return CaptureOut(
        capture_id=record.id,
        context_id=record.context_id,
        status=CaptureStatus(record.status),
        reason=record.reason,
        retrying=retrying,
        retry_at=record.next_attempt_at if retrying else None,
        warnings=json.loads(record.warnings_json),
        body_site=record.body_site_code,
        laterality=record.laterality,
        sensitivity=record.sensitivity_level,
        lesion=record.lesion_uid,
        dermoscopic=record.dermoscopy_json is not None,
        instance_number=record.instance_number,
        sop_instance_uid=record.sop_instance_uid,
        study_uid=record.study_uid,
        series_uid=record.series_uid,
        created_at=record.created_at,
        stored_at=record.stored_at,
        verified_at=record.verified_at,
        status_url=status_url,
    )


def status_paths(request: Request) -> Callable[[str], str]:
    """``GET /captures/{capture_id}``'s path for any capture id, the route resolved once:
    ``url_for`` walks every route (about 0.1 ms a call), and a context's list or event stream
    shows every capture of the context each time (issue 13)."""
    template = str(request.url_for("get_capture", capture_id=_SENTINEL).path)
    return lambda capture_id: template.replace(_SENTINEL, capture_id)


_SENTINEL = "capture-id-placeholder"


@router.post(
    "",
    status_code=202,
    response_model=CaptureOut,
    responses=_ERRORS,
    openapi_extra={"requestBody": request_body_schema()},
)
async def upload_capture(
    request: Request, response: Response, service: ServiceDep, access: AccessDep
) -> CaptureOut:
    """Store one photo durably, then answer 202 with its status URL.

    Re-sending the same ``capture_id`` with the same photo returns the same capture (no
    second object); with a different photo, or from another context, it is refused (409). A
    photo the encoder refuses is answered 413/415/422 with the reason, and recorded as failed.
    ``lesion`` names the patient's lesion the photo shows; ``dermoscopic`` makes it a
    Dermoscopic Photography Image (with the dermatoscope's ``polarization``, ``contact`` and
    ``immersion``). The photo goes from the request body straight into the spool
    (``api.upload_form``); the rest runs in a worker thread.
    """
    if access.ehr_mode:
        access.require_session()  # before a byte is spooled
    form, upload = await read_photo_form(
        request, lambda: incoming(service.spool, service.options.limits.max_bytes)
    )

    def accept() -> CaptureRecord:  # one thread hop for the access check and the capture
        try:
            context = access.context(form.context_id, "capture")
        except BaseException:
            Spool.delete(upload.path)
            raise
        return service.accept_spooled(_capture_request(form), upload, context)[0]

    record = await run_in_threadpool(accept)
    refused = refusal(record)
    if refused is not None:
        raise refused
    out = capture_out(record, request)
    response.headers["Location"] = out.status_url
    return out


def _capture_request(form: PhotoForm) -> CaptureRequest:
    scope = (
        Dermoscopy(polarization=form.polarization, contact=form.contact, immersion=form.immersion)
        if form.dermoscopic
        else None
    )
    return CaptureRequest(
        capture_id=form.capture_id,
        context_id=form.context_id,
        body_site=form.body_site,
        laterality=form.laterality.value if form.laterality else None,
        sensitivity=form.sensitivity.value,
        categories=[c.value for c in form.categories or []],
        note=form.note,
        view=form.view,
        operator=form.operator,
        device=form.device,
        captured_at=form.captured_at,
        lesion_uid=form.lesion,
        dermoscopy=scope,
    )


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        **responses(*CONTEXT_ERRORS),
        200: {"content": {MEDIA_TYPE: {}}, "description": "Server-Sent Events"},
    },
)
async def capture_events(
    request: Request,
    service: ServiceDep,
    access: AccessDep,
    context_id: Annotated[FreeText, Query(min_length=1, max_length=64)],
) -> StreamingResponse:
    """The context's captures as Server-Sent Events: a snapshot, then every change.

    Each ``capture`` event carries what ``GET /captures/{capture_id}`` answers. The stream
    ends after a few minutes and the browser reconnects (a fresh snapshot); a comment every
    15 s keeps proxies from closing it. What the phone uses instead of polling.
    """
    await run_in_threadpool(access.context, context_id, "read")

    path = status_paths(request)  # once for the stream, not at every look
    seen: dict[str, dt.datetime] = {}  # capture id -> the updated_at this stream last read

    def load(everything: bool) -> list[dict[str, Any]]:
        if everything:
            records = service.for_context(context_id)
        else:
            since = utcnow() - dt.timedelta(seconds=RECENT_SECONDS)
            records = service.changed_in_context(context_id, since, seen)
        seen.update((r.id, r.updated_at) for r in records)
        return [capture_out(r, request, path).model_dump(mode="json") for r in records]

    stream = capture_stream(load, wakeup_for(service.engine))
    return StreamingResponse(stream, media_type=MEDIA_TYPE, headers=SSE_HEADERS)


@router.get(
    "/{capture_id}",
    response_model=CaptureOut,
    responses=responses(NotSignedIn, (NotFound, "Unknown capture, or not this session's")),
)
def get_capture(capture_id: str, request: Request, access: AccessDep) -> CaptureOut:
    """Where the photo is now, until ``verified`` (or ``failed`` with a reason).

    The phone follows ``/captures/events`` instead where it can, and polls this otherwise.
    """
    return capture_out(access.capture(capture_id, "read"), request)


@router.get("", response_model=list[CaptureOut], responses=responses(*CONTEXT_ERRORS))
def list_captures(
    request: Request,
    service: ServiceDep,
    access: AccessDep,
    context_id: Annotated[FreeText, Query(min_length=1, max_length=64)],
) -> list[CaptureOut]:
    """All captures of one encounter context, oldest first."""
    access.context(context_id, "read")
    path = status_paths(request)
    return [capture_out(r, request, path) for r in service.for_context(context_id)]
