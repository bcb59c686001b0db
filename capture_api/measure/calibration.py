"""From pixels to millimetres in the skin plane: the printed marker, or a ruler as fallback.

**Marker** (``calibrate_from_marker``): the four refined corners of a marker of known side
give the homography between the marker's plane and the photo (``cv2.getPerspectiveTransform``,
exact for 4 points). Inverting it maps any traced point to millimetres in that plane, so area,
lengths and perimeter are corrected for perspective, whatever the tilt: no camera model is
needed for the measurement itself. The camera model is needed only for the **tilt** (the angle
between the camera's optical axis and the skin's normal), which is recovered with
``cv2.solvePnP(..., SOLVEPNP_IPPE_SQUARE)`` from the same corners and a focal length: the
photo's own (EXIF ``FocalLengthIn35mmFilm`` through ``focal_length_px_from_35mm``) or, when
unknown, a typical phone main camera's 26 mm equivalent. A tilt above 45 degrees is refused:
the marker is then foreshortened so much that its corners, and so the scale, are unreliable.

**Ruler** (``calibrate_from_ruler``): two points tapped on a ruler lying in the photo and the
distance between them. One scale for the whole photo, no perspective correction: the result is
marked ``perspective_corrected = False`` and is only as good as the photo is square-on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from capture_api.exceptions import MeasurementRejected
from capture_api.measure.geometry import (
    Matrix,
    Points,
    apply_homography,
    as_points,
    jacobian,
    to_opencv,
)
from capture_api.measure.marker import (
    MIN_MARKER_SIDE_PX,
    DetectedMarker,
    Image,
    detect_marker,
)

__all__ = [
    "DEFAULT_FOCAL_LENGTH_35MM",
    "MAX_TILT_DEG",
    "Calibration",
    "CalibrationMethod",
    "calibrate_from_marker",
    "calibrate_from_ruler",
    "focal_length_px_from_35mm",
]

#: Assumed 35 mm-equivalent focal length when the photo does not say (phone main cameras
#: are 23-28 mm equivalent). Only the reported tilt depends on it, never the measurement.
DEFAULT_FOCAL_LENGTH_35MM = 26.0
#: Steeper than this and the photo is refused.
MAX_TILT_DEG = 45.0
_FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
_MIN_RULER_PX = 30.0


class CalibrationMethod(StrEnum):
    """How pixels were turned into millimetres."""

    MARKER = "marker-homography"
    RULER = "ruler-two-point"


@dataclass(frozen=True)
class Calibration:
    """The mapping from image pixels (SCOORD) to millimetres in the skin plane, and its pedigree.

    ``image_to_plane`` is a 3x3 homography. For a marker, plane ``+y`` is the marker's top
    edge, i.e. the sticker's head arrow; for a ruler it is the photo's up direction.
    """

    method: CalibrationMethod
    image_size: tuple[int, int]
    image_to_plane: Matrix
    marker: DetectedMarker | None = None
    tilt_deg: float | None = None
    focal_length_px: float | None = None
    focal_length_assumed: bool = True
    ruler_distance_mm: float | None = None
    ruler_length_px: float | None = None

    @property
    def perspective_corrected(self) -> bool:
        return self.method is CalibrationMethod.MARKER

    @property
    def plane_to_image(self) -> Matrix:
        return np.asarray(np.linalg.inv(self.image_to_plane))

    def to_plane(self, points: Points) -> Points:
        """Image points (SCOORD) to plane millimetres."""
        try:
            return apply_homography(self.image_to_plane, points)
        except ValueError as exc:
            raise MeasurementRejected(
                "part of the outline lies beyond the horizon of the marker's plane: the wound "
                "must lie on the skin around the sticker, not far behind it",
                reason="outline-off-plane",
            ) from exc

    def mm_per_px(self, at: Points) -> float:
        """Millimetres per pixel at an image point: the square root of the local area scale."""
        return math.sqrt(abs(float(np.linalg.det(jacobian(self.image_to_plane, at)))))

    def anisotropy(self, at: Points) -> float:
        """How unequal the scale is across directions at a point (1 = same in every direction)."""
        singular = np.linalg.svd(jacobian(self.image_to_plane, at), compute_uv=False)
        return float(singular[0] / singular[1])


def focal_length_px_from_35mm(focal_35mm: float, image_size: tuple[int, int]) -> float:
    """Focal length in pixels from a 35 mm-equivalent focal length (EXIF tag 0xA405).

    The 35 mm equivalent is defined on the diagonal (CIPA DC-008): the photo's diagonal in
    pixels stands for the 43.27 mm diagonal of a full-frame sensor.
    """
    if focal_35mm <= 0:
        raise ValueError("a 35 mm-equivalent focal length must be positive")
    return focal_35mm * math.hypot(*image_size) / _FULL_FRAME_DIAGONAL_MM


def calibrate_from_marker(
    image: Image,
    *,
    focal_length_px: float | None = None,
    max_tilt_deg: float = MAX_TILT_DEG,
    min_marker_side_px: float = MIN_MARKER_SIDE_PX,
) -> Calibration:
    """Find the sticker's marker and calibrate the photo's plane from it.

    ``image`` is the decoded photo (BGR or grey ``uint8``, as stored: row 0 at the top of the
    pixel data, the same pixels a DICOM viewer shows). Raises ``MeasurementRejected`` when
    the marker is missing, too small, partly hidden, or seen at more than ``max_tilt_deg``.
    """
    marker = detect_marker(image, min_side_px=min_marker_side_px)
    size = (int(image.shape[1]), int(image.shape[0]))
    half = marker.spec.side_mm / 2
    plane = np.array([[-half, half], [half, half], [half, -half], [-half, -half]])
    plane_to_image = cv2.getPerspectiveTransform(
        plane.astype(np.float32), marker.corners.astype(np.float32)
    )
    assumed = focal_length_px is None
    focal = focal_length_px or focal_length_px_from_35mm(DEFAULT_FOCAL_LENGTH_35MM, size)
    tilt = _tilt_deg(marker, plane, focal, size)
    if tilt > max_tilt_deg:
        raise MeasurementRejected(
            f"the photo is taken {tilt:.0f} degrees off square (at most {max_tilt_deg:.0f} "
            "can be measured): hold the phone more directly above the wound",
            reason="too-oblique",
        )
    return Calibration(
        method=CalibrationMethod.MARKER,
        image_size=size,
        image_to_plane=np.asarray(np.linalg.inv(plane_to_image), dtype=np.float64),
        marker=marker,
        tilt_deg=tilt,
        focal_length_px=focal,
        focal_length_assumed=assumed,
    )


def _tilt_deg(marker: DetectedMarker, plane: Points, focal: float, size: tuple[int, int]) -> float:
    """Angle between the optical axis and the marker's normal, from a pinhole camera model."""
    camera = np.array(
        [[focal, 0, (size[0] - 1) / 2], [0, focal, (size[1] - 1) / 2], [0, 0, 1]],
        dtype=np.float64,
    )
    objects = np.column_stack([plane, np.zeros(4)])
    ok, rotation, _ = cv2.solvePnP(
        objects, to_opencv(marker.corners), camera, None, flags=cv2.SOLVEPNP_IPPE_SQUARE
    )
    if not ok:
        raise MeasurementRejected(
            "the calibration marker's shape is not that of a flat square: lay the sticker flat",
            reason="marker-distorted",
        )
    matrix, _ = cv2.Rodrigues(rotation)
    return math.degrees(math.acos(min(1.0, abs(float(matrix[2, 2])))))


def calibrate_from_ruler(
    start: object, end: object, distance_mm: float, image_size: tuple[int, int]
) -> Calibration:
    """The fallback without a sticker: two tapped points ``distance_mm`` apart on a ruler.

    One uniform scale, no perspective or tilt correction (``perspective_corrected`` is
    False); plane ``+y`` is the photo's up direction.
    """
    points = _ruler_points(start, end, image_size)
    if not 0 < distance_mm <= 1000:
        raise MeasurementRejected(
            f"the ruler distance must be between 0 and 1000 mm, not {distance_mm}",
            reason="ruler-invalid",
        )
    length_px = float(np.linalg.norm(points[1] - points[0]))
    if length_px < _MIN_RULER_PX:
        raise MeasurementRejected(
            f"the two ruler points are only {length_px:.0f} pixels apart (at least "
            f"{_MIN_RULER_PX:.0f}): tap two marks further apart",
            reason="ruler-invalid",
        )
    scale = distance_mm / length_px
    cx, cy = image_size[0] / 2, image_size[1] / 2
    matrix = np.array([[scale, 0, -scale * cx], [0, -scale, scale * cy], [0, 0, 1]])
    return Calibration(
        method=CalibrationMethod.RULER,
        image_size=image_size,
        image_to_plane=matrix,
        ruler_distance_mm=float(distance_mm),
        ruler_length_px=length_px,
    )


def _ruler_points(start: object, end: object, image_size: tuple[int, int]) -> Points:
    try:
        points = as_points([start, end])
    except (TypeError, ValueError) as exc:
        raise MeasurementRejected(
            "the ruler points must be two (x, y) pixel positions", reason="ruler-invalid"
        ) from exc
    columns, rows = image_size
    inside = (
        (points >= 0).all() and (points[:, 0] <= columns).all() and (points[:, 1] <= rows).all()
    )
    if not (np.isfinite(points).all() and inside):
        raise MeasurementRejected(
            "a ruler point lies outside the photo: tap two marks on the ruler in the picture",
            reason="ruler-invalid",
        )
    return points
