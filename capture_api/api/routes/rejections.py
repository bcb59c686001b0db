"""Take a photo back (IHE IOCM), and re-file a wrong patient's photo for the right one.

``POST /captures/{id}/rejection`` ``{"reason": "wrong-patient" | "quality" | "worklist-entry",
"comment": ...}`` rejects the photo once (201; a repeat answers 200 with the first rejection)
and sends the archive a KOS rejection note through the outbox. ``GET`` reads it back (with
where its KOS stands). ``POST /captures/{id}/rejection/refile`` ``{"context_id": ...}``
issues a wrong patient's photo again for the patient of a context this session opened (202,
the new capture). The clinician may do this for photos of the contexts their session opened;
an ``imaging-admin`` for any photo. Rules and audit: ``capture_api.correct``.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from capture_api.api.access import AccessDep
from capture_api.api.deps import CorrectionsDep
from capture_api.api.errors import responses
from capture_api.api.routes.captures import CaptureOut, capture_out
from capture_api.capture import MultilineText
from capture_api.correct import NotArchived, RefileRefused, Rejected, RejectReason
from capture_api.exceptions import (
    ArchiveError,
    CaptureConflict,
    ConsentRequired,
    InputRejected,
    NotFound,
    NotSignedIn,
    PatientMismatch,
    UnknownContext,
)
from capture_api.store.records import CaptureStatus

router = APIRouter(prefix="/captures/{capture_id}/rejection", tags=["rejections"])

_ACCESS = (
    NotSignedIn,
    (PatientMismatch, "A photo of another session's patient (audited)"),
    (NotFound, "No such photo"),
    (UnknownContext, "The context is gone"),
)


class RejectionIn(BaseModel):
    """Why the photo is taken back."""

    reason: RejectReason = Field(
        description="wrong-patient (DCM 113037), quality (113001) or worklist-entry (113038)"
    )
    comment: MultilineText | None = Field(
        default=None, max_length=1024, description="The person's words, kept with the rejection"
    )


class RefileIn(BaseModel):
    """The right patient: a context this session opened (launch, wristband, worklist)."""

    context_id: str = Field(min_length=1, max_length=64)


class RejectionOut(BaseModel):
    """A rejected photo, its KOS rejection note and where the photo was re-filed."""

    capture_id: str
    sop_instance_uid: str
    reason: RejectReason
    reason_code: str = Field(description="The KOS Document Title's DCM code (CID 7011)")
    rejected_at: dt.datetime
    kos_sop_instance_uid: str
    kos_status: CaptureStatus | None = Field(description="Where the KOS is on its way")
    refiled_capture_id: str | None


def _out(rejected: Rejected) -> RejectionOut:
    row = rejected.rejection
    return RejectionOut(
        capture_id=row.capture_id,
        sop_instance_uid=row.sop_instance_uid,
        reason=RejectReason.from_code(row.reason),
        reason_code=row.reason,
        rejected_at=row.rejected_at,
        kos_sop_instance_uid=row.kos_sop_instance_uid,
        kos_status=CaptureStatus(rejected.kos.status),
        refiled_capture_id=row.refiled_capture_id,
    )


@router.post(
    "",
    status_code=201,
    response_model=RejectionOut,
    responses=responses(
        *_ACCESS,
        (NotArchived, "The photo is not in the archive (yet)"),
        (ArchiveError, "The archive could not give the photo's attributes"),
    ),
)
def reject_capture(
    capture_id: str,
    body: RejectionIn,
    response: Response,
    access: AccessDep,
    corrections: CorrectionsDep,
) -> RejectionOut:
    """Reject the photo everywhere it went (201); rejecting it again answers 200, unchanged."""
    access.correctable(capture_id, "reject")
    photo = corrections.photo(capture_id)
    rejected = corrections.reject(photo, body.reason, access.actor, body.comment)
    if not rejected.created:
        response.status_code = 200
    return _out(rejected)


@router.get("", response_model=RejectionOut, responses=responses(*_ACCESS))
def get_rejection(capture_id: str, access: AccessDep, corrections: CorrectionsDep) -> RejectionOut:
    """The photo's rejection (404 when it is not rejected)."""
    access.correctable(capture_id, "reject")
    photo = corrections.photo(capture_id)
    return _out(corrections.rejected(photo))


@router.post(
    "/refile",
    status_code=202,
    response_model=CaptureOut,
    responses=responses(
        *_ACCESS,
        (RefileRefused, "Not rejected for another patient, the same patient, or re-filed"),
        (CaptureConflict, "Re-filed for another patient at the same moment"),
        (ConsentRequired, "The right patient's consent must be recorded first"),
        (InputRejected, "The archived photo could not be read"),
        (ArchiveError, "The archive could not give the photo"),
    ),
)
def refile_capture(
    capture_id: str,
    body: RefileIn,
    request: Request,
    access: AccessDep,
    corrections: CorrectionsDep,
) -> CaptureOut:
    """Issue the rejected photo again for the patient of ``context_id`` (lossless)."""
    access.correctable(capture_id, "refile")
    target = access.context(body.context_id, "capture")
    photo = corrections.photo(capture_id)
    return capture_out(corrections.refile(photo, target, access.actor), request)
