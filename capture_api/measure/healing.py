"""The healing trend of one wound: area over time, reduction since the first measurement and
over the last four weeks, and whether the wound is on track to heal.

The four-week percentage area reduction is the best-studied early predictor of healing:

* **Diabetic foot ulcers**: Sheehan P, Jones P, Caselli A, Giurini JM, Veves A. "Percent change
  in wound area of diabetic foot ulcers over a 4-week period is a robust predictor of complete
  healing in a 12-week prospective trial." Diabetes Care 2003;26(6):1879-82. Ulcers whose
  area fell by less than **53 %** in 4 weeks mostly did not heal in 12 weeks.
* **Venous leg ulcers**: Gelfand JM, Hoffstad O, Margolis DJ. "Surrogate endpoints for the
  treatment of venous leg ulcers." J Invest Dermatol 2002;119(6):1420-5; and Kantor J,
  Margolis DJ. "A multicentre study of percentage change in venous leg ulcer area as a
  prognostic index of healing at 24 weeks." Br J Dermatol 2000;142(5):960-4. About **40 %**
  reduction at 4 weeks separates ulcers likely to heal from those that are not.

Which threshold applies depends on the wound's aetiology, which capture does not know: the
caller passes the wound type, and ``wound_type_for_site`` offers a default from the site (foot
sites: diabetic foot ulcer; others: venous leg ulcer), which the clinician can override. The
flag is a prompt to reassess the treatment, not a diagnosis.

The 4-week reduction compares the latest measurement with the one taken closest to 28 days
before it, within 21 to 35 days (a weekly visit may slip by a week); without such a baseline
there is no 4-week figure and no flag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from capture_api.capture.anatomy import get_site
from capture_api.exceptions import InvalidMetadata

__all__ = [
    "FOUR_WEEKS",
    "HealingPoint",
    "HealingTrend",
    "WoundType",
    "healing_trend",
    "percent_reduction",
    "wound_type_for_site",
]

FOUR_WEEKS = dt.timedelta(days=28)
#: The window a 4-week baseline may come from (before the latest measurement).
BASELINE_WINDOW = (dt.timedelta(days=21), dt.timedelta(days=35))

#: Words of a site's SNOMED CT display name that make it a foot site (default wound type).
_FOOT_WORDS = ("foot", "heel", "toe", "sole", "hallux", "metatars", "plantar", "ankle")


class WoundType(StrEnum):
    """The aetiologies with a published 4-week threshold, and their thresholds (percent)."""

    DIABETIC_FOOT = "diabetic-foot"
    VENOUS_LEG = "venous-leg"

    @property
    def threshold_pct(self) -> float:
        return 53.0 if self is WoundType.DIABETIC_FOOT else 40.0

    @property
    def source(self) -> str:
        if self is WoundType.DIABETIC_FOOT:
            return "Sheehan et al., Diabetes Care 2003;26:1879-82 (<53 % at 4 weeks)"
        return (
            "Gelfand et al., J Invest Dermatol 2002;119:1420-5; Kantor & Margolis, "
            "Br J Dermatol 2000;142:960-4 (~40 % at 4 weeks)"
        )


def wound_type_for_site(body_site_code: str | None) -> WoundType:
    """The default wound type for a site: foot and ankle sites are taken as diabetic foot
    ulcers, every other site (the lower leg above all) as venous leg ulcers."""
    if not body_site_code:
        return WoundType.VENOUS_LEG
    try:
        meaning = get_site(body_site_code).meaning.casefold()
    except InvalidMetadata:
        return WoundType.VENOUS_LEG
    return (
        WoundType.DIABETIC_FOOT if any(w in meaning for w in _FOOT_WORDS) else WoundType.VENOUS_LEG
    )


@dataclass(frozen=True)
class HealingPoint:
    """One measurement of the wound: when the photo was taken and the area measured."""

    at: dt.datetime
    area_cm2: float


@dataclass(frozen=True)
class HealingTrend:
    """The figures of one wound's measurements (oldest first)."""

    points: tuple[HealingPoint, ...]
    wound_type: WoundType
    reduction_since_first_pct: float | None
    reduction_4_weeks_pct: float | None
    baseline_4_weeks: HealingPoint | None
    not_on_track: bool

    @property
    def threshold_pct(self) -> float:
        return self.wound_type.threshold_pct


def percent_reduction(before: float, after: float) -> float | None:
    """Area reduction in percent (negative when the wound grew); None without a baseline area."""
    if before <= 0:
        return None
    return 100.0 * (before - after) / before


def healing_trend(points: Sequence[HealingPoint], wound_type: WoundType) -> HealingTrend:
    """The trend of ``points`` (any order): reductions and the 4-week flag."""
    ordered = tuple(sorted(points, key=lambda p: p.at))
    if len(ordered) < 2:
        return HealingTrend(ordered, wound_type, None, None, None, False)
    first, last = ordered[0], ordered[-1]
    baseline = _four_week_baseline(ordered)
    four_weeks = percent_reduction(baseline.area_cm2, last.area_cm2) if baseline else None
    return HealingTrend(
        points=ordered,
        wound_type=wound_type,
        reduction_since_first_pct=percent_reduction(first.area_cm2, last.area_cm2),
        reduction_4_weeks_pct=four_weeks,
        baseline_4_weeks=baseline,
        not_on_track=four_weeks is not None and four_weeks < wound_type.threshold_pct,
    )


def _four_week_baseline(ordered: Sequence[HealingPoint]) -> HealingPoint | None:
    last = ordered[-1]
    earliest, latest = last.at - BASELINE_WINDOW[1], last.at - BASELINE_WINDOW[0]
    candidates = [p for p in ordered[:-1] if earliest <= p.at <= latest]
    if not candidates:
        return None
    target = last.at - FOUR_WEEKS
    return min(candidates, key=lambda p: abs((p.at - target).total_seconds()))
