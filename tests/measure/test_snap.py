"""Snap to edge: GrabCut, seeded by a rough tracing, lands on the synthetic wound's edge."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from capture_api.exceptions import MeasurementRejected
from capture_api.measure import snap_outline
from capture_api.measure.geometry import polygon_area
from tests.measure.phantom import Phantom


@pytest.mark.parametrize(("seed", "area", "grow"), [(21, 2.0, 1.12), (22, 12.0, 0.9)])
def test_a_rough_tracing_snaps_to_the_wound_edge(
    phantom: Callable[..., Phantom], seed: int, area: float, grow: float
) -> None:
    photo = phantom(seed, tilt_deg=15.0, area_cm2=area, kind="irregular")
    centre = photo.outline_px.mean(axis=0)
    rough = centre + (photo.outline_px - centre) * grow  # 12 % too wide / 10 % too narrow
    truth = polygon_area(photo.outline_px)
    snapped = snap_outline(photo.image, rough)
    rough_error = abs(polygon_area(rough) / truth - 1)
    snapped_error = abs(polygon_area(snapped) / truth - 1)
    assert rough_error > 0.18
    assert snapped_error < 0.03, snapped_error
    # and it is the same place, not just the same area: every snapped point near the true edge
    distances = _distance_to_polygon(snapped, photo.outline_px)
    assert np.median(distances) < 1.0 and distances.max() < 4.0, distances


def _distance_to_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    start = polygon[None, :, :]
    edge = np.roll(polygon, -1, axis=0)[None, :, :] - start
    t = np.clip(np.sum((points[:, None, :] - start) * edge, axis=2) / np.sum(edge**2, axis=2), 0, 1)
    nearest = start + t[:, :, None] * edge
    return np.asarray(np.linalg.norm(points[:, None, :] - nearest, axis=2).min(axis=1))


def test_snapping_needs_a_colour_photo(square_on: Phantom) -> None:
    grey = square_on.image[:, :, 0]
    with pytest.raises(ValueError, match="colour"):
        snap_outline(grey, square_on.outline_px)


def test_a_bad_tracing_is_refused_before_snapping(square_on: Phantom) -> None:
    with pytest.raises(MeasurementRejected) as caught:
        snap_outline(square_on.image, [(10, 10), (20, 20)])
    assert caught.value.reason == "outline-too-few-points"
