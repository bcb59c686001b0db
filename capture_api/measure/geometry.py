"""Plane geometry for wound measurement: homographies, polygon area, perimeter and extents.

Pure numpy, no image processing. Conventions used across ``capture_api.measure``:

* **Image coordinates** are DICOM's SCOORD convention (PS3.3 C.18.6.1.2): ``(column, row)``
  in pixels, with ``(0, 0)`` the top-left corner of the top-left pixel, so the centre of that
  pixel is ``(0.5, 0.5)`` and the image spans ``[0, columns] x [0, rows]``. OpenCV reports
  positions with pixel centres at integers; ``from_opencv``/``to_opencv`` shift by half a pixel.
* **Plane coordinates** are millimetres in the skin plane, origin at the marker's centre,
  ``x`` towards the marker's right edge and ``y`` towards its top edge, which the sticker prints
  as the arrow to the patient's head. So ``+y`` is "towards the head" unless the caller gives
  another head-to-toe direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Points = npt.NDArray[np.float64]  # shape (n, 2)
Matrix = npt.NDArray[np.float64]  # shape (3, 3)

__all__ = [
    "Extents",
    "Matrix",
    "Points",
    "apply_homography",
    "extents",
    "from_opencv",
    "jacobian",
    "polygon_area",
    "polygon_perimeter",
    "to_opencv",
]


def as_points(values: object) -> Points:
    """A float64 ``(n, 2)`` array from any sequence of ``(x, y)`` pairs."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"expected (x, y) pairs, got an array of shape {array.shape}")
    return array


def from_opencv(points: Points) -> Points:
    """OpenCV positions (pixel centres at integers) to SCOORD positions (centres at +0.5)."""
    return points + 0.5


def to_opencv(points: Points) -> Points:
    """SCOORD positions (pixel centres at +0.5) to OpenCV positions (centres at integers)."""
    return points - 0.5


def apply_homography(matrix: Matrix, points: Points) -> Points:
    """Map points through a 3x3 homography; refuses points that land at or beyond infinity.

    A point on the far side of the plane's horizon line has a non-positive homogeneous scale:
    its "position" would be a mirror image, not a place on the skin.
    """
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ matrix.T
    scale = homogeneous[:, 2]
    if np.any(scale <= 1e-12 * np.abs(homogeneous[:, :2]).max(initial=1.0)):
        raise ValueError("a point lies on or beyond the horizon of the plane")
    return homogeneous[:, :2] / scale[:, None]


def jacobian(matrix: Matrix, point: Points) -> npt.NDArray[np.float64]:
    """The 2x2 derivative of the homography at one point: how a small step there maps."""
    x, y = float(point[0]), float(point[1])
    h = matrix
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    u = h[0, 0] * x + h[0, 1] * y + h[0, 2]
    v = h[1, 0] * x + h[1, 1] * y + h[1, 2]
    return np.array(
        [
            [(h[0, 0] * w - u * h[2, 0]) / w**2, (h[0, 1] * w - u * h[2, 1]) / w**2],
            [(h[1, 0] * w - v * h[2, 0]) / w**2, (h[1, 1] * w - v * h[2, 1]) / w**2],
        ]
    )


def polygon_area(points: Points) -> float:
    """Area of a simple closed polygon (shoelace formula), always positive."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_perimeter(points: Points) -> float:
    """Length of the closed polygon, closing edge included."""
    return float(np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1).sum())


@dataclass(frozen=True)
class Extents:
    """How far a shape reaches along a direction and across it (the same units as its points)."""

    along: float
    across: float


def extents(points: Points, direction: Points) -> Extents:
    """Extent along ``direction`` (a unit 2-vector) and along its perpendicular.

    The extent along a direction is the distance between the two supporting lines
    perpendicular to it: the longest head-to-toe reach when ``direction`` points to the head.
    """
    unit = direction / np.linalg.norm(direction)
    normal = np.array([-unit[1], unit[0]])
    along = points @ unit
    across = points @ normal
    return Extents(float(along.max() - along.min()), float(across.max() - across.min()))
