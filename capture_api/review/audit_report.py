"""The wound-care audit report: per unit, how many photos were taken, coded and delivered.

Aggregate only: one row per encounter unit (ward or clinic, from the context's encounter) plus
a total row. No patient, encounter or capture identifier ever reaches the report; failure
reasons are grouped by their text, with DICOM UIDs masked.

The range is whole days, inclusive at both ends, in UTC unless another IANA time zone is asked
for: ``2026-03-01..2026-03-31`` in UTC means ``2026-03-01T00:00Z <= created_at <
2026-04-01T00:00Z``. A photo counts in the range it was *taken* (accepted by the API,
``created_at``), wherever its delivery ended.

Figures per row:

* photos taken: captures created in the range (whatever their state);
* with body site: those with a coded body site (share of photos taken);
* delivered within 5 minutes: verified, with ``verified_at - created_at <= 300 s`` (share of
  photos taken);
* delivered later: verified after more than 5 minutes (or with no recorded delivery time);
* pending: still on the way (received, encoded or stored);
* failed: will not be delivered, with the reasons grouped (reason text -> count);
* rejected: photos taken back (IHE IOCM, ``capture_api.correct``) in the range, counted when
  they were rejected, per reason (``wrong-patient``, ``quality``, ``worklist-entry``).
* measured: photos with a current wound measurement (issue 16; share of photos taken);
* 4-week area reduction: over the unit's wounds (a patient's site and side) whose latest
  measurement falls in the range and that have a 4-week baseline (``measure.healing``), the
  distribution (min, quartiles, max) and how many are below their wound type's threshold
  (Sheehan 2003: 53 % for diabetic foot ulcers; Gelfand 2002 / Kantor & Margolis 2000: ~40 %
  for venous leg ulcers; the type defaults from the site). The wound counts in the unit of
  the encounter of its latest measurement.

Rendered as JSON (the pydantic models below), CSV (spreadsheet-safe) or a printable HTML page.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import html
import io
import itertools
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from capture_api.audit.export import spreadsheet_safe
from capture_api.capture.rejection import RejectReason
from capture_api.capture.schemas import unit_of
from capture_api.exceptions import InputRejected
from capture_api.measure import HealingPoint, healing_trend, wound_type_for_site
from capture_api.store import rejections, reports
from capture_api.store.db import Database
from capture_api.store.records import CaptureStatus

#: Label of captures whose encounter names no unit (and the ``unit`` filter value selecting them).
NO_UNIT = "(no unit)"
#: Label of the total row in CSV and HTML.
TOTAL = "(all units)"
#: Delivered "on time": verified at most this long after the photo was accepted.
ON_TIME = dt.timedelta(minutes=5)
#: Longest range one report may cover (bounds the query).
MAX_DAYS = 366
#: A failure reason recorded without text.
NO_REASON = "(no reason recorded)"

_UID = re.compile(r"\b\d+(?:\.\d+){3,}\b")


class ReportRangeError(InputRejected):
    """The requested range or time zone cannot be used; the message says what would do."""


@dataclass(frozen=True)
class ReportRange:
    """Whole days ``first..last`` (inclusive) in time zone ``tz``."""

    first: dt.date
    last: dt.date
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ReportRangeError(f"'to' ({self.last}) is before 'from' ({self.first})")
        days = (self.last - self.first).days + 1
        if days > MAX_DAYS:
            raise ReportRangeError(f"the range is {days} days; at most {MAX_DAYS} are allowed")
        self.zone()  # validates

    def zone(self) -> dt.tzinfo:
        if self.tz.upper() in {"UTC", "Z"}:
            return dt.UTC
        try:
            return ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ReportRangeError(f"unknown time zone {self.tz!r} (use an IANA name)") from exc

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """``[start, end)`` in UTC: midnight of ``first`` to midnight after ``last``."""
        zone = self.zone()
        start = dt.datetime.combine(self.first, dt.time.min, tzinfo=zone)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


# --- the report's wire form (JSON) ------------------------------------------------------------


class ReductionDistribution(BaseModel):
    """The 4-week area reduction of the unit's measured wounds, in percent (1 decimal)."""

    wounds: int = Field(description="Wounds with a 4-week figure")
    min_pct: float
    q1_pct: float
    median_pct: float
    q3_pct: float
    max_pct: float
    below_threshold: int = Field(
        description="Wounds below their type's threshold (53 % diabetic foot, 40 % venous leg)"
    )


class AuditRow(BaseModel):
    """The figures of one unit (or of all units: the total row)."""

    unit: str | None = Field(description="Encounter unit; null when the encounter names none")
    label: str = Field(description=f"Display name: the unit, {NO_UNIT!r} or {TOTAL!r}")
    photos_taken: int
    with_body_site: int
    with_body_site_pct: float | None = Field(description="Share of photos taken, 1 decimal")
    delivered_within_5_min: int
    delivered_within_5_min_pct: float | None = Field(description="Share of photos taken")
    delivered_later: int
    pending: int
    failed: int
    failure_reasons: dict[str, int] = Field(description="Reason text -> count, most frequent first")
    rejected: int = Field(default=0, description="Photos taken back (IOCM) in the range")
    rejection_reasons: dict[str, int] = Field(
        default_factory=dict, description="Rejection reason -> count, most frequent first"
    )
    measured: int = Field(default=0, description="Photos with a wound measurement")
    measured_pct: float | None = Field(default=None, description="Share of photos taken")
    area_reduction_4_weeks: ReductionDistribution | None = Field(
        default=None, description="Null when no wound of the unit has a 4-week figure"
    )


class WoundAuditReport(BaseModel):
    """Wound-care photo audit for a date range (aggregate: no patient identifiers)."""

    first_day: dt.date = Field(serialization_alias="from", description="First day")
    last_day: dt.date = Field(serialization_alias="to", description="Last day, inclusive")
    timezone: str
    range_start: dt.datetime = Field(description="Inclusive, UTC")
    range_end: dt.datetime = Field(description="Exclusive, UTC")
    unit_filter: str | None
    on_time_seconds: int
    generated_at: dt.datetime
    units: list[AuditRow]
    total: AuditRow


# --- counting ----------------------------------------------------------------------------------


@dataclass
class _Tally:
    unit: str | None
    taken: int = 0
    with_body_site: int = 0
    on_time: int = 0
    late: int = 0
    pending: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    measured: int = 0
    reductions: list[float] = field(default_factory=list)
    below: int = 0

    def add(
        self,
        status: str,
        created_at: dt.datetime,
        verified_at: dt.datetime | None,
        body_site_code: str | None,
        reason: str | None,
        measured: bool = False,
    ) -> None:
        self.taken += 1
        self.measured += int(bool(measured))
        if body_site_code:
            self.with_body_site += 1
        if status == CaptureStatus.VERIFIED:
            if verified_at is not None and _utc(verified_at) - _utc(created_at) <= ON_TIME:
                self.on_time += 1
            else:
                self.late += 1
        elif status == CaptureStatus.FAILED:
            self.failed += 1
            self.reasons[redact_reason(reason)] += 1
        else:
            self.pending += 1

    def merge(self, other: _Tally) -> None:
        self.taken += other.taken
        self.with_body_site += other.with_body_site
        self.on_time += other.on_time
        self.late += other.late
        self.pending += other.pending
        self.failed += other.failed
        self.reasons.update(other.reasons)
        self.rejected.update(other.rejected)
        self.measured += other.measured
        self.reductions += other.reductions
        self.below += other.below

    def row(self, label: str) -> AuditRow:
        ordered = sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))
        return AuditRow(
            unit=self.unit,
            label=label,
            photos_taken=self.taken,
            with_body_site=self.with_body_site,
            with_body_site_pct=_pct(self.with_body_site, self.taken),
            delivered_within_5_min=self.on_time,
            delivered_within_5_min_pct=_pct(self.on_time, self.taken),
            delivered_later=self.late,
            pending=self.pending,
            failed=self.failed,
            failure_reasons=dict(ordered),
            rejected=sum(self.rejected.values()),
            rejection_reasons=dict(
                sorted(self.rejected.items(), key=lambda item: (-item[1], item[0]))
            ),
            measured=self.measured,
            measured_pct=_pct(self.measured, self.taken),
            area_reduction_4_weeks=_distribution(self.reductions, self.below),
        )


def _distribution(values: list[float], below: int) -> ReductionDistribution | None:
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) > 1:
        q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = median = q3 = ordered[0]
    return ReductionDistribution(
        wounds=len(ordered),
        min_pct=round(ordered[0], 1),
        q1_pct=round(q1, 1),
        median_pct=round(median, 1),
        q3_pct=round(q3, 1),
        max_pct=round(ordered[-1], 1),
        below_threshold=below,
    )


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _utc(value: dt.datetime) -> dt.datetime:
    """Stored timestamps are UTC; tolerate naive ones from older rows."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def redact_reason(reason: str | None) -> str:
    """The reason as shown in the report: trimmed, DICOM UIDs masked (they identify studies)."""
    text = " ".join((reason or "").split())
    return _UID.sub("<UID>", text) if text else NO_REASON


def _label(unit: str | None) -> str:
    return NO_UNIT if unit is None else unit


def _order(unit: str | None) -> tuple[int, str, str]:
    return (1, "", "") if unit is None else (0, unit.casefold(), unit)


def build_report(
    engine: Database,
    report_range: ReportRange,
    *,
    unit: str | None = None,
    now: dt.datetime | None = None,
) -> WoundAuditReport:
    """Count the captures taken in ``report_range`` per unit (only ``unit`` when given).

    ``unit`` matches the unit name exactly (whitespace-normalised); ``NO_UNIT`` selects the
    captures whose encounter names no unit.
    """
    start, end = report_range.bounds()
    wanted = " ".join(unit.split()) if unit is not None else None
    target = None if wanted == NO_UNIT else wanted  # the unit the rows must have
    units_of_context: dict[str, str | None] = {}
    tallies: dict[str | None, _Tally] = {}
    for row in reports.captures_taken(engine, start, end):
        if row.context_id not in units_of_context:
            units_of_context[row.context_id] = unit_of(row.encounter_json)
        row_unit = units_of_context[row.context_id]
        if wanted is not None and row_unit != target:
            continue
        tally = tallies.setdefault(row_unit, _Tally(row_unit))
        tally.add(
            str(row.status),
            row.created_at,
            row.verified_at,
            row.body_site_code,
            row.reason,
            row.measured,
        )
    for encounter_json, code in rejections.rejected_between(engine, start, end):
        row_unit = unit_of(encounter_json)
        if wanted is not None and row_unit != target:
            continue
        tallies.setdefault(row_unit, _Tally(row_unit)).rejected[RejectReason.label(code)] += 1
    for unit_name, reduction, below in _wound_reductions(engine, start, end):
        if wanted is not None and unit_name != target:
            continue
        tally = tallies.setdefault(unit_name, _Tally(unit_name))
        tally.reductions.append(reduction)
        tally.below += int(below)
    if wanted is not None and not tallies:  # show the unit asked for, with zeros
        tallies[target] = _Tally(target)
    total = _Tally(None)
    for tally in tallies.values():
        total.merge(tally)
    return WoundAuditReport(
        first_day=report_range.first,
        last_day=report_range.last,
        timezone=report_range.tz,
        range_start=start,
        range_end=end,
        unit_filter=wanted,
        on_time_seconds=int(ON_TIME.total_seconds()),
        generated_at=(now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0),
        units=[tallies[u].row(_label(u)) for u in sorted(tallies, key=_order)],
        total=total.row(TOTAL),
    )


def _wound_reductions(
    engine: Database, start: dt.datetime, end: dt.datetime
) -> Iterable[tuple[str | None, float, bool]]:
    """(unit, 4-week reduction %, below threshold) of each wound whose latest measurement
    before ``end`` is in ``[start, end)`` and has a 4-week baseline."""

    def wound(row: reports.WoundArea) -> tuple[str, str, str | None, str | None]:
        return row.patient_id, row.issuer, row.body_site_code, row.laterality

    for (_, _, site, _), rows in itertools.groupby(reports.wound_areas(engine, end), key=wound):
        series = list(rows)
        latest = series[-1]
        if _utc(latest.measured_at) < start:
            continue
        points = [HealingPoint(_utc(r.measured_at), r.area_cm2) for r in series]
        trend = healing_trend(points, wound_type_for_site(site))
        if trend.reduction_4_weeks_pct is not None:
            yield unit_of(latest.encounter_json), trend.reduction_4_weeks_pct, trend.not_on_track


# --- CSV ----------------------------------------------------------------------------------------

CSV_HEADER = (
    "unit",
    "photos taken",
    "with body site",
    "with body site %",
    "delivered within 5 min",
    "delivered within 5 min %",
    "delivered later",
    "pending",
    "failed",
    "failure reasons",
    "rejected",
    "rejection reasons",
    "measured",
    "measured %",
    "wounds with 4-week figure",
    "4-week reduction median %",
    "4-week reduction quartiles %",
    "below healing threshold",
)


def _fmt_pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def format_reasons(reasons: dict[str, int]) -> str:
    """``reason (n); reason (n)``, most frequent first."""
    return "; ".join(f"{reason} ({count})" for reason, count in reasons.items())


def _csv_cells(row: AuditRow) -> list[str]:
    return [
        row.label,
        str(row.photos_taken),
        str(row.with_body_site),
        _fmt_pct(row.with_body_site_pct),
        str(row.delivered_within_5_min),
        _fmt_pct(row.delivered_within_5_min_pct),
        str(row.delivered_later),
        str(row.pending),
        str(row.failed),
        format_reasons(row.failure_reasons),
        str(row.rejected),
        format_reasons(row.rejection_reasons),
        str(row.measured),
        _fmt_pct(row.measured_pct),
        *_reduction_cells(row.area_reduction_4_weeks),
    ]


def _reduction_cells(dist: ReductionDistribution | None) -> list[str]:
    """Wounds, median, "q1 to q3", below threshold (empty cells without a 4-week figure)."""
    if dist is None:
        return ["0", "", "", ""]
    return [
        str(dist.wounds),
        _fmt_pct(dist.median_pct),
        f"{dist.q1_pct:.1f} to {dist.q3_pct:.1f}",
        str(dist.below_threshold),
    ]


def to_csv(report: WoundAuditReport) -> bytes:
    """UTF-8 (with BOM, so spreadsheets detect it), a header row, one row per unit, the total."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in [*report.units, report.total]:
        writer.writerow([spreadsheet_safe(cell) for cell in _csv_cells(row)])
    return out.getvalue().encode("utf-8-sig")


def csv_filename(report: WoundAuditReport) -> str:
    return f"wound-audit_{report.first_day.isoformat()}_{report.last_day.isoformat()}.csv"


# --- HTML ---------------------------------------------------------------------------------------

STYLE = """
body { font: 11pt/1.4 system-ui, sans-serif; margin: 1.5em; color: #000; }
h1 { font-size: 15pt; margin: 0 0 .3em; }
p.meta { margin: 0 0 1em; color: #333; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #888; padding: .25em .45em; vertical-align: top; }
th { background: #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; border-top: 2px solid #000; }
ul { margin: 0; padding-left: 1.1em; }
footer { margin-top: 1em; font-size: 9pt; color: #333; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { margin: 0; }
  thead { display: table-header-group; }
  tr { page-break-inside: avoid; }
  th { background: #eee; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
""".strip()

#: For the page's Content-Security-Policy: the one inline style block, nothing else.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HTML_CSP = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_HTML_HEADER = (
    "Unit",
    "Photos taken",
    "With body site",
    "Body site %",
    "Delivered within 5 min",
    "Within 5 min %",
    "Delivered later",
    "Pending",
    "Failed",
    "Failure reasons",
    "Rejected",
    "Rejection reasons",
    "Measured",
    "Measured %",
    "Wounds with 4-week figure",
    "4-week area reduction median %",
    "Quartiles %",
    "Below healing threshold",
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_row(row: AuditRow, css_class: str | None = None) -> str:
    numbers: Sequence[object] = (
        row.photos_taken,
        row.with_body_site,
        _fmt_pct(row.with_body_site_pct),
        row.delivered_within_5_min,
        _fmt_pct(row.delivered_within_5_min_pct),
        row.delivered_later,
        row.pending,
        row.failed,
    )
    reasons = "".join(
        f"<li>{_e(reason)} ({count})</li>" for reason, count in row.failure_reasons.items()
    )
    cells = [f'<th scope="row">{_e(row.label)}</th>']
    cells += [f'<td class="n">{_e(n)}</td>' for n in numbers]
    cells.append(f"<td><ul>{reasons}</ul></td>" if reasons else "<td></td>")
    cells.append(f'<td class="n">{_e(row.rejected)}</td>')
    rejected = "".join(
        f"<li>{_e(reason)} ({count})</li>" for reason, count in row.rejection_reasons.items()
    )
    cells.append(f"<td><ul>{rejected}</ul></td>" if rejected else "<td></td>")
    wound = (
        row.measured,
        _fmt_pct(row.measured_pct),
        *_reduction_cells(row.area_reduction_4_weeks),
    )
    cells += [f'<td class="n">{_e(n)}</td>' for n in wound]
    attr = f' class="{_e(css_class)}"' if css_class else ""
    return f"<tr{attr}>{''.join(cells)}</tr>"


def _lines(parts: Iterable[str]) -> str:
    return "\n".join(parts)


def to_html(report: WoundAuditReport) -> str:
    """A self-contained printable page: no scripts, no external resources, values escaped."""
    span = f"{report.first_day.isoformat()} to {report.last_day.isoformat()}"
    title = f"Wound-care photo audit {span} ({report.timezone})"
    generated = report.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    scope = f"Unit: {report.unit_filter}" if report.unit_filter is not None else "All units"
    header = "".join(f'<th scope="col">{_e(h)}</th>' for h in _HTML_HEADER)
    rows = [_html_row(row) for row in report.units]
    rows.append(_html_row(report.total, "total"))
    minutes = report.on_time_seconds // 60
    return _lines(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{_e(title)}</h1>",
            f'<p class="meta">{_e(scope)} · whole days {_e(span)}, time zone '
            f"{_e(report.timezone)} · generated {_e(generated)}</p>",
            "<table>",
            f"<thead><tr>{header}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
            "<footer>",
            f"<p>Photos taken: captures accepted in the range. Delivered within {minutes} min: "
            f"verified in the archive at most {minutes} minutes after acceptance; percentages "
            "are of photos taken. Pending: still on the way to the archive. Rejected: photos "
            "taken back in the range (wrong patient, quality, worklist entry). Aggregate figures "
            "only; no patient identifiers.</p>",
            "<p>Measured: photos with a wound measurement. 4-week area reduction: per wound "
            "(a patient's site and side) whose latest measurement is in the range, against the "
            "measurement closest to 28 days earlier (21 to 35 days). Below healing threshold: "
            "less than 53 % for foot wounds (diabetic foot ulcers, Sheehan et al., Diabetes "
            "Care 2003) or 40 % for other wounds (venous leg ulcers, Gelfand et al. 2002; "
            "Kantor &amp; Margolis 2000): such wounds often do not heal without a change of "
            "treatment.</p>",
            "</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )
