"""Append-only audit events for PHI access and change: the one way rows enter the trail.

Two kinds of callers:

* ``capture_api.api.audit_middleware`` records every PHI request (route, method, status, actor,
  the patient it concerned) through ``append``;
* domain code records what happens outside a request, or a decision inside one, through
  ``record`` (launch, scan, wrong-patient refusals, STOW, verification, spool purge, EHR
  notification, and task C's break-the-glass unblur and consent with a purpose of use).

Rows are only ever inserted; the database refuses UPDATE and DELETE (migration 0006), and each
row is chained to the one before by a keyed hash (``capture_api.audit.chain``, migration 0009),
so an edit past the triggers is found by ``capture-api audit verify``. Writing never breaks
the caller: a failed insert is logged without PHI and counted
(``failed_writes``), and the request or worker goes on. After the insert the row is handed to
the syslog forwarder, if one is configured (``capture_api.audit.forwarding``).

Given the caller's write transaction (``tx``, ``capture_api.store.db.write_transaction``), the
row is inserted in it and commits with the state change it describes: one commit instead of
two, and never a change without its event nor an event without its change (a failed insert
then rolls the change back, and the worker's step is retried). It is forwarded after the
commit.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from capture_api.audit import chain, events, forwarding
from capture_api.audit.events import OUTCOME_CODES, Outcome, Purpose
from capture_api.audit.source import this_host
from capture_api.audit.subjects import Subject, subject_of
from capture_api.capture import storable
from capture_api.store import audit_rows
from capture_api.store.db import Database, Transaction
from capture_api.store.records import AuditEventRecord, CaptureRecord, NotificationRecord

log = logging.getLogger("capture.audit")

__all__ = [
    "OUTCOME_CODES",
    "REQUEST_ID",
    "CaptureEvent",
    "Outcome",
    "Purpose",
    "append",
    "append_all",
    "failed_writes",
    "record",
    "record_capture",
    "record_captures",
    "record_notification",
]

DETAIL_LIMIT = 1000

#: The X-Request-Id of the request being served (set by the audit middleware): the domain
#: events a request records carry it, so an auditor sees them beside the request's own row.
REQUEST_ID: ContextVar[str | None] = ContextVar("capture_audit_request_id", default=None)


class _Counter:
    """A thread-safe count of audit rows that could not be written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, count: int = 1) -> None:
        with self._lock:
            self.value += count


_failed = _Counter()
_NODE = this_host()


def failed_writes() -> int:
    """How many audit rows this process could not write (for metrics and alerts)."""
    return _failed.value


def record(
    engine: Database,
    action: str,
    outcome: Outcome,
    *,
    actor: str | None = None,
    session_id: str | None = None,
    patient: str | None = None,
    detail: str | None = None,
    purpose: str | None = None,
    context_id: str | None = None,
    capture_id: str | None = None,
    sop_instance_uid: str | None = None,
    peer: str | None = None,
    tx: Transaction | None = None,
) -> AuditEventRecord | None:
    """Append one domain event; returns the stored row (None if it could not be written).

    ``patient`` is the MRN the event concerns (the trail is PHI); when it is not given it is
    resolved from ``context_id`` or ``capture_id`` (which also give its issuer). ``purpose``
    is a ``Purpose`` code (e.g. ``Purpose.ETREAT`` with the clinician's reason in ``detail``
    for break-the-glass).
    ``peer`` is the system the event involved (archive or EHR base URL).
    """
    subject = _subject(engine, context_id, capture_id, tx)
    row = _row(
        action,
        outcome,
        subject,
        actor=actor,
        session_id=session_id,
        patient=patient,
        detail=detail,
        purpose=purpose,
        sop_instance_uid=sop_instance_uid,
        peer=peer,
    )
    return append(engine, row, tx=tx)


def _subject(
    engine: Database, context_id: str | None, capture_id: str | None, tx: Transaction | None
) -> Subject:
    """Whom the event concerns, looked up from its context or capture (never raises)."""
    subject = Subject(context_id=context_id, capture_id=capture_id)
    if context_id or capture_id:
        try:
            subject = subject_of(engine, context_id=context_id, capture_id=capture_id, tx=tx)
        except Exception as exc:
            log.warning("audit subject not resolved (%s)", type(exc).__name__)
    return subject


def _row(
    action: str,
    outcome: Outcome,
    subject: Subject,
    *,
    actor: str | None = None,
    session_id: str | None = None,
    patient: str | None = None,
    detail: str | None = None,
    purpose: str | None = None,
    sop_instance_uid: str | None = None,
    peer: str | None = None,
) -> AuditEventRecord:
    same_patient = patient is None or patient == subject.patient
    return AuditEventRecord(
        action=action,
        outcome=Outcome(outcome).value,
        actor=actor,
        session_id=session_id,
        patient=patient or subject.patient,
        patient_issuer=subject.patient_issuer if same_patient else None,
        detail=detail,
        purpose=purpose,
        context_id=subject.context_id,
        capture_id=subject.capture_id,
        sop_instance_uid=sop_instance_uid or subject.sop_instance_uid,
        study_uid=subject.study_uid,
        peer=peer,
        request_id=REQUEST_ID.get(),
    )


def record_capture(
    engine: Database,
    action: str,
    outcome: Outcome,
    capture: CaptureRecord,
    *,
    detail: str | None = None,
    peer: str | None = None,
    tx: Transaction | None = None,
) -> AuditEventRecord | None:
    """A worker's event about one capture (STOW, verification, spool purge, notification);
    with ``tx``, written in that transaction (see the module's docstring)."""
    return record(
        engine,
        action,
        outcome,
        capture_id=capture.id,
        context_id=capture.context_id,
        sop_instance_uid=capture.sop_instance_uid,
        detail=detail,
        peer=peer,
        tx=tx,
    )


#: One worker event about one capture: (action, outcome, the capture, detail).
CaptureEvent = tuple[str, Outcome, CaptureRecord, str | None]


def record_captures(
    engine: Database, happened: Sequence[CaptureEvent], *, tx: Transaction
) -> list[AuditEventRecord]:
    """Several worker events about captures, in ``tx`` and in this order, written together.

    What ``record_capture`` makes of each, but each capture's subject is looked up once and
    the rows take the chain's head once and are inserted in one statement: a verification
    writes three rows per photo (STOW, verify, spool purge), which took three subject
    look-ups, three head reads and three inserts (issue 13).
    """
    subjects: dict[str, Subject] = {}
    rows: list[AuditEventRecord] = []
    for action, outcome, capture, detail in happened:
        if capture.id not in subjects:
            subjects[capture.id] = _subject(engine, capture.context_id, capture.id, tx)
        subject = subjects[capture.id]
        rows.append(
            _row(action, outcome, subject, detail=detail, sop_instance_uid=capture.sop_instance_uid)
        )
    return append_all(engine, rows, tx=tx)


def record_notification(
    engine: Database,
    notification: NotificationRecord,
    outcome: Outcome,
    reason: str | None = None,
) -> AuditEventRecord | None:
    """The EHR notification worker's event: a FHIR resource created in the EHR, or refused."""
    detail = notification.resource_type + (f": {reason}" if reason else "")
    return record(
        engine,
        "notify",
        outcome,
        capture_id=notification.capture_id,
        detail=detail,
        peer=notification.iss,
    )


def append(
    engine: Database, row: AuditEventRecord, *, tx: Transaction | None = None
) -> AuditEventRecord | None:
    """Complete the row's codes, insert it, and hand it to the forwarder; never raises
    (except inside ``tx``, whose change must not commit without its event).

    Values the database would refuse (a NUL, an id longer than its column) are made storable
    by ``store.audit_rows.append``: losing the row over a hostile value would lose the event;
    any character the free-text rule refuses (``capture.text``: ESC, NUL, bidi overrides...)
    becomes U+FFFD here, so no export or syslog message carries one.
    """
    if tx is not None:
        return append_all(engine, [row], tx=tx)[0]
    _complete(row)
    try:
        queued_by = forwarding.queue_owner() if forwarding.sender_for(engine) else None
        row.id = audit_rows.append(engine, row, _signer(engine), forward_owner=queued_by)
    except Exception as exc:
        _failed.add()
        log.error("audit event %r not recorded (%s)", row.action, type(exc).__name__)
        return None
    forwarding.forward(engine, row)
    return row


def append_all(
    engine: Database, rows: Sequence[AuditEventRecord], *, tx: Transaction
) -> list[AuditEventRecord]:
    """``append`` of rows in ``tx``, in this order: one look at the chain's head and one
    insert for them all. Raises what the insert raises (the change must not commit without
    its events); the rows are forwarded after the commit."""
    for row in rows:
        _complete(row)
    sign = _signer(engine)
    try:
        queued_by = forwarding.queue_owner() if forwarding.sender_for(engine) else None
        ids = audit_rows.append_all_in(tx, rows, sign, forward_owner=queued_by)
    except Exception as exc:
        _failed.add(len(rows))
        log.error("audit events %s not recorded (%s)", _actions(rows), type(exc).__name__)
        raise
    for row, row_id in zip(rows, ids, strict=True):
        row.id = row_id
    for row in rows:
        tx.after_commit(functools.partial(forwarding.forward, engine, row))
    return list(rows)


def _signer(engine: Database) -> audit_rows.Signer:
    """The chain's ``sign`` for ``engine``'s key (``audit.chain``)."""
    key = chain.key_for(engine)

    def sign(prev_hash: str, values: dict[str, Any]) -> tuple[str, str]:
        return key.link(prev_hash, values), key.name

    return sign


def _actions(rows: Sequence[AuditEventRecord]) -> str:
    return ", ".join(sorted({repr(row.action) for row in rows}))


def _complete(row: AuditEventRecord) -> None:
    """The row's codes, node and storable values (see ``append``)."""
    for name, value in row:  # no control character reaches the XML, the CSV or a terminal
        if isinstance(value, str):
            setattr(row, name, storable(value))
    kind = events.kind_of(row.action)
    row.balp_action = row.balp_action or events.balp_action(row.action, row.method).value
    row.event_code = row.event_code or kind.event_id.value
    if row.event_type is None and kind.event_type is not None:
        row.event_type = kind.event_type.value
    row.detail = (row.detail or "")[:DETAIL_LIMIT] or None
    row.node = row.node or _NODE
