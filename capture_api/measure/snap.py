"""Optional "snap to edge": refine a rough wound tracing with OpenCV's GrabCut.

The rough outline seeds GrabCut (Rother, Kolmogorov, Blake, SIGGRAPH 2004) through a mask:
well inside the tracing is *probably* wound, a band outside it *probably* skin, and anything
further out surely skin. GrabCut then fits colour models to both and cuts along the strongest
edge near the tracing. The result is the boundary of the largest wound region, simplified to
about half a pixel and returned as a new outline, for the person to accept or discard: it
never replaces the tracing silently.

Work is done on a crop around the outline, reduced to at most ``_MAX_SIDE`` pixels so a
12 MP photo snaps in well under a second.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from capture_api.exceptions import MeasurementRejected
from capture_api.measure.geometry import Points, from_opencv, polygon_area, to_opencv
from capture_api.measure.marker import Image
from capture_api.measure.outline import first_self_intersection, validate_outline

__all__ = ["snap_outline"]

_MAX_SIDE = 640
_AREA_RATIO = (0.5, 2.0)  # a snapped area outside this range of the tracing is not trusted


def snap_outline(
    image: Image, outline: object, *, band_px: float | None = None, iterations: int = 5
) -> Points:
    """A refined outline (SCOORD pixels) near ``outline``, or ``MeasurementRejected``.

    ``band_px`` is how far (full-resolution pixels) the true edge may be from the tracing;
    by default 15 % of the traced wound's equivalent diameter, at least 6 pixels.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("snapping needs the colour (BGR) photo")
    size = (int(image.shape[1]), int(image.shape[0]))
    rough = validate_outline(outline, size)
    area = polygon_area(rough)
    band = band_px if band_px is not None else max(6.0, 0.15 * 2 * math.sqrt(area / math.pi))
    x0, y0, x1, y1 = _crop(rough, band, size)
    scale = min(1.0, _MAX_SIDE / max(x1 - x0, y1 - y0))
    crop = image[y0:y1, x0:x1]
    if scale < 1.0:
        resized = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        crop = np.asarray(resized, dtype=np.uint8)
    local = (to_opencv(rough) - [x0, y0] + 0.5) * scale - 0.5
    mask = _seed_mask(crop.shape[:2], local, band * scale)
    background = np.zeros((1, 65), np.float64)
    foreground = np.zeros((1, 65), np.float64)
    no_rect = (0, 0, 1, 1)  # ignored with GC_INIT_WITH_MASK
    cv2.grabCut(crop, mask, no_rect, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    wound = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    contour = _largest_contour(wound)
    snapped = from_opencv((contour + 0.5) / scale - 0.5 + [x0, y0])
    return _accept(snapped, area, size)


def _crop(outline: Points, band: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    margin = 2 * band + 4
    low = np.floor(outline.min(axis=0) - margin).astype(int)
    high = np.ceil(outline.max(axis=0) + margin).astype(int)
    return (
        max(0, int(low[0])),
        max(0, int(low[1])),
        min(size[0], int(high[0])),
        min(size[1], int(high[1])),
    )


def _seed_mask(shape: tuple[int, ...], outline: Points, band: float) -> npt.NDArray[np.uint8]:
    """GrabCut's seed: sure background far out, probable background/foreground near the line."""
    inside = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(outline).astype(np.int32)], 1)
    radius = max(1, round(band))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near = cv2.dilate(inside, kernel)
    core = cv2.erode(inside, kernel)
    mask = np.full(shape[:2], cv2.GC_BGD, np.uint8)
    mask[near == 1] = cv2.GC_PR_BGD
    mask[inside == 1] = cv2.GC_PR_FGD
    mask[core == 1] = cv2.GC_FGD
    return mask


def _largest_contour(wound: npt.NDArray[np.uint8]) -> Points:
    contours, _ = cv2.findContours(wound, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise _failed()
    largest = max(contours, key=cv2.contourArea)
    simplified = cv2.approxPolyDP(largest, 0.5, True).reshape(-1, 2).astype(np.float64)
    return _offset_outwards(simplified, 0.5)


def _offset_outwards(polygon: Points, distance: float) -> Points:
    """Move each vertex ``distance`` along its outward normal.

    ``findContours`` returns the centres of the boundary pixels, half a pixel inside the
    region's true edge; without this every snapped area would be short by half a perimeter.
    """
    if len(polygon) < 3:
        return polygon
    previous = polygon - np.roll(polygon, 1, axis=0)
    following = np.roll(polygon, -1, axis=0) - polygon
    normals = []
    for edge in (previous, following):
        lengths = np.linalg.norm(edge, axis=1, keepdims=True)
        normals.append(np.column_stack([edge[:, 1], -edge[:, 0]]) / np.maximum(lengths, 1e-9))
    normal = normals[0] + normals[1]
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    signed = np.sum(
        polygon[:, 0] * np.roll(polygon[:, 1], -1) - np.roll(polygon[:, 0], -1) * polygon[:, 1]
    )
    outward = 1.0 if signed > 0 else -1.0  # orientation decides which normal points out
    return np.asarray(polygon + outward * distance * normal)


def _accept(snapped: Points, traced_area: float, size: tuple[int, int]) -> Points:
    clipped = np.clip(snapped, 0, [size[0], size[1]])
    if len(clipped) < 3 or first_self_intersection(clipped) is not None:
        raise _failed()
    ratio = polygon_area(clipped) / traced_area
    if not _AREA_RATIO[0] <= ratio <= _AREA_RATIO[1]:
        raise _failed()
    return validate_outline(clipped, size)


def _failed() -> MeasurementRejected:
    return MeasurementRejected(
        "snap to edge could not find the wound's edge near the tracing: keep the tracing as "
        "drawn, or trace again closer to the edge",
        reason="snap-failed",
    )
