"""Re-filing with the embedded archive (no DICOMweb): the photo comes back from the File-set
(``LocalArchive.retrieve``) once the spool let it go, and the new object holds the same bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydicom import dcmread
from pydicom.encaps import generate_frames

from capture_api.api.app import create_app
from capture_api.deliver import InstanceRef
from capture_api.store import captures
from tests.audit.conftest import settings_for
from tests.conftest import dciodvfy_errors
from tests.correct.conftest import (
    PATIENT_A,
    PATIENT_B,
    engine_of,
    open_context,
    send_photo,
    wait_status,
)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path))) as client:
        yield client


def _frame(client: TestClient, capture_id: str, tmp_path: Path) -> bytes:
    row = captures.get(engine_of(client), capture_id)
    assert row is not None and row.sop_instance_uid
    ref = InstanceRef(row.study_uid or "", row.series_uid or "", row.sop_instance_uid)
    data = client.app.state.runtime.archive.instance(ref)  # type: ignore[attr-defined]
    (tmp_path / f"{capture_id}.dcm").write_bytes(data)
    assert dciodvfy_errors(tmp_path / f"{capture_id}.dcm") == []
    dataset = dcmread(tmp_path / f"{capture_id}.dcm")
    return next(generate_frames(dataset.PixelData, number_of_frames=1))


def test_refiled_from_the_embedded_archive_with_the_same_bitstream(
    local: TestClient, tmp_path: Path
) -> None:
    context_a = open_context(local, PATIENT_A)
    context_b = open_context(local, PATIENT_B)
    send_photo(local, context_a, "local-1")
    rejected = local.post("/api/v1/captures/local-1/rejection", json={"reason": "worklist-entry"})
    assert rejected.status_code == 201 and rejected.json()["reason_code"] == "113038"
    refiled = local.post(
        "/api/v1/captures/local-1/rejection/refile", json={"context_id": context_b}
    )
    assert refiled.status_code == 202, refiled.text
    new_id = refiled.json()["capture_id"]
    wait_status(local, new_id, "verified")
    assert _frame(local, new_id, tmp_path) == _frame(local, "local-1", tmp_path)
