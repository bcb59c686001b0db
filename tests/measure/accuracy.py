"""Measure phantoms and compare with their truth: shared by tests/measure and bench/measure_bench.

A ``Case`` fixes everything random about one phantom (seed, tilt, area, shape); ``evaluate``
renders it, runs the product's calibration and measurement on the decoded JPEG exactly as the
service would, and returns the errors against the phantom's analytic truth. It measures both
the noisy tracing (what a nurse gives) and the exact projected outline (what the calibration
alone contributes).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from capture_api.measure.calibration import calibrate_from_marker
from capture_api.measure.wound import measure_wound
from tests.measure.phantom import SHAPES, render_phantom

BANDS: tuple[tuple[float, float], ...] = ((0.0, 15.0), (15.0, 30.0), (30.0, 45.0))
AREA_RANGE_CM2 = (0.5, 30.0)


@dataclass(frozen=True)
class Case:
    seed: int
    tilt_deg: float
    area_cm2: float
    kind: str


@dataclass(frozen=True)
class Result:
    case: Case
    area_error: float  # relative, signed (0.01 = +1 %)
    area_error_exact: float  # the same with the exact outline: calibration only
    length_error_mm: float
    width_error_mm: float
    length_mm: float
    width_mm: float
    perimeter_error: float  # relative
    tilt_error_deg: float
    mm_per_px: float

    def length_within(self, mm: float = 1.0, fraction: float = 0.03) -> bool:
        return abs(self.length_error_mm) <= mm + fraction * self.length_mm

    def width_within(self, mm: float = 1.0, fraction: float = 0.03) -> bool:
        return abs(self.width_error_mm) <= mm + fraction * self.width_mm


def cases(band: tuple[float, float], count: int, seed: int) -> list[Case]:
    """``count`` cases spread evenly over the tilt band and log-evenly over the areas."""
    rng = np.random.default_rng(seed)
    low, high = (math.log(a) for a in AREA_RANGE_CM2)
    tilts = (
        band[0] + (np.arange(count) + rng.uniform(0.1, 0.9, count)) * (band[1] - band[0]) / count
    )
    areas = np.exp(low + (rng.permutation(count) + rng.uniform(0, 1, count)) * (high - low) / count)
    return [
        Case(seed * 1000 + i, float(tilts[i]), float(areas[i]), SHAPES[(seed + i) % len(SHAPES)])
        for i in range(count)
    ]


def evaluate(case: Case, **render: Any) -> Result:
    """Render ``case`` (extra ``render_phantom`` options in ``render``) and measure it."""
    phantom = render_phantom(
        case.seed, tilt_deg=case.tilt_deg, area_cm2=case.area_cm2, kind=case.kind, **render
    )
    calibration = calibrate_from_marker(phantom.image)
    traced = measure_wound(phantom.tracing_px, calibration)
    exact = measure_wound(phantom.outline_px, calibration)
    assert calibration.tilt_deg is not None
    return Result(
        case=case,
        area_error=traced.area_cm2 / phantom.area_cm2 - 1,
        area_error_exact=exact.area_cm2 / phantom.area_cm2 - 1,
        length_error_mm=traced.length_mm - phantom.length_mm,
        width_error_mm=traced.width_mm - phantom.width_mm,
        length_mm=phantom.length_mm,
        width_mm=phantom.width_mm,
        perimeter_error=traced.perimeter_mm / phantom.perimeter_mm - 1,
        tilt_error_deg=calibration.tilt_deg - case.tilt_deg,
        mm_per_px=traced.quality.mm_per_px,
    )


def median_abs(values: Sequence[float]) -> float:
    return statistics.median(abs(v) for v in values)


def p95_abs(values: Sequence[float]) -> float:
    """95th percentile of absolute values (nearest rank)."""
    ordered = sorted(abs(v) for v in values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
