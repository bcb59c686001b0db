"""The patient's skin lesions (L1, L2, ...): pinned on the body map, followed across visits.

Patient-scoped like the priors view: only the context's own patient. ``GET`` lists the
patient's lesions (those pinned on this service, and those the archive's photos name:
``capture_api.review.lesions``); ``POST`` pins a new one. Photos of a lesion name it in their
upload (``lesion``), and ``GET .../timeline?lesion=...`` shows them across encounters.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.deps import ArchiveDep, get_runtime
from capture_api.api.errors import responses
from capture_api.api.no_store import NoStoreRoute
from capture_api.capture import Laterality, site_name
from capture_api.capture.lesions import DESCRIPTION_MAX, LesionPin
from capture_api.exceptions import ArchiveError, InvalidMetadata
from capture_api.review.lesions import LesionBook, PinRequest
from capture_api.review.timeline import patient_of
from capture_api.store.records import LesionRecord

router = APIRouter(
    prefix="/contexts/{context_id}/lesions", tags=["lesions"], route_class=NoStoreRoute
)

MapView = Annotated[
    str,
    Field(pattern=r"^(front|back|head|hand-palmar|hand-dorsal|foot-dorsal|foot-plantar)$"),
]


class PinIn(BaseModel):
    """Where the nurse dropped the pin, the coded site under it, and optional words."""

    view: MapView
    x: Annotated[float, Field(ge=0, le=1, description="0..1 from the view's left")]
    y: Annotated[float, Field(ge=0, le=1, description="0..1 from the view's top")]
    body_site: Annotated[str | None, Field(pattern=r"^[0-9]{5,18}$")] = None
    laterality: Laterality | None = None
    description: Annotated[str | None, Field(max_length=DESCRIPTION_MAX)] = None


class LesionOut(BaseModel):
    """One lesion of the patient."""

    tracking_uid: str  # Tracking UID (0062,0021) of every photo of it
    label: str  # Tracking ID (0062,0020): "L3"
    number: int
    description: str | None
    view: str | None
    x: float | None
    y: float | None
    body_site: str | None
    laterality: str | None
    body_site_name: str | None  # the site's one display name with its side
    source: str  # capture (pinned here) | archive (found in the archive's photos)


def _out(record: LesionRecord) -> LesionOut:
    return LesionOut(
        tracking_uid=record.tracking_uid,
        label=record.label,
        number=record.number,
        description=record.description,
        view=record.view,
        x=record.x,
        y=record.y,
        body_site=record.body_site_code,
        laterality=record.laterality,
        body_site_name=site_name(record.body_site_code, record.laterality),
        source=record.source,
    )


def _book(request: Request, access: AccessDep, archive: ArchiveDep, context_id: str) -> LesionBook:
    record = access.context(context_id, "read")
    uid_root = get_runtime(request).settings.uid_root
    return LesionBook(archive, get_runtime(request).engine, patient_of(record), uid_root)


@router.get("", response_model=list[LesionOut], responses=responses(*CONTEXT_ERRORS, ArchiveError))
def list_lesions(
    context_id: str, request: Request, access: AccessDep, archive: ArchiveDep
) -> list[LesionOut]:
    """The patient's lesions by number, with their pins: the next visit shows them again."""
    return [_out(r) for r in _book(request, access, archive, context_id).known()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LesionOut,
    responses=responses(
        *CONTEXT_ERRORS,
        (InvalidMetadata, "A site, side or description that cannot be recorded"),
        ArchiveError,
    ),
)
def pin_lesion(
    context_id: str, body: PinIn, request: Request, access: AccessDep, archive: ArchiveDep
) -> LesionOut:
    """Pin a new lesion of the patient: it gets the next label (L1, L2, ...)."""
    access.context(context_id, "capture")
    book = _book(request, access, archive, context_id)
    pin = PinRequest(
        pin=LesionPin(body.view, body.x, body.y),
        body_site=body.body_site,
        laterality=body.laterality.value if body.laterality else None,
        description=body.description,
    )
    return _out(book.pin(pin, context_id))
