"""Whose data an event touched: the patient (MRN and issuer) behind a context or a capture.

The trail stores the MRN and issuer as DICOM carries them (Patient ID, Issuer of Patient ID),
resolved from the context the event names, so an auditor can ask "who saw this patient's
photos" with one filter. Names and birth dates are never copied into the trail.

A context's patient never changes once it is created, and neither does a capture's context
and SOP Instance UID once it is encoded, so resolved subjects are kept in a small per-process
cache: a clinician's visit reads the same context dozens of times, and each request's audit
row would otherwise cost a database read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from capture_api.capture.schemas import PatientIn
from capture_api.store import audit_rows
from capture_api.store.db import Database, Transaction
from capture_api.store.records import CaptureRecord, ContextRecord

CACHE_SIZE = 4096


@dataclass(frozen=True)
class Subject:
    """The patient and the objects an event concerns (any may be unknown)."""

    patient: str | None = None
    patient_issuer: str | None = None
    context_id: str | None = None
    capture_id: str | None = None
    sop_instance_uid: str | None = None
    study_uid: str | None = None


def issuer_text(patient: PatientIn) -> str | None:
    """The issuer as one string: its universal id (OID/URI), else its local namespace."""
    if patient.issuer is None:
        return None
    return patient.issuer.universal_id or patient.issuer.namespace


class _Cache:
    """A thread-safe LRU of resolved (immutable) subjects."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str, str], Subject] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Subject | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, str, str], subject: Subject) -> None:
        with self._lock:
            self._items[key] = subject
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_cache = _Cache(CACHE_SIZE)


def subject_of(
    engine: Database,
    *,
    context_id: str | None = None,
    capture_id: str | None = None,
    tx: Transaction | None = None,
) -> Subject:
    """Resolve the patient of a capture (through its context) or of a context; inside a write
    transaction, read through it (``store.audit_rows.subject_rows``)."""
    kind = "capture" if capture_id else "context"
    key = (audit_rows.database_key(engine), kind, capture_id or context_id or "")
    cached = _cache.get(key)
    if cached is not None:
        return cached
    capture, context = audit_rows.subject_rows(
        engine, context_id=context_id, capture_id=capture_id, tx=tx
    )
    if context is None:
        known_context = capture.context_id if capture else context_id
        return Subject(context_id=known_context, capture_id=capture_id)
    subject = _resolved(capture, context, capture_id)
    if capture is None or capture.sop_instance_uid:  # a capture's UID is final once encoded
        _cache.put(key, subject)
    return subject


def remember(engine: Database, capture: CaptureRecord, context: ContextRecord) -> None:
    """Keep the subject of a capture just encoded from rows its writer already holds, so
    the request's audit row (``api.audit_middleware``) does not read them back (issue 13)."""
    if capture.sop_instance_uid and capture.context_id == context.id:
        key = (audit_rows.database_key(engine), "capture", capture.id)
        _cache.put(key, _resolved(capture, context, capture.id))


def _resolved(
    capture: CaptureRecord | None, context: ContextRecord, capture_id: str | None
) -> Subject:
    patient = PatientIn.model_validate_json(context.patient_json)
    return Subject(
        patient=patient.id,
        patient_issuer=issuer_text(patient),
        context_id=context.id,
        capture_id=capture.id if capture else capture_id,
        sop_instance_uid=capture.sop_instance_uid if capture else None,
        study_uid=capture.study_uid if capture else context.study_uid,
    )
