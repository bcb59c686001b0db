"""The capture API end to end with the embedded archive (SQLite + local DICOMDIR folder)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.fileset import FileSet
from sqlalchemy import text

from capture_api.api.app import create_app
from capture_api.capture.anatomy import resolve
from capture_api.config import Settings
from capture_api.store.records import CaptureRecord, CaptureStatus
from tests.conftest import SAMPLES, phone_jpeg

FOREARM, LEFT = resolve("left forearm")
SACRUM, _ = resolve("sacrum")
PHOTO = (SAMPLES / "orientation" / "portrait_6.jpg").read_bytes()
PATIENT = {"id": "MRN-77", "name": {"family": "Doe", "given": "Jane"}, "sex": "F"}


def _settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp, "poll_seconds": 0.05, "retry_base_seconds": 0.05}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path))) as c:
        yield c


def _context(client: TestClient, patient: dict[str, Any] = PATIENT) -> str:
    response = client.post(
        "/api/v1/contexts", json={"patient": patient, "encounter": {"admission_id": "V-1"}}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["context_id"])


def _upload(
    client: TestClient, context_id: str, capture_id: str, photo: bytes = PHOTO, **form: str
) -> Any:
    fields = {"capture_id": capture_id, "context_id": context_id} | form
    return client.post(
        "/api/v1/captures", data=fields, files={"photo": ("photo.jpg", photo, "image/jpeg")}
    )


def _wait(
    client: TestClient, capture_id: str, status: str = "verified", timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/api/v1/captures/{capture_id}").json()
        if body["status"] == status:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{capture_id} stayed {body['status']} ({body})")


def _archive_uids(data_dir: Path) -> list[str]:
    dicomdir = data_dir / "archive" / "DICOMDIR"
    if not dicomdir.exists():
        return []
    return [str(i.SOPInstanceUID) for i in FileSet(dicomdir)]


def test_upload_is_accepted_then_verified_in_the_local_archive(
    client: TestClient, tmp_path: Path
) -> None:
    ctx = _context(client)
    response = _upload(client, ctx, "cap-1", body_site=FOREARM.code_value, laterality="L")
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == body["status_url"] == "/api/v1/captures/cap-1"
    assert body["status"] in {"encoded", "stored", "verified"}
    done = _wait(client, "cap-1")
    assert done["verified_at"] is not None and done["reason"] is None
    assert _archive_uids(tmp_path) == [body["sop_instance_uid"]]
    (instance,) = list(FileSet(tmp_path / "archive" / "DICOMDIR"))
    ds = pydicom.dcmread(instance.path)
    assert ds.PatientID == "MRN-77" and ds.AdmissionID == "V-1"
    assert (
        ds.AnatomicRegionSequence[0].CodeValue == FOREARM.code_value and ds.ImageLaterality == "L"
    )


def test_spooled_bytes_are_deleted_once_verified(client: TestClient, tmp_path: Path) -> None:
    ctx = _context(client)
    assert _upload(client, ctx, "cap-spool").status_code == 202
    _wait(client, "cap-spool")
    leftovers = [p for p in (tmp_path / "spool").rglob("*") if p.is_file()]
    assert leftovers == []


def test_spool_is_kept_for_the_configured_retention(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path, spool_retention_seconds=3600))) as client:
        ctx = _context(client)
        _upload(client, ctx, "cap-keep")
        _wait(client, "cap-keep")
        kept = sorted(p.suffix for p in (tmp_path / "spool").rglob("*") if p.is_file())
    assert kept == [".dcm", ".photo"]


def test_resending_the_same_capture_is_idempotent(client: TestClient, tmp_path: Path) -> None:
    ctx = _context(client)
    first = _upload(client, ctx, "cap-twice").json()
    _wait(client, "cap-twice")
    again = _upload(client, ctx, "cap-twice")
    assert again.status_code == 202
    assert again.json()["sop_instance_uid"] == first["sop_instance_uid"]
    assert again.json()["status"] == "verified"
    assert _archive_uids(tmp_path) == [first["sop_instance_uid"]]
    assert len(client.get(f"/api/v1/captures?context_id={ctx}").json()) == 1


def test_same_id_with_another_photo_is_a_conflict(client: TestClient) -> None:
    ctx = _context(client)
    _upload(client, ctx, "cap-c")
    other = _upload(client, ctx, "cap-c", photo=phone_jpeg(64, 48))
    assert other.status_code == 409
    assert "different photo" in other.json()["detail"]


@pytest.mark.parametrize(
    ("photo", "status", "words"),
    [
        ((SAMPLES / "camera" / "corrupted.jpg").read_bytes(), 422, "premature end of data segment"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), 415, "PNG"),
        (b"", 422, "empty"),
    ],
    ids=["corrupt", "png", "empty"],
)
def test_refused_photo_answers_with_its_reason_and_is_recorded(
    client: TestClient, photo: bytes, status: int, words: str
) -> None:
    ctx = _context(client)
    response = _upload(client, ctx, "cap-bad", photo=photo)
    assert response.status_code == status
    assert words in response.json()["detail"]
    record = client.get("/api/v1/captures/cap-bad").json()
    assert record["status"] == "failed" and words in record["reason"]
    assert _upload(client, ctx, "cap-bad", photo=photo).status_code == status  # same answer again


def test_metadata_errors(client: TestClient) -> None:
    ctx = _context(client)
    no_side = _upload(client, ctx, "c1", body_site=FOREARM.code_value)
    assert no_side.status_code == 422 and "left, right or both" in no_side.json()["detail"]
    unknown_site = _upload(client, ctx, "c2", body_site="123456789")
    assert unknown_site.status_code == 422 and "not a body site" in unknown_site.json()["detail"]
    assert _upload(client, ctx, "bad id!").status_code == 422
    assert _upload(client, "no-such-context", "c3").status_code == 404
    assert client.get("/api/v1/captures/none").status_code == 404


def test_upload_over_the_limit_is_413_before_and_while_reading(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path, max_upload_bytes=50_000))) as client:
        ctx = _context(client)
        declared = _upload(client, ctx, "big", photo=b"\xff\xd8\xff" + bytes(400_000))
        assert declared.status_code == 413 and "MB limit" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:
            boundary = b"--b\r\n"
            yield boundary + b'Content-Disposition: form-data; name="capture_id"\r\n\r\nbig2\r\n'
            yield (
                boundary
                + f'Content-Disposition: form-data; name="context_id"\r\n\r\n{ctx}\r\n'.encode()
            )
            yield (
                boundary + b'Content-Disposition: form-data; name="photo"; filename="p.jpg"\r\n\r\n'
            )
            for _ in range(40):
                yield bytes(10_000)
            yield b"\r\n--b--\r\n"

        streamed = client.post(
            "/api/v1/captures",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert streamed.status_code == 413
        assert client.get("/api/v1/captures/big2").status_code == 404


def test_priors_of_the_patient_filtered_by_site_and_thumbnails_guarded(client: TestClient) -> None:
    ctx = _context(client)
    _upload(client, ctx, "p1", body_site=FOREARM.code_value, laterality="L")
    _upload(client, ctx, "p2", photo=phone_jpeg(320, 240, seed=3), body_site=SACRUM.code_value)
    other = _context(client, {"id": "OTHER-1"})
    _upload(client, other, "p3", photo=phone_jpeg(320, 240, seed=4), body_site=SACRUM.code_value)
    for capture_id in ("p1", "p2", "p3"):
        _wait(client, capture_id)
    every = client.get(f"/api/v1/contexts/{ctx}/priors")
    assert every.headers["cache-control"] == "no-store"
    assert len(every.json()) == 2
    sacral = client.get(f"/api/v1/contexts/{ctx}/priors?body_site={SACRUM.code_value}").json()
    assert [p["body_site_code"] for p in sacral] == [SACRUM.code_value]
    thumb = client.get(sacral[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    foreign = client.get(f"/api/v1/contexts/{other}/priors").json()[0]
    stolen = sacral[0]["thumbnail_url"].replace(
        sacral[0]["sop_instance_uid"], foreign["sop_instance_uid"]
    )
    assert client.get(stolen).status_code == 404


def test_a_received_row_left_by_a_crash_is_encoded_and_delivered(
    client: TestClient, tmp_path: Path
) -> None:
    ctx = _context(client)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    spool = runtime.service.spool
    photo = spool.write_bytes(spool.path_for("crash", ".photo"), PHOTO)
    from sqlmodel import Session

    with Session(runtime.engine) as s:
        s.add(
            CaptureRecord(
                id="crash",
                context_id=ctx,
                sha256=photo.sha256,
                size_bytes=photo.size,
                photo_path=str(photo.path),
            )
        )
        s.commit()
    done = _wait(client, "crash")
    assert done["sop_instance_uid"] in _archive_uids(tmp_path)


def test_sqlite_runs_in_wal_mode(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_captures_are_listed_per_context(client: TestClient) -> None:
    a, b = _context(client), _context(client, {"id": "MRN-2"})
    _upload(client, a, "a1")
    _upload(client, a, "a2", photo=phone_jpeg(64, 48, seed=9))
    _upload(client, b, "b1", photo=phone_jpeg(64, 48, seed=10))
    listed = client.get(f"/api/v1/captures?context_id={a}").json()
    assert [c["capture_id"] for c in listed] == ["a1", "a2"]
    assert [c["instance_number"] for c in listed] == [1, 2]
    assert json.dumps(listed).count("MRN-2") == 0
    assert CaptureStatus.VERIFIED.value == "verified"
