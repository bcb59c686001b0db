"""Break-the-glass: one blurred photo, clear, for a sensitive viewer's typed reason.

``POST /contexts/{id}/timeline/{study}/{series}/{sop}/unblur`` and the same under ``priors``
(one handler: the photo is looked up the same way), body ``{"reason": "...", "size": 1024}``,
answer the clear JPEG, ``no-store``. A POST rather than a GET or a short-lived grant URL: the
reason travels in the body (never in a URL, a log line or the browser history), nothing can
prefetch it or replay it from a cache, and one request is exactly one audited view. Checks and
audit events are ``capture_api.privacy.break_glass``: 403 without the ``sensitive-viewer``
role, 422 without a reason, 404 for a photo this user is not shown; each of those, and every
success, is an ``unblur`` event in the audit trail.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.deps import ArchiveDep
from capture_api.api.errors import responses
from capture_api.api.no_store import NoStoreRoute
from capture_api.api.photos import JPEG, PHOTO_PATH
from capture_api.capture import MultilineText
from capture_api.deliver import InstanceRef
from capture_api.exceptions import ArchiveError, InputRejected, NotFound, RoleRequired
from capture_api.privacy import MIN_REASON_CHARS, AuditUnavailable, BreakGlass
from capture_api.review import PREVIEW_SIZE, unblurred

router = APIRouter(prefix="/contexts/{context_id}", tags=["unblur"], route_class=NoStoreRoute)
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {JPEG: {}}, "description": "The clear image (audited, no-store)"},
    **responses(
        *CONTEXT_ERRORS,
        (RoleRequired, "The user lacks the sensitive-viewer role (audited)"),
        (NotFound, "Not a photo this user is shown for this patient (audited)"),
        (InputRejected, "No usable reason (audited)"),
        (AuditUnavailable, "The view could not be audited, so the image is not sent"),
        ArchiveError,
    ),
}


class UnblurIn(BaseModel):
    """Why the clinician needs the clear image (kept in the audit trail)."""

    reason: MultilineText | None = Field(
        default=None,
        max_length=2000,
        description=f"Typed reason, at least {MIN_REASON_CHARS} characters after trimming",
    )
    size: int = Field(default=PREVIEW_SIZE, ge=32, le=PREVIEW_SIZE, description="Long side, px")


@router.post(
    f"/timeline{PHOTO_PATH}/unblur",
    name="timeline_unblur",
    response_class=Response,
    responses=_RESPONSES,
)
@router.post(
    f"/priors{PHOTO_PATH}/unblur",
    name="prior_unblur",
    response_class=Response,
    responses=_RESPONSES,
)
def unblur(
    context_id: str,
    study_uid: str,
    series_uid: str,
    sop_instance_uid: str,
    body: UnblurIn,
    access: AccessDep,
    archive: ArchiveDep,
) -> Response:
    """The clear JPEG of one of the patient's photos: role and reason checked, audited."""
    photos = access.photos(context_id, "unblur", archive)
    glass = BreakGlass(
        access.runtime.engine,
        access.actor,
        context_id=context_id,
        patient=photos.patient.id,
        photo=sop_instance_uid,
    )
    ref = InstanceRef(study_uid, series_uid, sop_instance_uid)
    return Response(unblurred(photos, glass, ref, body.reason, body.size), media_type=JPEG)
