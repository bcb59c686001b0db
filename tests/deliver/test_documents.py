"""Documents capture makes (a KOS here) take the photo's road to the archive (issues 16, 18).

A Key Object Selection document built by highdicom (an independent writer) from the archived
photo's header is queued with ``enqueue_object``; the real outbox worker stores it in the real
embedded archive and verifies it. Queued twice, it is one row and one instance; it is not one
of the context's photos (the session's list, the numbering of the next photo).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import highdicom as hd
import pytest
from fastapi.testclient import TestClient
from pydicom import Dataset
from pydicom.sr.codedict import codes

from capture_api.api.app import create_app
from capture_api.config import Settings
from capture_api.deliver import InstanceRef, document_id, enqueue_object
from capture_api.store import CaptureStatus, ObjectKind
from capture_api.store import captures as capture_rows
from tests.conftest import phone_jpeg


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, poll_seconds=0.05, retry_base_seconds=0.05)
    with TestClient(create_app(settings)) as client:
        yield client


def _until_verified(client: TestClient, capture_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.get(f"/api/v1/captures/{capture_id}").json()["status"] == "verified":
            return
        time.sleep(0.05)
    raise AssertionError(f"{capture_id} never verified")


def test_a_kos_is_delivered_once_and_is_not_a_photo(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    context = client.post("/api/v1/contexts", json={"patient": {"id": "P-DOC"}}).json()
    context_id = context["context_id"]
    sent = client.post(
        "/api/v1/captures",
        data={"capture_id": "doc-photo-1", "context_id": context_id},
        files={"photo": ("p.jpg", phone_jpeg(320, 240), "image/jpeg")},
    )
    assert sent.status_code == 202, sent.text
    _until_verified(client, "doc-photo-1")
    photo = capture_rows.get(runtime.engine, "doc-photo-1")
    assert photo is not None and photo.sop_instance_uid
    photo_ref = InstanceRef(photo.study_uid or "", photo.series_uid or "", photo.sop_instance_uid)
    header = runtime.archive.header(photo_ref)
    assert header is not None

    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=[header],
        content=hd.ko.KeyObjectSelection(
            document_title=codes.DCM.RejectedForQualityReasons,
            referenced_objects=[header],
        ),
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    first = enqueue_object(
        runtime.engine, runtime.service.spool, kos, kind=ObjectKind.KOS, context_id=context_id
    )
    again = enqueue_object(
        runtime.engine, runtime.service.spool, kos, kind=ObjectKind.KOS, context_id=context_id
    )
    assert first.id == again.id == document_id(ObjectKind.KOS, kos.SOPInstanceUID)

    deadline = time.monotonic() + 30
    row = capture_rows.get(runtime.engine, first.id)
    while row is not None and row.status != CaptureStatus.VERIFIED and time.monotonic() < deadline:
        time.sleep(0.05)
        row = capture_rows.get(runtime.engine, first.id)
    assert row is not None and row.status == CaptureStatus.VERIFIED, row.reason if row else None
    assert row.stow_requests == 1  # stored once
    kos_ref = InstanceRef(kos.StudyInstanceUID, kos.SeriesInstanceUID, kos.SOPInstanceUID)
    archived = runtime.archive.header(kos_ref)
    assert archived is not None and archived.Modality == "KO"
    assert archived.PatientID == header.PatientID

    listed = client.get("/api/v1/captures", params={"context_id": context_id}).json()
    assert [c["capture_id"] for c in listed] == ["doc-photo-1"]
    sent = client.post(
        "/api/v1/captures",
        data={"capture_id": "doc-photo-2", "context_id": context_id},
        files={"photo": ("p.jpg", phone_jpeg(320, 240), "image/jpeg")},
    )
    assert sent.status_code == 202, sent.text
    second = capture_rows.get(runtime.engine, "doc-photo-2")
    assert second is not None and second.instance_number == 2  # the KOS is not counted


def test_photos_are_not_enqueued_as_documents(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="capture service"):
        enqueue_object(
            runtime.engine,
            runtime.service.spool,
            Dataset(),  # never read: the kind is refused first
            kind=ObjectKind.PHOTO,
            context_id="c",
        )
