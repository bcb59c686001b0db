"""The nurse's tracing of a wound edge: checked before anything is measured from it.

An outline is a closed polygon in image pixel coordinates (SCOORD convention, see
``geometry``). It is refused, with a message the person tracing can act on, when it has
fewer than 3 distinct points, leaves the image, encloses no area, or crosses itself (a
figure-eight has no meaningful area: the shoelace formula would subtract one loop from the
other). Repeated consecutive points and a closing point equal to the first are dropped.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from capture_api.exceptions import MeasurementRejected
from capture_api.measure.geometry import Points, as_points, polygon_area

__all__ = ["MAX_OUTLINE_POINTS", "validate_outline"]

MAX_OUTLINE_POINTS = 5000
_MIN_AREA_PX = 4.0  # below two by two pixels nothing is measurable


def validate_outline(points: object, image_size: tuple[int, int]) -> Points:
    """The outline as a clean ``(n, 2)`` float array, or ``MeasurementRejected``.

    ``image_size`` is ``(columns, rows)``.
    """
    outline = _as_outline(points)
    outline = _drop_repeats(outline)
    if len(outline) < 3:
        raise MeasurementRejected(
            f"the wound outline has {len(outline)} distinct point(s): trace around the whole "
            "wound edge (at least 3 points)",
            reason="outline-too-few-points",
        )
    _check_inside(outline, image_size)
    crossing = first_self_intersection(outline)
    if crossing is not None:
        i, j = crossing
        raise MeasurementRejected(
            f"the wound outline crosses itself (segment {i + 1} crosses segment {j + 1}): "
            "trace the edge once around, without loops",
            reason="outline-self-intersecting",
        )
    if polygon_area(outline) < _MIN_AREA_PX:
        raise MeasurementRejected(
            "the wound outline encloses no area: trace around the wound edge, not along a line",
            reason="outline-empty",
        )
    return outline


def _as_outline(points: object) -> Points:
    try:
        outline = as_points(points)
    except (ValueError, TypeError) as exc:
        raise MeasurementRejected(
            "the wound outline must be a list of (x, y) pixel positions",
            reason="outline-malformed",
        ) from exc
    if len(outline) > MAX_OUTLINE_POINTS:
        raise MeasurementRejected(
            f"the wound outline has {len(outline)} points, more than {MAX_OUTLINE_POINTS}: "
            "simplify the tracing",
            reason="outline-too-many-points",
        )
    if not np.all(np.isfinite(outline)):
        raise MeasurementRejected(
            "the wound outline contains a position that is not a number",
            reason="outline-malformed",
        )
    return outline


def _drop_repeats(outline: Points) -> Points:
    """Without consecutive duplicates, and without a closing point equal to the first."""
    if len(outline) == 0:
        return outline
    keep = np.ones(len(outline), dtype=bool)
    keep[1:] = np.any(np.diff(outline, axis=0) != 0, axis=1)
    outline = outline[keep]
    while len(outline) > 1 and np.array_equal(outline[0], outline[-1]):
        outline = outline[:-1]
    return outline


def _check_inside(outline: Points, image_size: tuple[int, int]) -> None:
    columns, rows = image_size
    outside = (
        (outline[:, 0] < 0)
        | (outline[:, 0] > columns)
        | (outline[:, 1] < 0)
        | (outline[:, 1] > rows)
    )
    if np.any(outside):
        x, y = outline[int(np.argmax(outside))]
        raise MeasurementRejected(
            f"the wound outline leaves the photo (point {x:.0f}, {y:.0f} is outside "
            f"{columns} x {rows}): the whole wound must be in the picture",
            reason="outline-outside-image",
        )


def first_self_intersection(outline: Points) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges ``(i, j)`` that touch or cross, else ``None``.

    Edge ``k`` runs from point ``k`` to point ``k + 1`` (the last one closes the polygon).
    One vectorised orientation test per edge against all later edges: O(n^2) work but only
    O(n) Python steps, fast enough for a few thousand points.
    """
    start = outline
    end = np.roll(outline, -1, axis=0)
    n = len(outline)
    for i in range(n - 2):
        j = np.arange(i + 2, n if i > 0 else n - 1)  # skip neighbours (edge n-1 touches edge 0)
        if len(j) == 0:
            continue
        hit = _segments_intersect(start[i], end[i], start[j], end[j])
        if np.any(hit):
            return i, int(j[int(np.argmax(hit))])
    return None


def _segments_intersect(p: Points, q: Points, r: Points, s: Points) -> npt.NDArray[np.bool_]:
    """Whether segment ``p-q`` meets each segment ``r[k]-s[k]`` (touching counts)."""
    d1 = _cross(r, s, p)
    d2 = _cross(r, s, q)
    d3 = _cross(p, q, r)
    d4 = _cross(p, q, s)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)
    touching = (
        ((d1 == 0) & _on_segment(r, s, p))
        | ((d2 == 0) & _on_segment(r, s, q))
        | ((d3 == 0) & _on_segment(p, q, r))
        | ((d4 == 0) & _on_segment(p, q, s))
    )
    return np.asarray(proper | touching)


def _cross(a: Points, b: Points, c: Points) -> npt.NDArray[np.float64]:
    """z of (b - a) x (c - a), broadcast over rows."""
    ab = np.atleast_2d(b - a)
    ac = np.atleast_2d(c - a)
    return np.asarray(ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0])


def _on_segment(a: Points, b: Points, c: Points) -> npt.NDArray[np.bool_]:
    """Whether collinear point(s) ``c`` lie within the bounding box of ``a-b``."""
    a2, b2, c2 = np.atleast_2d(a), np.atleast_2d(b), np.atleast_2d(c)
    low = np.minimum(a2, b2)
    high = np.maximum(a2, b2)
    return np.asarray(np.all((c2 >= low) & (c2 <= high), axis=1))
