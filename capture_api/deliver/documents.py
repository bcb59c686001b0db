"""DICOM documents capture makes (SR measurement reports, KOS rejection notes), into the outbox.

A document takes the photo's road to the archive: it is written to the spool durably, then a
``capture`` row with ``object_kind`` SR or KOS and status ``encoded`` is committed, and the
outbox worker stores and verifies it with the same lease, retries and audit as a photo. Its row
id is derived from its SOP Instance UID, so enqueueing the same document twice (a double tap, a
retried request) delivers it once.
"""

from __future__ import annotations

import io

from pydicom import Dataset, dcmwrite

from capture_api.store import captures
from capture_api.store.db import Database
from capture_api.store.records import CaptureRecord, CaptureStatus, ObjectKind, utcnow
from capture_api.store.spool import Spool


def document_id(kind: ObjectKind, sop_instance_uid: str) -> str:
    """The outbox row id of a document: its kind and SOP Instance UID (unique, not a path)."""
    return f"{kind.value}:{sop_instance_uid}"


def enqueue_object(
    db: Database,
    spool: Spool,
    dataset: Dataset,
    *,
    kind: ObjectKind,
    context_id: str,
    sensitivity_level: str = "normal",
    sensitivity_categories: str = "",
    body_site_code: str | None = None,
    laterality: str | None = None,
    operator: str | None = None,
) -> CaptureRecord:
    """Spool ``dataset`` (a complete SOP instance with file meta) and queue it for the archive.

    Returns the outbox row; when a row for the same SOP instance exists already, that row
    (nothing is written twice). ``context_id`` is the context the document was made in (its
    patient and study); the sensitivity is the photo's, so access rules apply to it alike.
    """
    if kind is ObjectKind.PHOTO:
        raise ValueError("photos enter through the capture service, not as documents")
    sop_uid = str(dataset.SOPInstanceUID)
    row_id = document_id(kind, sop_uid)
    existing = captures.get(db, row_id)
    if existing is not None:
        return existing
    buffer = io.BytesIO()  # SR and KOS are kilobytes: no streaming needed
    dcmwrite(buffer, dataset, enforce_file_format=True)
    spooled = spool.write_bytes(spool.path_for(row_id, ".dcm"), buffer.getvalue())
    now = utcnow()
    record = CaptureRecord(
        id=row_id,
        context_id=context_id,
        status=CaptureStatus.ENCODED,
        object_kind=kind.value,
        sha256=spooled.sha256,
        size_bytes=spooled.size,
        body_site_code=body_site_code,
        laterality=laterality,
        sensitivity_level=sensitivity_level,
        sensitivity_categories=sensitivity_categories,
        operator=operator,
        instance_number=int(dataset.get("InstanceNumber") or 1),
        sop_instance_uid=sop_uid,
        study_uid=str(dataset.StudyInstanceUID),
        series_uid=str(dataset.SeriesInstanceUID),
        dicom_path=str(spooled.path),
        encoded_at=now,
        next_attempt_at=now,
    )
    if not captures.insert_object(db, record):
        # A concurrent request queued it first. Both wrote the same bytes to the same spool
        # name (an atomic rename), so the file the winner's row names is whole: keep it.
        raced = captures.get(db, row_id)
        if raced is None:  # the unique key said it exists; only a purge could remove it
            raise RuntimeError(f"outbox row {row_id} vanished during a concurrent enqueue")
        return raced
    return record
