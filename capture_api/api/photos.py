"""One photo of a context's patient on the wire: its image answer and the links a listed photo
carries, shared by the priors and timeline routers and their break-the-glass door.

The decisions (which photo a view serves, blurred or not, the audited clear image) are
``capture_api.review.images``; this is only their HTTP face. The routers using it are
``NoStoreRoute`` routers: every answer, errors included, is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import Request, Response

from capture_api.api.access import CONTEXT_ERRORS, Access
from capture_api.api.errors import raises, responses
from capture_api.deliver.archive import Archive, InstanceRef
from capture_api.exceptions import ArchiveError, NotFound
from capture_api.review import images
from capture_api.review.timeline import Timeline, TimelineItem

#: The path of one photo below a view (``/contexts/{id}/priors``, ``.../timeline``).
PHOTO_PATH = "/{study_uid}/{series_uid}/{sop_instance_uid}"
JPEG = "image/jpeg"
#: What an image route raises: its context's refusals, an unknown photo, a failing archive.
IMAGE_ERRORS = (*CONTEXT_ERRORS, NotFound, ArchiveError)


def image_responses(shown: str, not_found: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of an image route (``shown``: what the 200 JPEG is)."""
    declared = [(error, not_found) if error is NotFound else error for error in IMAGE_ERRORS]
    return {200: {"content": {JPEG: {}}, "description": shown}, **responses(*declared)}


@raises(*IMAGE_ERRORS)
def image_answer(
    access: Access,
    archive: Archive,
    context_id: str,
    ref: InstanceRef,
    size: int,
    view: images.View,
) -> Response:
    """The JPEG of one photo ``view`` lists for this user: blurred unless normal."""
    photos = access.photos(context_id, view.value, archive)
    return Response(images.image(photos, ref, size, view), media_type=JPEG)


def photo_params(context_id: str, item: TimelineItem) -> dict[str, str]:
    """The path parameters naming one photo of a context (for ``request.url_for``)."""
    return {"context_id": context_id, **dataclasses.asdict(item.ref)}


def unblur_url(
    request: Request, route: str, context_id: str, photos: Timeline, item: TimelineItem
) -> str | None:
    """Where to break the glass for this photo: only a blurred one, only for a sensitive viewer."""
    if not photos.visibility.may_unblur(item.sensitivity):
        return None
    return request.url_for(route, **photo_params(context_id, item)).path
