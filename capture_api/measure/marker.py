"""Find the printed calibration marker in a photo, to sub-pixel precision, or say why not.

The sticker (``capture_api.measure.sticker``) carries one ArUco marker from OpenCV's
``DICT_4X4_50`` dictionary: 4x4 data cells inside a one-cell black border, so 6x6 cells, in a
white quiet zone. **The marker id is its printed side in millimetres**: ids 20, 30 and 40 are
20, 30 and 40 mm markers. A marker of another id (a demo marker, another product's) is ignored,
so a wrong sticker can never give a plausible but wrong scale.

Steps:

1. ``cv2.aruco.ArucoDetector`` finds and decodes candidate quadrilaterals (on a copy reduced
   to about 2000 px for speed; corners are then scaled back).
2. Each corner is refined on the full-resolution photo: the white-to-black transition is
   located with sub-pixel interpolation on many short profiles across each of the four outer
   edges, a straight line is fitted to each edge, and adjacent lines are intersected. Using
   hundreds of edge points instead of four corner guesses is what makes the scale accurate to
   a fraction of a percent (see docs/wound-measurement.md).
3. The rectified marker is read back cell by cell, with the quiet zone around it: a finger,
   a dressing or a shadow over part of the marker changes cells the detector may have
   tolerated (it corrects a bit error) and is reported as "partly hidden".

Failures raise ``MeasurementRejected`` with ``reason`` ``no-marker``, ``marker-too-small`` or
``marker-hidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt

from capture_api.exceptions import MeasurementRejected
from capture_api.measure.geometry import Points, from_opencv

__all__ = [
    "CELLS",
    "MARKER_DICTIONARY",
    "MARKER_IDS",
    "MIN_MARKER_SIDE_PX",
    "DetectedMarker",
    "MarkerSpec",
    "detect_marker",
    "marker_cells",
    "marker_spec",
]

Image = npt.NDArray[np.uint8]

#: OpenCV predefined dictionary of the sticker's marker.
MARKER_DICTIONARY = cv2.aruco.DICT_4X4_50
#: The marker ids the sticker uses; each id is the marker's printed side in millimetres.
MARKER_IDS: tuple[int, ...] = (20, 30, 40)
#: Below this side length (pixels) the corners are too imprecise for a measurement.
MIN_MARKER_SIDE_PX = 64.0
#: Cells across the marker, border included (4 data cells + 2 border cells).
CELLS = 6

_DETECT_MAX_SIDE = 2048  # detection runs on a copy no larger than this
_EDGE_FRACTION = (0.12, 0.88)  # part of each edge used for the line fit (corners excluded)
_MIN_CONTRAST = 40.0  # grey levels between the black border and the white quiet zone


@dataclass(frozen=True)
class MarkerSpec:
    """A marker the sticker prints: its id and side length in millimetres."""

    marker_id: int
    side_mm: float

    @property
    def cell_mm(self) -> float:
        return self.side_mm / CELLS


@dataclass(frozen=True)
class DetectedMarker:
    """A marker found in a photo.

    ``corners`` are in SCOORD image coordinates (see ``geometry``), in the marker's own order:
    its top-left, top-right, bottom-right and bottom-left corner as printed (top = the edge
    towards the sticker's "head" arrow), wherever they are in the photo.
    ``edge_residual_px`` is the RMS distance of the measured edge points from the fitted
    straight edges: large when the sticker is bent, blurred or the lens distorts strongly.
    """

    spec: MarkerSpec
    corners: Points
    edge_residual_px: float

    @property
    def side_px(self) -> float:
        """Mean length of the four sides in the photo, in pixels."""
        sides = np.roll(self.corners, -1, axis=0) - self.corners
        return float(np.linalg.norm(sides, axis=1).mean())


def marker_spec(marker_id: int) -> MarkerSpec:
    """The spec of one of the sticker's markers (``ValueError`` for any other id)."""
    if marker_id not in MARKER_IDS:
        raise ValueError(f"marker id {marker_id} is not one of the sticker's {MARKER_IDS}")
    return MarkerSpec(marker_id, float(marker_id))


@cache
def _dictionary() -> cv2.aruco.Dictionary:
    return cv2.aruco.getPredefinedDictionary(MARKER_DICTIONARY)


@cache
def marker_cells(marker_id: int) -> npt.NDArray[np.bool_]:
    """The 6x6 cell pattern of a marker, border included; ``True`` is black."""
    image = cv2.aruco.generateImageMarker(_dictionary(), marker_id, CELLS * 10, borderBits=1)
    cells: npt.NDArray[np.bool_] = image[5::10, 5::10] < 128
    cells.setflags(write=False)
    return cells


def detect_marker(image: Image, *, min_side_px: float = MIN_MARKER_SIDE_PX) -> DetectedMarker:
    """The sticker's marker in ``image`` (grey or BGR ``uint8``), refined to sub-pixel."""
    grey = _grey(image)
    found, rejected = _detect(grey)
    if not found:
        if _hidden_candidate(grey, rejected):
            raise _hidden("the calibration marker is partly hidden or in shadow")
        raise MeasurementRejected(
            "no calibration marker found in the photo: put the printed sticker flat on the skin "
            "beside the wound, fully visible and in focus, and take the photo again",
            reason="no-marker",
        )
    marker_id, rough = max(found, key=lambda item: _perimeter(item[1]))
    spec = marker_spec(marker_id)
    if _perimeter(rough) / 4 < min_side_px:
        raise MeasurementRejected(
            f"the calibration marker is only {_perimeter(rough) / 4:.0f} pixels wide in the "
            f"photo (at least {min_side_px:.0f} are needed): move the phone closer",
            reason="marker-too-small",
        )
    corners, residual = _refine(grey, rough, spec)
    _check_cells(grey, corners, marker_id)
    return DetectedMarker(spec, from_opencv(corners), residual)


def _grey(image: Image) -> npt.NDArray[np.uint8]:
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    raise ValueError(f"expected a grey or BGR image, got shape {image.shape}")


def _perimeter(corners: Points) -> float:
    return float(np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1).sum())


# --- detection --------------------------------------------------------------------------------


def _detect(grey: npt.NDArray[np.uint8]) -> tuple[list[tuple[int, Points]], list[Points]]:
    """Our markers (id, 4 corners in OpenCV coordinates) and the rejected candidate quads."""
    scale = min(1.0, _DETECT_MAX_SIDE / max(grey.shape))
    small = grey
    if scale < 1.0:
        resized = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        small = np.asarray(resized, dtype=np.uint8)
    params = cv2.aruco.DetectorParameters()
    params.minMarkerPerimeterRate = 0.01  # find small markers, then say they are too small
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_NONE  # refined below, full size
    detector = cv2.aruco.ArucoDetector(_dictionary(), params)
    corners, ids, rejected = detector.detectMarkers(small)

    def full(quad: object) -> Points:
        return np.asarray((np.asarray(quad, dtype=np.float64).reshape(4, 2) + 0.5) / scale - 0.5)

    found = []
    if ids is not None:
        for quad, marker_id in zip(corners, ids.ravel(), strict=True):
            if int(marker_id) in MARKER_IDS:
                found.append((int(marker_id), full(quad)))
    return found, [full(quad) for quad in rejected]


# --- sub-pixel refinement ---------------------------------------------------------------------


def _refine(grey: npt.NDArray[np.uint8], corners: Points, spec: MarkerSpec) -> tuple[Points, float]:
    """Corners from four straight-line fits to the marker's outer edges (two passes)."""
    image = grey.astype(np.float32)
    residual = 0.0
    for _ in range(2):
        lines = []
        residuals = []
        for k in range(4):
            points = _edge_points(image, corners, k)
            if len(points) < 6:
                raise _hidden("an edge of the calibration marker is not visible")
            line, rms = _fit_line(points)
            lines.append(line)
            residuals.append(rms)
        corners = np.array([_intersect(lines[k - 1], lines[k]) for k in range(4)])
        residual = float(np.sqrt(np.mean(np.square(residuals))))
    return corners, residual


def _edge_points(image: npt.NDArray[np.float32], corners: Points, k: int) -> Points:
    """Sub-pixel positions of the white-to-black transition along edge ``k`` (corner k to k+1).

    Each profile runs along the edge's normal from outside (the white quiet zone) to inside
    (the black border), never further than ~0.45 cell either way, so it sees only the border
    and the quiet zone. The position is where the profile crosses halfway between its
    outside and inside levels, interpolated linearly between samples.
    """
    start, end = corners[k], corners[(k + 1) % 4]
    length = float(np.linalg.norm(end - start))
    direction = (end - start) / length
    centre = corners.mean(axis=0)
    normal = np.array([-direction[1], direction[0]])
    if np.dot(normal, (start + end) / 2 - centre) < 0:
        normal = -normal  # pointing out of the marker
    half = float(np.clip(0.45 * length / CELLS, 2.5, 15.0))
    steps = np.linspace(half, -half, int(np.ceil(2 * half / 0.25)) + 1)  # outside -> inside
    count = int(np.clip(length / 2, 12, 300))
    along = np.linspace(*_EDGE_FRACTION, count)
    base = start[None, :] + along[:, None] * (end - start)[None, :]
    samples = base[:, None, :] + steps[None, :, None] * normal[None, None, :]
    profiles = _sample(image, samples)
    edge = steps.size // 4
    outside = profiles[:, :edge].mean(axis=1)
    inside = profiles[:, -edge:].mean(axis=1)
    good = outside - inside > _MIN_CONTRAST
    offsets = np.array(
        [
            _crossing(p, (o + i) / 2, steps)
            for p, o, i in zip(profiles, outside, inside, strict=True)
        ]
    )
    good &= np.isfinite(offsets)
    return np.asarray(base[good] + offsets[good, None] * normal[None, :])


def _sample(
    image: npt.NDArray[np.float32], points: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Bilinear grey values at OpenCV positions (any leading shape, last axis x, y)."""
    flat = points.reshape(-1, 2).astype(np.float32)
    count = len(flat)
    width = 1024  # remap wants maps under 32767 rows and columns: fold the list into rows
    padded = np.zeros((-(-count // width) * width, 2), np.float32)
    padded[:count] = flat
    values = cv2.remap(
        image,
        padded[:, 0].reshape(-1, width),
        padded[:, 1].reshape(-1, width),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).reshape(-1)[:count]
    return np.asarray(values, dtype=np.float64).reshape(points.shape[:-1])


def _crossing(
    profile: npt.NDArray[np.float64], level: float, steps: npt.NDArray[np.float64]
) -> float:
    """Offset where a light-to-dark profile first falls below ``level`` (NaN if never)."""
    below = np.flatnonzero(profile < level)
    if below.size == 0 or below[0] == 0:
        return float("nan")
    i = int(below[0])
    a, b = profile[i - 1], profile[i]
    t = (a - level) / (a - b)
    return float(steps[i - 1] + t * (steps[i] - steps[i - 1]))


def _fit_line(points: Points) -> tuple[npt.NDArray[np.float64], float]:
    """A robust total-least-squares line ``(nx, ny, c)`` with ``nx*x + ny*y = c``, and its RMS."""
    weights = np.ones(len(points))
    for _ in range(3):  # reweighted: edge points on a smudge or a speck count less
        centre = np.average(points, axis=0, weights=weights)
        spread = (points - centre) * np.sqrt(weights)[:, None]
        _, _, vt = np.linalg.svd(spread, full_matrices=False)
        normal = vt[1]
        distance = (points - centre) @ normal
        scale = max(1.4826 * float(np.median(np.abs(distance))), 0.05)
        weights = 1.0 / np.maximum(1.0, np.abs(distance) / (2.0 * scale))
    rms = float(np.sqrt(np.mean(np.square(distance))))
    return np.array([normal[0], normal[1], float(centre @ normal)]), rms


def _intersect(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    matrix = np.array([a[:2], b[:2]])
    return np.asarray(np.linalg.solve(matrix, np.array([a[2], b[2]])))


# --- reading the cells back -------------------------------------------------------------------


def _cell_grid(corners: Points, cells: range) -> npt.NDArray[np.float64]:
    """OpenCV positions of sample points in each cell listed, 3x3 points per cell centre area.

    Cell ``(row, col)`` with ``0 <= row, col < 6`` is the marker; -1 and 6 are the quiet zone.
    """
    unit = np.array([[0, 0], [CELLS, 0], [CELLS, CELLS], [0, CELLS]], dtype=np.float32)
    homography = cv2.getPerspectiveTransform(unit, corners.astype(np.float32))
    offsets = np.array([0.3, 0.5, 0.7])
    grid = []
    for row in cells:
        for col in cells:
            for dy in offsets:
                for dx in offsets:
                    grid.append((col + dx, row + dy))
    points = np.asarray(grid, dtype=np.float64)
    mapped = cv2.perspectiveTransform(points.reshape(-1, 1, 2), homography).reshape(-1, 2)
    return np.asarray(mapped, dtype=np.float64).reshape(len(cells), len(cells), 9, 2)


def _cell_means(
    grey: npt.NDArray[np.uint8], corners: Points, cells: range
) -> npt.NDArray[np.float64]:
    samples = _sample(grey.astype(np.float32), _cell_grid(corners, cells))
    return np.asarray(samples.mean(axis=-1))


def _check_cells(grey: npt.NDArray[np.uint8], corners: Points, marker_id: int) -> None:
    """Every cell and the quiet zone around the marker must read back as printed.

    Each of the 9 sample points in the middle of every cell must be on the right side of
    the half-way grey level: a finger over part of a cell is enough to refuse.
    """
    samples = _sample(grey.astype(np.float32), _cell_grid(corners, range(-1, CELLS + 1)))
    expected = np.zeros((CELLS + 2, CELLS + 2), dtype=bool)
    expected[1:-1, 1:-1] = marker_cells(marker_id)
    means = samples.mean(axis=-1)
    black = float(np.median(means[expected]))
    white = float(np.median(means[~expected]))
    if white - black < _MIN_CONTRAST:
        raise _hidden("the calibration marker has too little contrast (shadow, glare or blur)")
    misread = (samples < (black + white) / 2) != expected[:, :, None]
    wrong = int(np.count_nonzero(misread.any(axis=-1)))
    if wrong:
        raise _hidden(
            f"the calibration marker is partly hidden or in shadow ({wrong} of its cells or of "
            "the white margin around it do not read as printed)"
        )


def _hidden_candidate(grey: npt.NDArray[np.uint8], candidates: list[Points]) -> bool:
    """Whether a rejected quad is one of our markers with a few cells covered."""
    for quad in candidates:
        if _perimeter(quad) / 4 < 20:
            continue
        means = _cell_means(grey, quad, range(CELLS))
        threshold = (means.min() + means.max()) / 2
        read = means < threshold
        for marker_id in MARKER_IDS:
            cells = marker_cells(marker_id)
            for turn in range(4):
                if np.count_nonzero(np.rot90(cells, turn) != read) <= 6:
                    return True
    return False


def _hidden(what: str) -> MeasurementRejected:
    return MeasurementRejected(
        f"{what}: keep fingers, dressings and shadows off the sticker and take the photo again",
        reason="marker-hidden",
    )
