"""Aggregate reports (no patient identifiers): the wound-care photo audit.

Not patient-specific, but still behind sign-in when EHRs are registered; in integration mode
it is open like the rest of the API. Every answer is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from capture_api.api.access import AccessDep
from capture_api.api.deps import get_runtime
from capture_api.api.errors import responses
from capture_api.api.no_store import NoStoreRoute
from capture_api.capture import FreeText
from capture_api.exceptions import NotSignedIn
from capture_api.review.audit_report import (
    HTML_CSP,
    NO_UNIT,
    ReportRange,
    ReportRangeError,
    WoundAuditReport,
    build_report,
    csv_filename,
    to_csv,
    to_html,
)
from capture_api.runtime import Runtime


def signed_in(access: AccessDep) -> None:
    """EHR mode: a signed-in user (401 otherwise), checked before the query is validated."""
    if access.ehr_mode:
        access.require_session()


router = APIRouter(
    prefix="/reports",
    tags=["reports"],
    dependencies=[Depends(signed_in)],
    route_class=NoStoreRoute,  # its errors too: a 422 or a 401 is no-store like the report
)

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    HTML = "html"


_MEDIA_TYPES = {
    "application/json": ReportFormat.JSON,
    "text/csv": ReportFormat.CSV,
    "text/html": ReportFormat.HTML,
    "application/xhtml+xml": ReportFormat.HTML,
}

_NO_STORE = {"Cache-Control": "no-store", "Vary": "Accept", "X-Content-Type-Options": "nosniff"}


def negotiate(accept: str | None) -> ReportFormat:
    """The format an ``Accept`` header prefers (highest q, then first listed); JSON otherwise."""
    best: tuple[float, int, ReportFormat] | None = None
    for position, item in enumerate((accept or "").split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        found = _MEDIA_TYPES.get(media.lower())
        if found is None or quality <= 0:
            continue
        if best is None or (quality, -position) > (best[0], -best[1]):
            best = (quality, position, found)
    return best[2] if best else ReportFormat.JSON


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The report as JSON, CSV (UTF-8, header row) or a printable HTML page",
        "content": {"text/csv": {}, "text/html": {}},
    },
    **responses(
        (NotSignedIn, "EHRs are registered and nobody is signed in"),
        (ReportRangeError, "Invalid range or time zone (reason in detail)"),
    ),
}


@router.get("/wound-audit", response_model=WoundAuditReport, responses=_RESPONSES)
def wound_audit(
    runtime: RuntimeDep,
    first: Annotated[dt.date, Query(alias="from", description="First day (YYYY-MM-DD)")],
    last: Annotated[dt.date, Query(alias="to", description="Last day, inclusive")],
    unit: Annotated[
        FreeText | None,
        Query(max_length=64, description=f"Only this ward/clinic ({NO_UNIT!r}: none recorded)"),
    ] = None,
    tz: Annotated[
        FreeText, Query(max_length=64, description="IANA time zone the days are counted in")
    ] = "UTC",
    report_format: Annotated[
        ReportFormat | None, Query(alias="format", description="Overrides the Accept header")
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Wound-care photo audit per unit: photos taken, coded, delivered on time, failed.

    Whole days ``from``..``to`` inclusive, counted in UTC unless ``tz`` names another zone;
    a photo counts on the day it was accepted. At most a year per report. Aggregate only.
    """
    report_range = ReportRange(first, last, tz)
    report = build_report(runtime.engine, report_range, unit=unit)
    chosen = report_format or negotiate(accept)
    if chosen is ReportFormat.CSV:
        disposition = f'attachment; filename="{csv_filename(report)}"'
        return Response(
            to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers=_NO_STORE | {"Content-Disposition": disposition},
        )
    if chosen is ReportFormat.HTML:
        return HTMLResponse(
            to_html(report), headers=_NO_STORE | {"Content-Security-Policy": HTML_CSP}
        )
    return JSONResponse(report.model_dump(mode="json", by_alias=True), headers=_NO_STORE)
