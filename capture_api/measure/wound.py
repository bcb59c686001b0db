"""The wound's numbers: area, length, width and perimeter from a tracing and a calibration.

Conventions (the clinical ones, see docs/wound-measurement.md):

* **Area** (cm2): the area enclosed by the tracing, mapped point by point into the skin plane
  (perspective-corrected when the calibration is a marker). A homography maps straight lines
  to straight lines, so the mapped polygon's shoelace area is exact for the traced polygon.
* **Length** (mm): the longest extent head-to-toe, i.e. the distance between the two lines
  perpendicular to the head-to-toe axis that touch the outline. The axis is the sticker's head
  arrow (plane ``+y``) unless the caller passes another direction (two image points, from
  the toe side towards the head).
* **Width** (mm): the longest extent perpendicular to that axis, the same way.
* **Perimeter** (mm): the length of the traced edge in the plane. It grows with every wobble
  of the tracing, so it is less reproducible than the area.

With the calibration, every measurement keeps its quality: the method, whether it is
perspective-corrected, the tilt, the scale at the wound (mm per pixel), how far the wound is
from the marker, and plain-language notes when something limits the accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capture_api.exceptions import MeasurementRejected
from capture_api.measure.calibration import Calibration
from capture_api.measure.geometry import (
    Points,
    as_points,
    extents,
    polygon_area,
    polygon_perimeter,
)
from capture_api.measure.outline import validate_outline

__all__ = ["CalibrationQuality", "WoundMeasurement", "measure_wound"]

#: Wounds further from the marker's centre than this many marker sides get a note.
FAR_FROM_MARKER_SIDES = 4.0
#: Tilt above this gets a note (the hard limit is in calibration.MAX_TILT_DEG).
STEEP_TILT_DEG = 30.0
#: Edge fits with a larger RMS (pixels) suggest a bent sticker, blur or lens distortion.
ROUGH_EDGE_PX = 0.75


@dataclass(frozen=True)
class CalibrationQuality:
    """What the numbers rest on, stored with them (SR algorithm parameters, FHIR note)."""

    method: str
    perspective_corrected: bool
    mm_per_px: float
    anisotropy: float
    tilt_deg: float | None
    focal_length_assumed: bool
    marker_id: int | None
    marker_side_mm: float | None
    marker_side_px: float | None
    marker_edge_residual_px: float | None
    distance_from_marker_mm: float | None
    notes: tuple[str, ...]

    def parameters(self) -> list[str]:
        """``name=value`` strings, one per fact (TID 4019 Algorithm Parameters)."""
        values: list[tuple[str, object]] = [
            ("calibration", self.method),
            ("perspective_corrected", "yes" if self.perspective_corrected else "no"),
            ("mm_per_px_at_wound", f"{self.mm_per_px:.4f}"),
            ("anisotropy", f"{self.anisotropy:.3f}"),
        ]
        if self.tilt_deg is not None:
            assumed = " (focal length assumed)" if self.focal_length_assumed else ""
            values.append(("tilt_deg", f"{self.tilt_deg:.1f}{assumed}"))
        if self.marker_id is not None:
            values += [
                ("marker", f"ArUco DICT_4X4_50 id {self.marker_id}, {self.marker_side_mm:g} mm"),
                ("marker_side_px", f"{self.marker_side_px:.1f}"),
                ("marker_edge_rms_px", f"{self.marker_edge_residual_px:.2f}"),
                ("wound_to_marker_mm", f"{self.distance_from_marker_mm:.0f}"),
            ]
        return [f"{name}={value}" for name, value in values]

    def summary(self) -> str:
        """One sentence for people (FHIR method text)."""
        if self.perspective_corrected:
            text = (
                f"Digital planimetry on the photo, perspective-corrected with a "
                f"{self.marker_side_mm:g} mm printed marker (camera tilt {self.tilt_deg:.0f} "
                f"degrees, {self.mm_per_px:.3f} mm per pixel at the wound)."
            )
        else:
            text = (
                f"Digital planimetry on the photo, scaled from two points on a ruler "
                f"({self.mm_per_px:.3f} mm per pixel); NOT corrected for camera tilt."
            )
        return " ".join([text, *self.notes])


@dataclass(frozen=True)
class WoundMeasurement:
    """A measured wound: the numbers, the outline in both spaces, and their quality."""

    area_cm2: float
    length_mm: float
    width_mm: float
    perimeter_mm: float
    outline_px: Points
    outline_mm: Points
    head_direction_mm: Points
    calibration: Calibration
    quality: CalibrationQuality


def measure_wound(
    outline: object,
    calibration: Calibration,
    *,
    head_direction: object | None = None,
) -> WoundMeasurement:
    """Measure one traced wound.

    ``outline``: the tracing, ``(x, y)`` image pixels in SCOORD convention (checked by
    ``validate_outline``). ``head_direction``: optional ``((x0, y0), (x1, y1))`` image points
    with ``(x1, y1)`` nearer the patient's head; by default the calibration's plane ``+y``
    (the sticker's head arrow, or the photo's up for a ruler).
    """
    points = validate_outline(outline, calibration.image_size)
    plane = calibration.to_plane(points)
    axis = _head_axis(head_direction, calibration)
    reach = extents(plane, axis)
    quality = _quality(points, plane, calibration)
    return WoundMeasurement(
        area_cm2=polygon_area(plane) / 100.0,
        length_mm=reach.along,
        width_mm=reach.across,
        perimeter_mm=polygon_perimeter(plane),
        outline_px=points,
        outline_mm=plane,
        head_direction_mm=axis,
        calibration=calibration,
        quality=quality,
    )


def _head_axis(head_direction: object | None, calibration: Calibration) -> Points:
    if head_direction is None:
        return np.array([0.0, 1.0])
    try:
        ends = as_points(head_direction)
        if ends.shape != (2, 2) or not np.isfinite(ends).all():
            raise ValueError("two points needed")
    except (TypeError, ValueError) as exc:
        raise MeasurementRejected(
            "the head direction must be two (x, y) image points, the second nearer the head",
            reason="head-direction-invalid",
        ) from exc
    plane = calibration.to_plane(ends)
    vector = plane[1] - plane[0]
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise MeasurementRejected(
            "the head direction's two points are the same: draw it from the toe side "
            "towards the head",
            reason="head-direction-invalid",
        )
    return np.asarray(vector / norm)


def _quality(points: Points, plane: Points, calibration: Calibration) -> CalibrationQuality:
    centre = points.mean(axis=0)
    marker = calibration.marker
    notes = []
    distance = None
    if marker is not None:
        distance = float(np.linalg.norm(plane.mean(axis=0)))
        if distance > FAR_FROM_MARKER_SIDES * marker.spec.side_mm:
            notes.append(
                f"The wound is {distance:.0f} mm from the marker: placed nearer, the scale "
                "would be more accurate."
            )
        if marker.edge_residual_px > ROUGH_EDGE_PX:
            notes.append("The marker's edges are not straight (bent sticker, blur or lens).")
    if calibration.tilt_deg is not None and calibration.tilt_deg > STEEP_TILT_DEG:
        notes.append(f"Steep camera angle ({calibration.tilt_deg:.0f} degrees).")
    if not calibration.perspective_corrected:
        notes.append("Without the marker the camera tilt is not corrected.")
    return CalibrationQuality(
        method=calibration.method.value,
        perspective_corrected=calibration.perspective_corrected,
        mm_per_px=calibration.mm_per_px(centre),
        anisotropy=calibration.anisotropy(centre),
        tilt_deg=calibration.tilt_deg,
        focal_length_assumed=calibration.focal_length_assumed,
        marker_id=None if marker is None else marker.spec.marker_id,
        marker_side_mm=None if marker is None else marker.spec.side_mm,
        marker_side_px=None if marker is None else marker.side_px,
        marker_edge_residual_px=None if marker is None else marker.edge_residual_px,
        distance_from_marker_mm=distance,
        notes=tuple(notes),
    )
