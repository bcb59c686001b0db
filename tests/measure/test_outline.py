"""Tracings that cannot be measured are refused with a message and a stable reason code."""

from __future__ import annotations

import time

import numpy as np
import pytest

from capture_api.exceptions import InputRejected, MeasurementRejected
from capture_api.measure.outline import first_self_intersection, validate_outline

SIZE = (4032, 3024)
SQUARE = [(100, 100), (200, 100), (200, 200), (100, 200)]


def _reason(points: object, size: tuple[int, int] = SIZE) -> str:
    with pytest.raises(MeasurementRejected) as caught:
        validate_outline(points, size)
    assert isinstance(caught.value, InputRejected)
    assert str(caught.value)
    return caught.value.reason


def test_a_simple_polygon_is_accepted_and_cleaned() -> None:
    points = [*SQUARE, SQUARE[-1], SQUARE[0]]  # a repeated point and the closing point
    outline = validate_outline(points, SIZE)
    assert outline.shape == (4, 2)


@pytest.mark.parametrize(
    "points",
    [[], [(10, 10)], [(10, 10), (20, 20)], [(10, 10), (20, 20), (20, 20), (10, 10)]],
)
def test_fewer_than_three_distinct_points_are_refused(points: list[tuple[int, int]]) -> None:
    assert _reason(points) == "outline-too-few-points"


def test_a_figure_eight_is_refused() -> None:
    assert _reason([(100, 100), (200, 200), (200, 100), (100, 200)]) == "outline-self-intersecting"


def test_a_loop_that_only_touches_itself_is_refused() -> None:
    touching = [(0, 0), (100, 0), (100, 100), (50, 0), (0, 100)]  # vertex 3 lies on edge 0
    assert _reason([(x + 10, y + 10) for x, y in touching]) == "outline-self-intersecting"


def test_points_outside_the_image_are_refused() -> None:
    assert _reason([(100, 100), (5000, 100), (100, 300)]) == "outline-outside-image"
    assert _reason([(100, 100), (200, -1), (100, 300)]) == "outline-outside-image"


def test_the_image_edges_themselves_are_inside() -> None:
    validate_outline([(0, 0), (4032, 0), (4032, 3024), (0, 3024)], SIZE)


def test_a_line_encloses_nothing() -> None:
    assert _reason([(100, 100), (200, 100), (300, 100.01)]) == "outline-empty"


@pytest.mark.parametrize("points", ["abc", [(1, 2, 3)], [(1, float("nan")), (2, 2), (3, 1)]])
def test_malformed_input_is_refused(points: object) -> None:
    assert _reason(points) == "outline-malformed"


def test_a_long_smooth_tracing_is_checked_quickly() -> None:
    t = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    circle = np.column_stack([2000 + 800 * np.cos(t), 1500 + 800 * np.sin(t)])
    started = time.perf_counter()
    assert first_self_intersection(circle) is None
    assert time.perf_counter() - started < 5  # generous: O(n) numpy steps, not O(n^2) Python
    crossed = circle.copy()
    crossed[[10, 1500]] = crossed[[1500, 10]]
    assert first_self_intersection(crossed) is not None
