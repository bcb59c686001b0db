"""Persistence: the one SQL database (capture records, the outboxes, sessions, the audit
trail), the spool folder, and the local archive's index. All SQL of capture lives here.

Other packages hold a ``Database`` (``db``) and pass it to the query functions here; the
SQLModel tables (``records``) are their data types. ``leases`` keeps rows claimed by one
worker at a time, ``spool`` the photos and DICOM objects on disk until the archive has
them, ``archive_index`` the index of ``capture_api.deliver.local_archive``.
"""

from capture_api.store.db import Database, make_engine, migrate, ping
from capture_api.store.records import (
    AuditEventRecord,
    CaptureRecord,
    CaptureStatus,
    ConsentRecord,
    ContextRecord,
    LaunchState,
    NotificationRecord,
    NotificationStatus,
    ObjectKind,
    UserSession,
    utcnow,
)
from capture_api.store.spool import Spool

__all__ = [
    "AuditEventRecord",
    "CaptureRecord",
    "CaptureStatus",
    "ConsentRecord",
    "ContextRecord",
    "Database",
    "LaunchState",
    "NotificationRecord",
    "NotificationStatus",
    "ObjectKind",
    "Spool",
    "UserSession",
    "make_engine",
    "migrate",
    "ping",
    "utcnow",
]
