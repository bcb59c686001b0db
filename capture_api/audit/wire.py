"""Value formats both renderings of an audit row share (FHIR AuditEvent and DICOM XML)."""

from __future__ import annotations

import datetime as dt
import ipaddress

from capture_api.audit.events import Purpose

#: The purpose-of-use codes that are HL7 v3 ActReason codes (others are kept as text).
KNOWN_PURPOSES = frozenset(p.value for p in Purpose)


def utc_instant(value: dt.datetime) -> str:
    """``2026-11-22T10:00:00.123Z`` (stored times are UTC; SQLite returns them naive)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_ip_address(value: str) -> bool:
    """True for an IPv4/IPv6 address (network type 2), False for a machine name (type 1)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
