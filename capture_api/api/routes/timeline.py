"""The wound-care timeline of the context's patient: one coded site, oldest first, compared.

Patient-scoped like the priors view: only the context's own patient is asked for, an image is
served only for an instance on that patient's timeline, and every answer (errors included)
is ``Cache-Control: no-store``. Sensitivity (``capture_api.privacy.visibility``): restricted
photos are listed as ``blurred`` and their images are blurred on the server; very-restricted
photos are listed (blurred) only for users with the ``sensitive-viewer`` role, and for
everyone else are not listed and their images and comparisons answer 404, as for an unknown
photo. A sensitive viewer sees a blurred photo clear through ``POST .../unblur`` with a typed
reason (break-the-glass, audited: ``capture_api.api.routes.unblur``). Images are served as the
priors view serves its own (``capture_api.review.images``).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

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
from capture_api.capture import Laterality, site_name
from capture_api.deliver import InstanceRef
from capture_api.exceptions import ArchiveError, InvalidMetadata, NotFound
from capture_api.measure import WoundType
from capture_api.review import (
    HEALING_CSP,
    NOT_FOUND,
    PREVIEW_SIZE,
    THUMBNAIL_SIZE,
    SiteHealing,
    Timeline,
    TimelineItem,
    View,
    days_between,
    healing_html,
    site_healing,
)

_UID = r"^[0-9]+(\.[0-9]+)*$"


router = APIRouter(
    prefix="/contexts/{context_id}/timeline", tags=["timeline"], route_class=NoStoreRoute
)


class ImageSize(enum.IntEnum):
    """The two renderings: a thumbnail for the strip, a preview for side by side."""

    THUMBNAIL = THUMBNAIL_SIZE
    PREVIEW = PREVIEW_SIZE


class EncounterOut(BaseModel):
    """The encounter (study) a photo was taken in, as far as it is known."""

    admission_id: str | None
    description: str | None


class TimelineItemOut(BaseModel):
    """One photo of the site, with URLs of its images (blurred when restricted)."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    acquired: str | None  # DICOM DT as the archive holds it
    encounter: EncounterOut
    body_site_code: str | None
    body_site_meaning: str | None
    body_site_name: str | None  # the site's display name with its side, as the phone shows it
    laterality: str | None
    note: str | None  # Image Comments
    modality: str | None  # XC (clinical photo) or DMS (dermoscopic)
    sensitivity: str  # normal | restricted | very-restricted (listed to sensitive viewers only)
    blurred: bool
    thumbnail_url: str
    preview_url: str
    unblur_url: str | None  # POST {reason}: only for a blurred photo and a sensitive viewer


class HealingPointOut(BaseModel):
    """One wound measurement of the site: the photo's date and the server's numbers."""

    measurement_id: str
    capture_id: str
    sop_instance_uid: str | None = Field(description="the SR's; the photo is ``capture_id``")
    measured_at: dt.datetime
    area_cm2: float
    length_mm: float
    width_mm: float
    method: str
    perspective_corrected: bool


class HealingOut(BaseModel):
    """The area trend of the site's wound (issue 16), with the 4-week figure and its flag."""

    points: list[HealingPointOut]
    reduction_since_first_pct: float | None
    reduction_4_weeks_pct: float | None = Field(
        description="vs the measurement closest to 28 days before the latest (21-35 days)"
    )
    wound_type: WoundType
    threshold_pct: float = Field(description="4-week reduction below this: not on track")
    threshold_source: str
    not_on_track: bool


class TimelineOut(BaseModel):
    """The photos of one site (and side), or of one lesion, oldest first."""

    body_site: str | None
    laterality: str | None
    lesion: str | None  # the lesion's Tracking UID, when the timeline is the lesion's
    items: list[TimelineItemOut]
    healing: HealingOut | None = Field(
        default=None, description="the site's wound measurements over time (site timelines)"
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def healing_out(healing: SiteHealing) -> HealingOut:
    trend = healing.trend
    return HealingOut(
        points=[
            HealingPointOut(
                measurement_id=m.id,
                capture_id=m.capture_id,
                sop_instance_uid=m.sr_sop_instance_uid,
                measured_at=m.measured_at,
                area_cm2=round(m.area_cm2, 3),
                length_mm=round(m.length_mm, 2),
                width_mm=round(m.width_mm, 2),
                method=m.method,
                perspective_corrected=m.perspective_corrected,
            )
            for m in healing.measurements
        ],
        reduction_since_first_pct=_round(trend.reduction_since_first_pct),
        reduction_4_weeks_pct=_round(trend.reduction_4_weeks_pct),
        wound_type=trend.wound_type,
        threshold_pct=trend.threshold_pct,
        threshold_source=trend.wound_type.source,
        not_on_track=trend.not_on_track,
    )


class CompareOut(BaseModel):
    """Two photos of the timeline side by side."""

    a: TimelineItemOut
    b: TimelineItemOut
    days_between: int | None  # calendar days between the acquisition dates; None if unknown


def _out(
    item: TimelineItem, context_id: str, request: Request, timeline: Timeline
) -> TimelineItemOut:
    ref, prior = item.ref, item.prior
    image = request.url_for("timeline_image", **photo_params(context_id, item)).path
    return TimelineItemOut(
        study_uid=ref.study_uid,
        series_uid=ref.series_uid,
        sop_instance_uid=ref.sop_instance_uid,
        acquired=prior.acquired,
        encounter=EncounterOut(
            admission_id=item.encounter.admission_id, description=item.encounter.description
        ),
        body_site_code=prior.body_site_code,
        body_site_meaning=prior.body_site_meaning,
        body_site_name=site_name(prior.body_site_code, prior.laterality),
        laterality=prior.laterality,
        note=item.note,  # withheld while the photo is blurred
        modality=prior.modality,
        sensitivity=item.sensitivity.value,
        blurred=item.blurred,
        thumbnail_url=f"{image}?size={THUMBNAIL_SIZE}",
        preview_url=f"{image}?size={PREVIEW_SIZE}",
        unblur_url=unblur_url(request, "timeline_unblur", context_id, timeline, item),
    )


@router.get(
    "",
    response_model=TimelineOut,
    responses=responses(
        *CONTEXT_ERRORS, (InvalidMetadata, "Neither a body site nor a lesion"), ArchiveError
    ),
)
def get_timeline(
    context_id: str,
    request: Request,
    access: AccessDep,
    archive: ArchiveDep,
    body_site: Annotated[
        str | None, Query(pattern=r"^[0-9]{5,18}$", description="SNOMED CT code")
    ] = None,
    laterality: Annotated[Laterality | None, Query()] = None,
    lesion: Annotated[
        str | None, Query(pattern=_UID, max_length=64, description="a lesion's Tracking UID")
    ] = None,
    wound_type: Annotated[
        WoundType | None,
        Query(description="the wound's aetiology for the 4-week threshold (default: by site)"),
    ] = None,
) -> TimelineOut:
    """All the patient's photos of the site (and side), or of one lesion (``lesion``, its
    clinical and dermoscopic photos whatever site they were filed under), across encounters,
    oldest first."""
    if body_site is None and lesion is None:
        raise InvalidMetadata("ask for a body site (body_site) or a lesion (lesion)")
    timeline = access.photos(context_id, View.TIMELINE.value, archive)
    side = laterality.value if laterality else None
    items = timeline.lesion_items(lesion) if lesion else timeline.items(body_site or "", side)
    healing = None
    if body_site and not lesion:
        found = site_healing(
            timeline.engine, timeline.patient, body_site, side, timeline.visibility, wound_type
        )
        healing = healing_out(found)
    return TimelineOut(
        body_site=body_site,
        laterality=side,
        lesion=lesion,
        items=[_out(i, context_id, request, timeline) for i in items],
        healing=healing,
    )


@router.get(
    "/healing",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The printable healing trend"},
        **responses(*CONTEXT_ERRORS),
    },
)
def healing_page(
    context_id: str,
    access: AccessDep,
    archive: ArchiveDep,
    body_site: Annotated[str, Query(pattern=r"^[0-9]{5,18}$", description="SNOMED CT code")],
    laterality: Annotated[Laterality | None, Query()] = None,
    wound_type: Annotated[WoundType | None, Query()] = None,
) -> HTMLResponse:
    """The site's wound area over time as a printable page (chart, figures, measurements)."""
    timeline = access.photos(context_id, View.TIMELINE.value, archive)
    side = laterality.value if laterality else None
    found = site_healing(
        timeline.engine, timeline.patient, body_site, side, timeline.visibility, wound_type
    )
    patient = timeline.patient
    label = f"Patient {patient.id}" + (f" ({patient.name.family})" if patient.name else "")
    page = healing_html(found, site=site_name(body_site, side) or body_site, patient=label)
    return HTMLResponse(page, headers={"Content-Security-Policy": HEALING_CSP})


@router.get(
    "/compare",
    response_model=CompareOut,
    responses=responses(
        *CONTEXT_ERRORS,
        (NotFound, "Either photo is not on this patient's timeline"),
        ArchiveError,
    ),
)
def compare(
    context_id: str,
    request: Request,
    access: AccessDep,
    archive: ArchiveDep,
    a: Annotated[str, Query(pattern=_UID, max_length=64)],
    b: Annotated[str, Query(pattern=_UID, max_length=64)],
) -> CompareOut:
    """Two of the patient's photos side by side, with the days between them."""
    timeline = access.photos(context_id, View.TIMELINE.value, archive)
    first, second = timeline.find([a, b])
    if first is None or second is None:
        raise NotFound(NOT_FOUND[View.TIMELINE])
    return CompareOut(
        a=_out(first, context_id, request, timeline),
        b=_out(second, context_id, request, timeline),
        days_between=days_between(first, second),
    )


@router.get(
    f"{PHOTO_PATH}/image",
    response_class=Response,
    responses=image_responses(
        "Blurred when restricted", not_found="Not on this patient's timeline"
    ),
)
def timeline_image(
    context_id: str,
    study_uid: str,
    series_uid: str,
    sop_instance_uid: str,
    access: AccessDep,
    archive: ArchiveDep,
    size: Annotated[ImageSize, Query()] = ImageSize.THUMBNAIL,
) -> Response:
    """A JPEG of one timeline photo (256 or 1024 px); sensitive photos only ever blurred."""
    ref = InstanceRef(study_uid, series_uid, sop_instance_uid)
    return image_answer(access, archive, context_id, ref, int(size), View.TIMELINE)
