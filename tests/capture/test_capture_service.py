"""CaptureService races: the upload's encode and the outbox's must never both land."""

from __future__ import annotations

import io
import os
from pathlib import Path

from sqlalchemy import event
from sqlmodel import Session

from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.encode.pipeline import EncoderOptions
from capture_api.intake.service import CaptureRequest, CaptureService
from capture_api.store.db import make_engine, migrate
from capture_api.store.leases import owner_name
from capture_api.store.records import CaptureRecord, CaptureStatus, ContextRecord
from capture_api.store.spool import Spool
from tests.conftest import phone_jpeg


def _service(tmp: Path) -> CaptureService:
    engine = make_engine(f"sqlite:///{tmp / 'capture.db'}")
    migrate(engine)
    return CaptureService(engine, Spool(tmp / "spool"), EncoderOptions())


def test_a_late_encode_does_not_overwrite_a_capture_that_moved_on(tmp_path: Path) -> None:
    service = _service(tmp_path)
    context = service.create_context(ContextIn(patient=PatientIn(id="P1")))
    record, created = service.accept(
        CaptureRequest(capture_id="race", context_id=context.id), io.BytesIO(phone_jpeg(64, 48))
    )
    assert created and record.status == CaptureStatus.ENCODED
    assert record.lease_owner is None  # the upload's claim is released once encoded
    with Session(service.engine) as s:
        row = s.get(CaptureRecord, "race")
        assert row is not None
        row.status = CaptureStatus.VERIFIED
        s.add(row)
        s.commit()
    dicom_files = set((tmp_path / "spool").rglob("*.dcm"))

    record.status = CaptureStatus.RECEIVED  # the stale copy a worker that claimed it still holds
    after = service.encode(record)

    assert after.status == CaptureStatus.VERIFIED
    assert after.dicom_path is not None and Path(after.dicom_path) in dicom_files
    assert set((tmp_path / "spool").rglob("*.dcm")) == dicom_files


def test_the_upload_holds_a_claim_while_it_encodes(tmp_path: Path) -> None:
    service = _service(tmp_path)
    context = service.create_context(ContextIn(patient=PatientIn(id="P1")))
    seen: list[tuple[str | None, str]] = []
    original = service.encode

    def spying_encode(record: CaptureRecord, context: ContextRecord | None = None) -> CaptureRecord:
        current = service.get(record.id)
        assert current is not None
        seen.append((current.lease_owner, current.status))
        return original(record, context)

    service.encode = spying_encode  # type: ignore[method-assign]
    service.accept(
        CaptureRequest(capture_id="held", context_id=context.id), io.BytesIO(phone_jpeg(64, 48))
    )
    assert seen == [(owner_name("upload"), CaptureStatus.RECEIVED.value)]
    assert owner_name("upload").endswith(f"/{os.getpid()}/upload")


def test_an_upload_reads_its_context_once(tmp_path: Path) -> None:
    """The request's checks read the context; the encode in the same request uses it."""
    service = _service(tmp_path)
    context = service.create_context(ContextIn(patient=PatientIn(id="P1")))
    statements: list[str] = []
    event.listen(service.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    record, _ = service.accept(
        CaptureRequest(capture_id="once", context_id=context.id), io.BytesIO(phone_jpeg(64, 48))
    )
    assert record.status == CaptureStatus.ENCODED
    assert len([s for s in statements if "FROM encounter_context" in s]) == 1


def test_captures_refused_for_credentials_can_be_sent_again(tmp_path: Path) -> None:
    service = _service(tmp_path)
    context = service.create_context(ContextIn(patient=PatientIn(id="P1")))
    for capture_id, kind in (("auth", "archive-auth"), ("photo", "corrupt-image")):
        service.accept(
            CaptureRequest(capture_id=capture_id, context_id=context.id),
            io.BytesIO(phone_jpeg(64, 48, seed=len(capture_id))),
        )
        with Session(service.engine) as s:
            row = s.get(CaptureRecord, capture_id)
            assert row is not None
            row.status, row.failure_kind, row.reason = CaptureStatus.FAILED, kind, "refused"
            s.add(row)
            s.commit()

    assert service.requeue_failed(("archive-auth", "corrupt-image")) == 1
    resent, refused = service.get("auth"), service.get("photo")
    assert resent is not None and resent.status == CaptureStatus.ENCODED
    assert resent.reason is None and resent.failure_kind is None
    assert refused is not None and refused.status == CaptureStatus.FAILED
