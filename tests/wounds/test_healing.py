"""The healing trend (issue 16): figures, thresholds, and the timeline that shows them.

The arithmetic is checked on hand-made series (the 4-week window, growth, too few points);
the timeline is checked end to end: three phantom photos of one heel wound taken five weeks,
four weeks and zero weeks ago (12, 11 and 6 cm2), measured through the API, give a 50 %
reduction over 4 weeks: below Sheehan's 53 % for a diabetic foot ulcer (flagged), above the
~40 % of venous leg ulcers (not flagged).
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
from fastapi.testclient import TestClient

from capture_api.measure import HealingPoint, WoundType, healing_trend, wound_type_for_site
from tests.measure.phantom import Phantom, render_phantom
from tests.wounds.conftest import SIZE, upload_verified

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
HEEL = "84607009"


def _series(*pairs: tuple[int, float]) -> list[HealingPoint]:
    return [HealingPoint(NOW - dt.timedelta(days=days), area) for days, area in pairs]


def test_four_week_reduction_uses_the_measurement_closest_to_28_days_before() -> None:
    trend = healing_trend(
        _series((60, 20.0), (29, 10.0), (14, 8.0), (0, 6.0)), WoundType.VENOUS_LEG
    )
    assert trend.baseline_4_weeks == HealingPoint(NOW - dt.timedelta(days=29), 10.0)
    assert trend.reduction_4_weeks_pct == pytest.approx(40.0)
    assert trend.reduction_since_first_pct == pytest.approx(70.0)
    assert trend.not_on_track is False  # 40 % is not below the venous threshold


def test_a_diabetic_foot_ulcer_below_53_percent_is_flagged() -> None:
    series = _series((28, 10.0), (0, 5.0))
    assert healing_trend(series, WoundType.DIABETIC_FOOT).not_on_track is True  # 50 % < 53 %
    assert (
        healing_trend(_series((28, 10.0), (0, 4.6)), WoundType.DIABETIC_FOOT).not_on_track is False
    )


def test_no_baseline_no_flag_and_growth_is_negative() -> None:
    trend = healing_trend(_series((10, 4.0), (0, 5.0)), WoundType.DIABETIC_FOOT)
    assert trend.reduction_4_weeks_pct is None and trend.not_on_track is False
    assert trend.reduction_since_first_pct == pytest.approx(-25.0)
    assert healing_trend(_series((0, 5.0)), WoundType.VENOUS_LEG).reduction_since_first_pct is None


def test_the_default_wound_type_follows_the_site() -> None:
    assert wound_type_for_site(HEEL) is WoundType.DIABETIC_FOOT
    assert wound_type_for_site("56459004") is WoundType.DIABETIC_FOOT  # foot
    assert wound_type_for_site("30021000") is WoundType.VENOUS_LEG  # lower leg
    assert wound_type_for_site(None) is WoundType.VENOUS_LEG


@cache
def _visit(area_cm2: float, seed: int) -> Phantom:
    return render_phantom(seed, tilt_deg=10.0, area_cm2=area_cm2, kind="ellipse", size=SIZE)


def test_the_timeline_shows_the_area_trend_and_flags_a_slow_foot_ulcer(
    pg_client: TestClient,
) -> None:
    client = pg_client  # PostgreSQL
    context = client.post("/api/v1/contexts", json={"patient": {"id": "P-TREND"}}).json()
    context_id = context["context_id"]
    visits = [(35, 12.0, 31), (28, 11.0, 32), (0, 6.0, 33)]
    for days, area, seed in visits:
        phantom = _visit(area, seed)
        capture_id = f"trend-{days}"
        taken = (NOW - dt.timedelta(days=days)).isoformat()
        upload_verified(
            client,
            context_id,
            capture_id,
            phantom.jpeg,
            body_site=HEEL,
            laterality="R",
            captured_at=taken,
        )
        outline = [[float(x), float(y)] for x, y in phantom.tracing_px]
        answer = client.post(
            f"/api/v1/captures/{capture_id}/measurements", json={"outline": outline}
        )
        assert answer.status_code == 201, answer.text

    query = {"body_site": HEEL, "laterality": "R"}
    healing = client.get(f"/api/v1/contexts/{context_id}/timeline", params=query).json()["healing"]
    areas = [p["area_cm2"] for p in healing["points"]]
    assert areas == pytest.approx([12.0, 11.0, 6.0], rel=0.04)
    assert [p["capture_id"] for p in healing["points"]] == ["trend-35", "trend-28", "trend-0"]
    assert healing["wound_type"] == "diabetic-foot" and healing["threshold_pct"] == 53.0
    assert healing["reduction_4_weeks_pct"] == pytest.approx(100 * (1 - 6 / 11), abs=3)
    assert healing["reduction_since_first_pct"] == pytest.approx(50.0, abs=3)
    assert healing["not_on_track"] is True
    assert "Sheehan" in healing["threshold_source"]

    venous = client.get(
        f"/api/v1/contexts/{context_id}/timeline", params={**query, "wound_type": "venous-leg"}
    ).json()["healing"]
    assert venous["threshold_pct"] == 40.0 and venous["not_on_track"] is False

    other_side = client.get(
        f"/api/v1/contexts/{context_id}/timeline", params={"body_site": HEEL, "laterality": "L"}
    ).json()["healing"]
    assert other_side["points"] == []

    page = client.get(f"/api/v1/contexts/{context_id}/timeline/healing", params=query)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert "<svg" in text and text.count('class="point"') == 3
    assert "less than 53 % in 4 weeks" in text and "Sheehan" in text
    assert "<script" not in text
