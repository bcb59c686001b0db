"""Earlier photos of the context's patient, for side-by-side comparison (wound care).

Only the context's own patient can be asked for, and an instance's thumbnail is served only
if the archive lists it for that patient. Sensitivity is decided exactly as on the timeline
(the same ``Timeline`` lookup: our database, else the instance's private block), for the
user's roles (``capture_api.privacy.visibility``): restricted photos are listed ``blurred``
and their thumbnails blurred on the server (the clear pixels are never sent); very-restricted
photos are not listed and answer 404 unless the user has the ``sensitive-viewer`` role, who
sees them listed and blurred. A sensitive viewer sees one clear through ``POST .../unblur``
with a typed reason (break-the-glass, audited: ``capture_api.api.routes.unblur``). The image
is served as the timeline serves its own (``capture_api.review.images``). Every answer is
``no-store``: nothing with PHI is cached by the browser or by us.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.deps import ArchiveDep
from capture_api.api.errors import responses
from capture_api.api.no_store import NoStoreRoute
from capture_api.api.photos import (
    PHOTO_PATH,
    image_answer,
    image_responses,
    photo_params,
    unblur_url,
)
from capture_api.capture import site_name
from capture_api.deliver import InstanceRef
from capture_api.exceptions import ArchiveError
from capture_api.review import Timeline, TimelineItem, View

router = APIRouter(
    prefix="/contexts/{context_id}/priors", tags=["priors"], route_class=NoStoreRoute
)
#: How many photos the priors view asks the archive for (newest first).
PRIORS_LIMIT = 100


class PriorOut(BaseModel):
    """One earlier photo, with the URL of its small thumbnail (blurred when sensitive)."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    acquired: str | None
    body_site_code: str | None
    body_site_meaning: str | None
    body_site_name: str | None  # the site's display name with its side, as the phone shows it
    laterality: str | None
    description: str | None
    comment: str | None
    sensitivity: str  # normal | restricted | very-restricted (listed to sensitive viewers only)
    blurred: bool
    thumbnail_url: str
    unblur_url: str | None  # POST {reason}: only for a blurred photo and a sensitive viewer


def _out(item: TimelineItem, context_id: str, request: Request, timeline: Timeline) -> PriorOut:
    p, ref = item.prior, item.ref
    return PriorOut(
        study_uid=ref.study_uid,
        series_uid=ref.series_uid,
        sop_instance_uid=ref.sop_instance_uid,
        acquired=p.acquired,
        body_site_code=p.body_site_code,
        body_site_meaning=p.body_site_meaning,
        body_site_name=site_name(p.body_site_code, p.laterality),
        laterality=p.laterality,
        description=item.description,  # withheld, like the note, while the photo is blurred
        comment=item.note,
        sensitivity=item.sensitivity.value,
        blurred=item.blurred,
        thumbnail_url=request.url_for("prior_thumbnail", **photo_params(context_id, item)).path,
        unblur_url=unblur_url(request, "prior_unblur", context_id, timeline, item),
    )


@router.get("", response_model=list[PriorOut], responses=responses(*CONTEXT_ERRORS, ArchiveError))
def list_priors(
    context_id: str,
    request: Request,
    access: AccessDep,
    archive: ArchiveDep,
    body_site: Annotated[str | None, Query(pattern=r"^[0-9]{5,18}$")] = None,
) -> list[PriorOut]:
    """The patient's photos in the archive, newest first, optionally of one coded site."""
    timeline = access.photos(context_id, "priors", archive)
    return [
        _out(item, context_id, request, timeline)
        for item in timeline.recent(body_site, PRIORS_LIMIT)
    ]


@router.get(
    f"{PHOTO_PATH}/thumbnail",
    response_class=Response,
    responses=image_responses(
        "Blurred when sensitive", not_found="Not this patient's, or not shown to this user"
    ),
)
def prior_thumbnail(
    context_id: str,
    study_uid: str,
    series_uid: str,
    sop_instance_uid: str,
    access: AccessDep,
    archive: ArchiveDep,
    size: Annotated[int, Query(ge=32, le=512)] = 256,
) -> Response:
    """A small JPEG of one of the patient's photos (never another patient's)."""
    ref = InstanceRef(study_uid, series_uid, sop_instance_uid)
    return image_answer(access, archive, context_id, ref, size, View.PRIORS)
