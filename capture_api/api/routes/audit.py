"""The audit trail export for auditors: who touched which patient's photos, and when.

``GET /api/v1/audit?since=&until=&patient=&format=fhir|csv&limit=&after=`` answers a FHIR R4
``Bundle`` (searchset) of AuditEvents (IHE BALP) or a CSV, oldest first, one page at a time
(``link`` rel=next in the Bundle, a ``Link: <...>; rel="next"`` header for CSV). Needs the
``auditor`` role (403 otherwise; in integration mode the trusted caller has every role). The
export itself is recorded in the trail (action ``audit-export``, BALP action E) by the audit
middleware, with its filters. Every answer is ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from capture_api.api.access import AccessDep
from capture_api.api.deps import get_runtime
from capture_api.api.errors import responses
from capture_api.audit.export import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ExportFormat,
    ExportQuery,
    ExportQueryError,
    fetch,
    to_csv,
)
from capture_api.audit.fhir_audit import bundle
from capture_api.audit.source import AuditSource
from capture_api.capture import FreeText, Role
from capture_api.exceptions import NotSignedIn, RoleRequired

router = APIRouter(prefix="/audit", tags=["audit"])

_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
FHIR_JSON = "application/fhir+json"
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # an MRN never holds control characters (DICOM LO)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A FHIR R4 Bundle of AuditEvents, or CSV (UTF-8, header row)",
        "content": {FHIR_JSON: {}, "text/csv": {}},
    },
    **responses(
        (NotSignedIn, "EHRs are registered and nobody is signed in"),
        (RoleRequired, "The user does not have the auditor role"),
        (ExportQueryError, "Invalid time range or paging (reason in detail)"),
    ),
}


@router.get("", response_class=Response, responses=_RESPONSES)
def export_audit(
    request: Request,
    access: AccessDep,
    since: Annotated[
        FreeText | None, Query(max_length=40, description="ISO 8601 date or date-time, inclusive")
    ] = None,
    until: Annotated[
        FreeText | None,
        Query(max_length=40, description="ISO 8601 date-time (exclusive) or date (inclusive)"),
    ] = None,
    patient: Annotated[
        FreeText | None, Query(pattern=_PRINTABLE, max_length=64, description="Patient ID (MRN)")
    ] = None,
    fmt: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.FHIR,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    after: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="Last id of the previous page")
    ] = None,
) -> Response:
    """Audit events for a time range (and patient), as a FHIR Bundle or CSV."""
    access.require_role(Role.AUDITOR, "reading the audit trail")
    query = ExportQuery.parse(since, until, patient, after, limit)
    runtime = get_runtime(request)
    rows, more = fetch(runtime.engine, query)
    next_url = str(request.url.include_query_params(after=rows[-1].id)) if more and rows else None
    if fmt is ExportFormat.CSV:
        headers = dict(_NO_STORE)
        headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
        if next_url:
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Response(to_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    source = AuditSource.from_settings(runtime.settings)
    body = bundle(rows, source, self_url=str(request.url), next_url=next_url)
    return JSONResponse(body, media_type=FHIR_JSON, headers=_NO_STORE)
