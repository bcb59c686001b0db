"""Optional "snap to edge": refine a rough wound tracing with OpenCV's GrabCut.

The rough outline seeds GrabCut (Rother, Kolmogorov, Blake, SIGGRAPH 2004) through a mask:
deep inside the tracing is surely wound, a band on both sides of the traced line is
*probably* wound, and everything further out is surely skin. GrabCut fits colour models to
both and peels the skin-coloured pixels off the band, whichever side of the line the true
edge lies. The boundary of the largest wound region is then moved, vertex by vertex, to the
sub-pixel point where the colour is half-way between wound and skin (GrabCut labels whole
pixels and keeps part of the blurred rim). The result is a new outline for the person to
accept or discard: it never replaces the tracing silently.

GrabCut runs on a crop around the outline, reduced to at most ``_MAX_SIDE`` pixels, so a
12 MP photo snaps in about a second; the refinement uses the full-resolution crop.
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
_AREA_RATIO = (0.5, 2.0)  # a snapped area outside this ratio to the traced one is not trusted
_REACH_PX = 4.0  # how far the sub-pixel refinement looks across the GrabCut edge


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
    contour = (_largest_contour(wound) + 0.5) / scale - 0.5  # full-resolution crop pixels
    full = image[y0:y1, x0:x1]
    refined = _refine_edge(full, contour, _colours(full, contour))
    return _accept(from_opencv(refined + np.array([x0, y0])), area, size)


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
    mask[near == 1] = cv2.GC_PR_FGD
    mask[core == 1] = cv2.GC_FGD
    return mask


def _largest_contour(wound: npt.NDArray[np.uint8]) -> Points:
    contours, _ = cv2.findContours(wound, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise _failed()
    largest = max(contours, key=cv2.contourArea)
    return np.asarray(cv2.approxPolyDP(largest, 0.5, True).reshape(-1, 2), dtype=np.float64)


def _colours(crop: Image, contour: Points) -> tuple[npt.NDArray[np.float64], ...]:
    """Median wound colour well inside the contour and skin colour in a ring just outside."""
    region = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(region, [np.round(contour).astype(np.int32)], 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    inner = cv2.erode(region, kernel, iterations=2)
    ring = cv2.dilate(region, kernel, iterations=4) - cv2.dilate(region, kernel, iterations=1)
    if not inner.any() or not ring.any():
        raise _failed()
    pixels = crop.reshape(-1, 3).astype(np.float64)
    wound = np.median(pixels[inner.ravel() == 1], axis=0)
    skin = np.median(pixels[ring.ravel() == 1], axis=0)
    return wound, skin


def _refine_edge(
    crop: Image, contour: Points, colours: tuple[npt.NDArray[np.float64], ...]
) -> Points:
    """Move each vertex to where the colour is half-way between wound and skin, along its normal.

    GrabCut labels whole pixels and tends to keep the blurred rim; the half-way crossing of a
    profile across the edge is the edge's sub-pixel position (as for the marker's edges). A
    vertex whose profile never crosses (a gap in contrast) stays where GrabCut put it.
    """
    wound, skin = colours
    axis = wound - skin
    contrast = float(axis @ axis)
    if contrast < 20.0**2:
        return contour
    smooth = cv2.GaussianBlur(crop, (0, 0), 1.0).astype(np.float32)
    normal = _outward_normals(contour)
    steps = np.linspace(-_REACH_PX, _REACH_PX, 4 * int(_REACH_PX) * 2 + 1)  # inside -> outside
    points = contour[:, None, :] + steps[None, :, None] * normal[:, None, :]
    colour = np.stack([_remap(smooth[:, :, c], points) for c in range(3)], axis=-1)
    level = (colour - skin) @ axis / contrast  # 1 = wound, 0 = skin
    refined = contour.copy()
    for k, profile in enumerate(level):
        below = np.flatnonzero(profile < 0.5)
        if below.size == 0 or below[0] == 0:
            continue
        i = int(below[0])
        t = (profile[i - 1] - 0.5) / (profile[i - 1] - profile[i])
        offset = steps[i - 1] + t * (steps[i] - steps[i - 1])
        refined[k] = contour[k] + offset * normal[k]
    return refined


def _remap(
    channel: npt.NDArray[np.float32], points: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    maps = points.astype(np.float32)
    values = cv2.remap(
        channel, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(values, dtype=np.float64)


def _outward_normals(polygon: Points) -> Points:
    """Unit normals pointing out of the polygon, averaged over each vertex's two edges."""
    previous = polygon - np.roll(polygon, 1, axis=0)
    following = np.roll(polygon, -1, axis=0) - polygon
    normals = []
    for edge in (previous, following):
        lengths = np.linalg.norm(edge, axis=1, keepdims=True)
        normals.append(np.column_stack([edge[:, 1], -edge[:, 0]]) / np.maximum(lengths, 1e-9))
    normal = normals[0] + normals[1]
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    x, y = polygon[:, 0], polygon[:, 1]
    signed = float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    return np.asarray(normal if signed > 0 else -normal)


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
