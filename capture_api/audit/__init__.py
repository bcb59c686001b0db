"""The audit trail: who did what to which patient's data, and whether it was allowed.

``trail`` (append rows, domain events), ``events`` (the vocabulary: BALP and DICOM codes),
``audited_routes`` (which requests are recorded, under which action), ``fhir_audit`` (FHIR
R4 AuditEvent, IHE BALP), ``dicom_audit`` (DICOM audit message, PS3.15 A.5), ``syslog`` and
``forwarding`` (IHE ATNA), ``export`` (CSV and Bundle pages). The middleware that records
every PHI request lives in ``capture_api.api.audit_middleware`` (it needs the session
resolver, above this layer). docs/audit.md describes the whole.
"""

from capture_api.audit.audited_routes import UNMATCHED, action_for, is_audited, route_template
from capture_api.audit.events import Outcome, Purpose
from capture_api.audit.export import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ExportFormat,
    ExportQuery,
    ExportQueryError,
    fetch,
    spreadsheet_safe,
)
from capture_api.audit.fhir_audit import INTEGRATION_ACTOR, bundle
from capture_api.audit.source import AuditSource
from capture_api.audit.trail import failed_writes, record, record_capture, record_notification

__all__ = [
    "DEFAULT_LIMIT",
    "INTEGRATION_ACTOR",
    "MAX_LIMIT",
    "UNMATCHED",
    "AuditSource",
    "ExportFormat",
    "ExportQuery",
    "ExportQueryError",
    "Outcome",
    "Purpose",
    "action_for",
    "bundle",
    "failed_writes",
    "fetch",
    "is_audited",
    "record",
    "record_capture",
    "record_notification",
    "route_template",
    "spreadsheet_safe",
]
