"""The numbers' conventions on shapes whose answers are known by hand, and the ruler fallback."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from capture_api.exceptions import MeasurementRejected
from capture_api.measure import (
    Calibration,
    calibrate_from_marker,
    calibrate_from_ruler,
    measure_wound,
)
from capture_api.measure.sticker import sticker_layout
from tests.measure.phantom import Phantom, project

SIZE = (4032, 3024)


def _ruler_at(mm_per_px: float) -> Calibration:
    """A square-on ruler calibration of ``mm_per_px`` (100 px apart = 100 * mm_per_px mm)."""
    return calibrate_from_ruler((1000, 1000), (1100, 1000), 100 * mm_per_px, SIZE)


def test_rectangle_area_length_width_perimeter() -> None:
    calibration = _ruler_at(0.1)  # 10 px per mm
    # 300 px wide (30 mm across), 200 px tall (20 mm head-to-toe, photo up = head)
    m = measure_wound([(1000, 1000), (1300, 1000), (1300, 1200), (1000, 1200)], calibration)
    assert m.area_cm2 == pytest.approx(6.0)
    assert m.length_mm == pytest.approx(20.0)
    assert m.width_mm == pytest.approx(30.0)
    assert m.perimeter_mm == pytest.approx(100.0)
    assert not m.quality.perspective_corrected
    assert any("not corrected" in note for note in m.quality.notes)


def test_length_follows_the_given_head_direction() -> None:
    calibration = _ruler_at(0.1)
    rectangle = [(1000, 1000), (1300, 1000), (1300, 1200), (1000, 1200)]
    sideways = measure_wound(rectangle, calibration, head_direction=[(1000, 1000), (1300, 1000)])
    assert sideways.length_mm == pytest.approx(30.0)
    assert sideways.width_mm == pytest.approx(20.0)
    diagonal = measure_wound(rectangle, calibration, head_direction=[(0, 0), (1, 1)])
    extent = (300 + 200) / math.sqrt(2) / 10  # both diagonal extents of a 30 x 20 mm box
    assert diagonal.length_mm == pytest.approx(extent)
    assert diagonal.width_mm == pytest.approx(extent)
    assert diagonal.area_cm2 == pytest.approx(6.0)


def test_a_degenerate_head_direction_is_refused() -> None:
    with pytest.raises(MeasurementRejected) as caught:
        measure_wound(
            [(1000, 1000), (1300, 1000), (1300, 1200)],
            _ruler_at(0.1),
            head_direction=[(5, 5), (5, 5)],
        )
    assert caught.value.reason == "head-direction-invalid"


@pytest.mark.parametrize(
    ("start", "end", "mm", "why"),
    [
        ((10, 10), (20, 10), 10.0, "further apart"),
        ((10, 10), (900, 10), 0.0, "between 0 and 1000"),
        ((10, 10), (9000, 10), 10.0, "outside the photo"),
    ],
)
def test_bad_ruler_input_is_refused(start: object, end: object, mm: float, why: str) -> None:
    with pytest.raises(MeasurementRejected, match=why):
        calibrate_from_ruler(start, end, mm, SIZE)


def _sticker_ruler_ends(photo: Phantom) -> tuple[np.ndarray, np.ndarray]:
    """Image positions of the sticker ruler's 0 and 40 mm ticks (from the layout, projected)."""
    layout = sticker_layout(30)
    half = layout.spec.side_mm / 2
    mx, my = layout.marker_origin[0] + half, layout.marker_origin[1] + half
    baseline = layout.height - 11.0 + 0.5  # the footer's ruler line (sticker._ruler)
    ticks = np.array([[2.0 - mx, my - baseline], [42.0 - mx, my - baseline]])
    start, end = project(photo.plane_to_image, ticks)
    return start, end


def test_ruler_fallback_square_on_agrees_with_the_marker(square_on: Phantom) -> None:
    start, end = _sticker_ruler_ends(square_on)
    ruler = measure_wound(square_on.outline_px, calibrate_from_ruler(start, end, 40.0, SIZE))
    marker = measure_wound(square_on.outline_px, calibrate_from_marker(square_on.image))
    assert ruler.calibration.method.value == "ruler-two-point"
    assert abs(marker.area_cm2 / square_on.area_cm2 - 1) < 0.005
    assert abs(ruler.area_cm2 / square_on.area_cm2 - 1) < 0.05  # 8 degrees of tilt remain


def test_ruler_fallback_is_wrong_when_tilted_which_is_why_it_is_marked(
    phantom: Callable[..., Phantom],
) -> None:
    tilted = phantom(11, tilt_deg=38.0, area_cm2=4.0, kind="ellipse")
    start, end = _sticker_ruler_ends(tilted)
    ruler = measure_wound(tilted.outline_px, calibrate_from_ruler(start, end, 40.0, SIZE))
    marker = measure_wound(tilted.outline_px, calibrate_from_marker(tilted.image))
    assert abs(marker.area_cm2 / tilted.area_cm2 - 1) < 0.005
    assert abs(ruler.area_cm2 / tilted.area_cm2 - 1) > 0.05
    assert ruler.quality.tilt_deg is None and not ruler.quality.perspective_corrected
    assert marker.quality.perspective_corrected
    assert marker.quality.tilt_deg == pytest.approx(38.0, abs=1.5)
    assert any("Steep camera angle" in note for note in marker.quality.notes)
