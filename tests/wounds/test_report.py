"""The wound-audit report's measurement figures (issue 16): share of photos measured, and the
distribution of 4-week area reduction per unit with the wounds below their threshold.

Real API, embedded archive; wounds measured with the ruler fallback on plain photos so the
areas are exact by construction (a square of 10 px per mm). Ward 7 has two wounds measured
28 days apart: a heel wound from 10 to 4 cm2 (60 %: above the 53 % diabetic-foot threshold)
and a lower-leg wound from 10 to 8 cm2 (20 %: below the venous 40 %); one photo is not
measured.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math

import pytest
from fastapi.testclient import TestClient

from tests.conftest import phone_jpeg
from tests.wounds.conftest import upload_verified

HEEL, LOWER_LEG = "84607009", "30021000"
RULER = {"start": [20, 460], "end": [120, 460], "distance_mm": 10}  # 10 px per mm
URL = "/api/v1/reports/wound-audit"


def _square(area_cm2: float) -> list[list[float]]:
    side = math.sqrt(area_cm2 * 100) * 10  # px
    x0, y0 = 150.0, 40.0
    return [[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]]


def test_the_report_counts_measured_photos_and_4_week_reductions(pg_client: TestClient) -> None:
    client = pg_client  # PostgreSQL
    encounter = {"admission_id": "V-9", "unit": "Ward 7"}
    context = client.post(
        "/api/v1/contexts", json={"patient": {"id": "P-REPORT"}, "encounter": encounter}
    ).json()["context_id"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    visits = [
        ("heel-0", HEEL, 28, 10.0),
        ("heel-1", HEEL, 0, 4.0),
        ("leg-0", LOWER_LEG, 28, 10.0),
        ("leg-1", LOWER_LEG, 0, 8.0),
    ]
    for seed, (capture_id, site, days, area) in enumerate(visits):
        taken = (now - dt.timedelta(days=days)).isoformat()
        upload_verified(
            client,
            context,
            capture_id,
            phone_jpeg(640, 480, seed=seed),
            body_site=site,
            laterality="L",
            captured_at=taken,
        )
        answer = client.post(
            f"/api/v1/captures/{capture_id}/measurements",
            json={"outline": _square(area), "ruler": RULER},
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["area_cm2"] == pytest.approx(area, abs=1e-6)
    upload_verified(
        client,
        context,
        "not-measured",
        phone_jpeg(640, 480, seed=9),
        body_site=HEEL,
        laterality="L",
    )

    today = now.date().isoformat()
    params = {"from": today, "to": today}
    body = client.get(URL, params=params).json()
    (ward,) = body["units"]
    assert ward["label"] == "Ward 7"
    assert ward["photos_taken"] == 5 and ward["measured"] == 4 and ward["measured_pct"] == 80.0
    reduction = ward["area_reduction_4_weeks"]
    assert reduction["wounds"] == 2
    assert reduction["min_pct"] == pytest.approx(20.0) and reduction["max_pct"] == pytest.approx(
        60.0
    )
    assert reduction["median_pct"] == pytest.approx(40.0)
    assert reduction["below_threshold"] == 1  # the leg wound: 20 % < 40 %
    assert body["total"]["area_reduction_4_weeks"] == reduction

    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(URL, params=params | {"format": "csv"}).content.decode("utf-8-sig")
            )
        )
    )
    assert rows[0]["measured %"] == "80.0" and rows[0]["below healing threshold"] == "1"
    assert rows[0]["4-week reduction quartiles %"] == "30.0 to 50.0"
    page = client.get(URL, params=params | {"format": "html"}).text
    assert "Sheehan" in page and "P-REPORT" not in page

    other = client.get(URL, params=params | {"unit": "Wound clinic"}).json()
    assert other["units"][0]["area_reduction_4_weeks"] is None
