"""Wound measurements on a captured photo (issue 16): measure, snap to edge, list.

The phone sends the outline the nurse confirmed, in the photo's own pixel coordinates, and a
ruler calibration only when the photo has no printed marker. The server calibrates and
measures again itself (``capture_api.wounds``): its numbers are the ones stored, archived as a
TID 1500 SR and sent to the EHR. A photo that cannot be measured (no usable marker and no
ruler, an outline that crosses itself, leaves the image or has fewer than 3 points) is
answered 422 with the reason in ``detail`` and a ``code``; nothing is written. Access is the
photo's (``api.access``); every request is audited.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.deps import get_runtime
from capture_api.api.errors import Declared, responses
from capture_api.api.no_store import NoStoreRoute
from capture_api.capture import site_name
from capture_api.exceptions import (
    ArchiveError,
    Conflict,
    InputRejected,
    MeasurementRejected,
    NotFound,
    NotSignedIn,
)
from capture_api.store.records import WoundMeasurementRecord
from capture_api.wounds import MeasureRequest, Ruler, WoundService

router = APIRouter(prefix="/captures/{capture_id}", tags=["measurements"], route_class=NoStoreRoute)

Coordinate = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
Point = tuple[Coordinate, Coordinate]
MAX_POINTS = 5000

_DECLARED: tuple[Declared, ...] = (
    (NotFound, "Unknown photo, or not this session's"),
    (
        MeasurementRejected,
        "Not measurable: no usable marker and no ruler, or a bad outline (reason in detail, "
        "code names it); nothing is written",
    ),
    (InputRejected, "The photo is not encoded yet, was refused, or is not a photo"),
    (ArchiveError, "The archive could not give the photo back"),
)
_ERRORS = responses(NotSignedIn, *_DECLARED)


class RulerIn(BaseModel):
    """Two points tapped on a ruler in the photo and the distance between them."""

    start: Point
    end: Point
    distance_mm: Annotated[float, Field(gt=0, le=1000)]


class MeasureIn(BaseModel):
    """The confirmed outline (image pixels, SCOORD: pixel centres at +0.5) and its pedigree."""

    outline: Annotated[list[Point], Field(max_length=MAX_POINTS)]
    ruler: RulerIn | None = Field(default=None, description="only when there is no marker")
    head_direction: tuple[Point, Point] | None = Field(
        default=None, description="two image points, the second nearer the head"
    )
    snapped: bool = Field(default=False, description="the outline is an accepted snap result")
    phone_area_cm2: Annotated[float | None, Field(ge=0, le=1e5)] = None


class SnapIn(BaseModel):
    """A rough outline to refine."""

    outline: Annotated[list[Point], Field(max_length=MAX_POINTS)]


class SnapOut(BaseModel):
    """The refined outline, for the nurse to accept or discard."""

    outline: list[tuple[float, float]]


class MeasurementOut(BaseModel):
    """One wound measurement: the server's numbers and what they rest on."""

    measurement_id: str
    capture_id: str
    status: str = Field(description="recorded, or superseded by a newer measurement")
    area_cm2: float
    length_mm: float
    width_mm: float
    perimeter_mm: float
    method: str = Field(description="marker-homography or ruler-two-point")
    perspective_corrected: bool
    tilt_deg: float | None
    mm_per_px: float
    quality: list[str] = Field(description="calibration parameters (name=value)")
    notes: list[str] = Field(description="what limits the accuracy, in words")
    summary: str
    outline: list[tuple[float, float]]
    snapped: bool
    phone_area_cm2: float | None
    body_site: str | None
    laterality: str | None
    body_site_name: str | None
    tracking_id: str
    tracking_uid: str
    sr_sop_instance_uid: str
    sr_capture_id: str
    measured_at: dt.datetime
    created_at: dt.datetime


def measurement_out(row: WoundMeasurementRecord) -> MeasurementOut:
    quality = json.loads(row.quality_json)
    return MeasurementOut(
        measurement_id=row.id,
        capture_id=row.capture_id,
        status=row.status,
        area_cm2=round(row.area_cm2, 3),
        length_mm=round(row.length_mm, 2),
        width_mm=round(row.width_mm, 2),
        perimeter_mm=round(row.perimeter_mm, 2),
        method=row.method,
        perspective_corrected=row.perspective_corrected,
        tilt_deg=row.tilt_deg,
        mm_per_px=row.mm_per_px,
        quality=quality["parameters"],
        notes=quality["notes"],
        summary=quality["summary"],
        outline=[(float(x), float(y)) for x, y in json.loads(row.outline_json)],
        snapped=row.snapped,
        phone_area_cm2=row.phone_area_cm2,
        body_site=row.body_site_code,
        laterality=row.laterality,
        body_site_name=site_name(row.body_site_code, row.laterality),
        tracking_id=row.tracking_id,
        tracking_uid=row.tracking_uid,
        sr_sop_instance_uid=row.sr_sop_instance_uid,
        sr_capture_id=row.sr_capture_id,
        measured_at=row.measured_at,
        created_at=row.created_at,
    )


def _wounds(request: Request) -> WoundService:
    service = get_runtime(request).wounds
    assert service is not None, "Runtime.build makes the wound service"
    return service


@router.post(
    "/measurements",
    status_code=status.HTTP_201_CREATED,
    response_model=MeasurementOut,
    responses=responses(*CONTEXT_ERRORS, *_DECLARED),
)
def measure(
    capture_id: str, body: MeasureIn, request: Request, access: AccessDep
) -> MeasurementOut:
    """Measure the wound the outline encloses; the server's numbers are stored and archived."""
    photo = access.capture(capture_id, "capture")
    context = access.context(photo.context_id, "capture")
    operator = access.session.fhir_user if access.session else None
    ruler = body.ruler
    asked = MeasureRequest(
        outline=list(body.outline),
        ruler=Ruler(ruler.start, ruler.end, ruler.distance_mm) if ruler else None,
        head_direction=body.head_direction,
        snapped=body.snapped,
        phone_area_cm2=body.phone_area_cm2,
        operator=operator,
    )
    return measurement_out(_wounds(request).measure(photo, context, asked))


@router.post("/snap", response_model=SnapOut, responses=_ERRORS)
def snap(capture_id: str, body: SnapIn, request: Request, access: AccessDep) -> SnapOut:
    """Refine a rough tracing to the wound's edge (GrabCut); nothing is stored."""
    photo = access.capture(capture_id, "capture")
    return SnapOut(outline=_wounds(request).snap(photo, list(body.outline)))


class CalibrationOut(BaseModel):
    """The photo's marker calibration: enough for the phone to show numbers while tracing."""

    method: str
    image_size: tuple[int, int] = Field(description="(columns, rows) of the archived photo")
    image_to_plane: list[list[float]] = Field(
        description="3x3 homography: image pixels (SCOORD) -> millimetres in the skin plane, "
        "+y towards the head (the sticker's arrow)"
    )
    tilt_deg: float | None
    perspective_corrected: bool


@router.get("/calibration", response_model=CalibrationOut, responses=_ERRORS)
def calibration(capture_id: str, request: Request, access: AccessDep) -> CalibrationOut:
    """Find the printed marker in the photo; 422 with the reason (``code``) when it cannot."""
    photo = access.capture(capture_id, "read")
    found = _wounds(request).calibration(photo)
    return CalibrationOut(
        method=found.method.value,
        image_size=found.image_size,
        image_to_plane=[[float(v) for v in row] for row in found.image_to_plane],
        tilt_deg=found.tilt_deg,
        perspective_corrected=found.perspective_corrected,
    )


@router.get(
    "/image",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The archived photo's JPEG"},
        **responses(
            NotSignedIn,
            *_DECLARED,
            (Conflict, "A sensitive photo: its clear image is not sent back for tracing"),
        ),
    },
)
def image(capture_id: str, request: Request, access: AccessDep) -> Response:
    """The archived photo's pixels, to trace on: outline coordinates are this image's."""
    photo = access.capture(capture_id, "read")
    return Response(_wounds(request).image(photo), media_type="image/jpeg")


@router.get(
    "/measurements",
    response_model=list[MeasurementOut],
    responses=responses(NotSignedIn, (NotFound, "Unknown photo, or not this session's")),
)
def list_measurements(capture_id: str, request: Request, access: AccessDep) -> list[MeasurementOut]:
    """The photo's measurements, the current one first."""
    access.capture(capture_id, "read")
    return [measurement_out(r) for r in _wounds(request).of_photo(capture_id)]
