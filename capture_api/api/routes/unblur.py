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

import dataclasses

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from capture_api.api.access import AccessDep
from capture_api.api.deps import ArchiveDep
from capture_api.api.no_store import NoStoreRoute
from capture_api.deliver.archive import InstanceRef
from capture_api.privacy.break_glass import MIN_REASON_CHARS, BreakGlass
from capture_api.review.timeline import PREVIEW_SIZE, Timeline, TimelineItem

router = APIRouter(prefix="/contexts/{context_id}", tags=["unblur"], route_class=NoStoreRoute)
NOT_FOUND = "no such photo for this patient"
_PHOTO = "{study_uid}/{series_uid}/{sop_instance_uid}/unblur"
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"image/jpeg": {}}, "description": "The clear image (audited, no-store)"},
    403: {"description": "The user lacks the sensitive-viewer role (audited)"},
    404: {"description": "Not a photo this user is shown for this patient (audited)"},
    422: {"description": "No usable reason (audited)"},
}


class UnblurIn(BaseModel):
    """Why the clinician needs the clear image (kept in the audit trail)."""

    reason: str | None = Field(
        default=None,
        max_length=2000,
        description=f"Typed reason, at least {MIN_REASON_CHARS} characters after trimming",
    )
    size: int = Field(default=PREVIEW_SIZE, ge=32, le=PREVIEW_SIZE, description="Long side, px")


@router.post(
    f"/timeline/{_PHOTO}", name="timeline_unblur", response_class=Response, responses=_RESPONSES
)
@router.post(
    f"/priors/{_PHOTO}", name="prior_unblur", response_class=Response, responses=_RESPONSES
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
    reason = glass.check(body.reason)
    item = photos.locate(InstanceRef(study_uid, series_uid, sop_instance_uid))
    if item is None:
        glass.refused("no such photo", reason)
        raise HTTPException(404, detail=NOT_FOUND)
    jpeg = photos.clear_image(item, body.size)
    glass.granted(reason)  # after the read, before the answer: never a view unaudited
    return Response(jpeg, media_type="image/jpeg")


def photo_params(context_id: str, item: TimelineItem) -> dict[str, str]:
    """The path parameters naming one photo of a context (for ``request.url_for``)."""
    return {"context_id": context_id, **dataclasses.asdict(item.ref)}


def unblur_url(
    request: Request, route: str, context_id: str, timeline: Timeline, item: TimelineItem
) -> str | None:
    """Where to break the glass for this photo: only a blurred one, only for a sensitive viewer."""
    if not timeline.visibility.may_unblur(item.sensitivity):
        return None
    return request.url_for(route, **photo_params(context_id, item)).path
