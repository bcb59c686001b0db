"""Append-only audit events for PHI access and refusals.

This release records the safety-relevant events (launches, scans, refused wrong-patient
captures); the full IHE BALP / FHIR AuditEvent trail with export and syslog forwarding builds
on this table. Rows are only ever inserted; nothing in capture updates or deletes them.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Engine

from capture_api.store.db import session
from capture_api.store.records import AuditEventRecord


class Outcome(StrEnum):
    """FHIR AuditEvent.outcome-ish: 0 success, 4 minor failure (refused), 8 serious failure."""

    SUCCESS = "success"
    REFUSED = "refused"
    FAILED = "failed"


def record(
    engine: Engine,
    action: str,
    outcome: Outcome,
    *,
    actor: str | None = None,
    session_id: str | None = None,
    patient: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one event. ``patient`` is the MRN the event concerns (the trail is PHI)."""
    event = AuditEventRecord(
        action=action,
        outcome=outcome.value,
        actor=actor,
        session_id=session_id,
        patient=patient,
        detail=(detail or "")[:1000] or None,
    )
    with session(engine) as s:
        s.add(event)
        s.commit()
