"""Read the trail back for an auditor: a time range, a patient, one page at a time.

Pages follow the row id (``after`` = the last id of the previous page), which is stable while
new events are appended, unlike an offset. Times are ISO 8601: a date-time (``Z`` or an
offset; without one it is UTC), or a date: ``since=2026-11-01`` starts at that day's
beginning and ``until=2026-11-30`` includes that whole day (UTC).

CSV: one row per event, UTF-8 with BOM, the columns of ``CSV_COLUMNS`` (docs/audit.md), cells
neutralised against spreadsheet formula injection like the wound-care report's, and any
control character a row written before issue 14 may hold shown as U+FFFD.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from enum import StrEnum

from capture_api.audit import events
from capture_api.audit.events import OUTCOME_CODES
from capture_api.audit.wire import utc_instant
from capture_api.capture import storable
from capture_api.exceptions import InputRejected
from capture_api.store import audit_rows
from capture_api.store.db import Database
from capture_api.store.records import AuditEventRecord

DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000


class ExportFormat(StrEnum):
    CSV = "csv"
    FHIR = "fhir"  # a FHIR R4 Bundle (searchset) of AuditEvents


class ExportQueryError(InputRejected):
    """A filter the export cannot use; the message says what a valid one looks like."""


@dataclass(frozen=True)
class ExportQuery:
    """The filters of one export page."""

    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    patient: str | None = None
    after: int | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(
        cls,
        since: str | None,
        until: str | None,
        patient: str | None,
        after: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> ExportQuery:
        start = parse_instant(since, "since", end_of_day=False)
        end = parse_instant(until, "until", end_of_day=True)
        if start is not None and end is not None and start >= end:
            raise ExportQueryError("since must be earlier than until")
        return cls(start, end, (patient or "").strip() or None, after, limit)


def parse_instant(value: str | None, name: str, *, end_of_day: bool) -> dt.datetime | None:
    """An ISO 8601 date or date-time as aware UTC; a date alone is its day's start (or end)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:  # YYYY-MM-DD
            day = dt.date.fromisoformat(text)
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end_of_day else start
        parsed = dt.datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:
        raise ExportQueryError(
            f"{name} must be an ISO 8601 date or date-time, e.g. 2026-11-22 or "
            f"2026-11-22T08:00:00Z (got {text[:40]!r})"
        ) from exc


def fetch(engine: Database, query: ExportQuery) -> tuple[list[AuditEventRecord], bool]:
    """One page of events, oldest first, and whether more follow."""
    return audit_rows.page(
        engine,
        after=query.after,
        since=query.since,
        until=query.until,
        patient=query.patient,
        limit=query.limit,
    )


#: The CSV columns, in order (docs/audit.md describes each).
CSV_COLUMNS = (
    "id",
    "recorded",
    "action",
    "balp_action",
    "event_code",
    "event",
    "event_type",
    "outcome",
    "outcome_code",
    "actor",
    "session_id",
    "patient",
    "patient_issuer",
    "purpose",
    "context_id",
    "capture_id",
    "sop_instance_uid",
    "study_uid",
    "method",
    "route",
    "http_status",
    "client_ip",
    "user_agent_hash",
    "request_id",
    "peer",
    "node",
    "detail",
    "prev_hash",
    "chain_hash",
)


def csv_cells(row: AuditEventRecord) -> list[str]:
    """One event as CSV cells (codes of rows written before migration 0006 are derived)."""
    event_code = row.event_code or events.kind_of(row.action).event_id.value
    values: dict[str, object] = {
        "id": row.id,
        "recorded": utc_instant(row.at),
        "action": row.action,
        "balp_action": row.balp_action or events.balp_action(row.action, row.method).value,
        "event_code": event_code,
        "event": events.meaning(event_code),
        "event_type": row.event_type,
        "outcome": row.outcome,
        "outcome_code": OUTCOME_CODES.get(row.outcome, "8"),
        **{name: getattr(row, name) for name in CSV_COLUMNS[9:]},  # as stored
    }
    return [
        spreadsheet_safe(storable("" if values[n] is None else str(values[n]))) for n in CSV_COLUMNS
    ]


def to_csv(rows: list[AuditEventRecord]) -> bytes:
    """UTF-8 with BOM (spreadsheets detect it), a header row, one row per event."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(csv_cells(row))
    return out.getvalue().encode("utf-8-sig")


#: What a spreadsheet takes for the start of a formula (OWASP "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value
