"""The photo goes from the request body straight into the spool (issue 13, item 4).

No temporary spill (Starlette's form parser is not used, so nothing lands outside the spool),
the SHA-256 is computed on the way, fields are validated as the ``Form(...)`` parameters
were, and every refused request leaves no partial file behind.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.config import Settings
from capture_api.store.records import CaptureRecord
from capture_api.store.spool import Spool, incoming
from tests.conftest import phone_jpeg

PHOTO = phone_jpeg(640, 480, seed=21)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, worker_enabled=False, max_upload_bytes=2_000_000)
    with TestClient(create_app(settings)) as c:
        yield c


def _context(client: TestClient) -> str:
    answer = client.post("/api/v1/contexts", json={"patient": {"id": "MRN-STREAM"}})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["context_id"])


def _send(client: TestClient, photo: bytes | None = PHOTO, **fields: Any) -> Any:
    files = {"photo": ("p.jpg", photo, "image/jpeg")} if photo is not None else None
    return client.post("/api/v1/captures", data=fields, files=files)


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix in (".part", "")]


def _spool(client: TestClient) -> Path:
    return Path(client.app.state.runtime.settings.spool_dir)  # type: ignore[attr-defined]


def test_photo_is_spooled_once_with_its_sha256_and_no_temporary_file(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_spill(*args: object, **kwargs: object) -> None:
        raise AssertionError("the upload was spilled to a temporary file")

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", no_spill)
    context = _context(client)
    answer = _send(client, capture_id="s-1", context_id=context, laterality="L", note="a\nb")
    assert answer.status_code == 202, answer.text
    record = client.app.state.runtime.service.get("s-1")  # type: ignore[attr-defined]
    assert isinstance(record, CaptureRecord)
    assert record.sha256 == hashlib.sha256(PHOTO).hexdigest()
    assert record.size_bytes == len(PHOTO)
    assert record.laterality == "L" and record.note == "a\nb"
    assert Path(record.photo_path or "").read_bytes() == PHOTO
    assert _leftovers(_spool(client)) == []


@pytest.mark.parametrize(
    ("fields", "photo", "status"),
    [
        ({"capture_id": "bad id!"}, PHOTO, 422),  # field validation, as Form(...) did
        ({"laterality": "sideways"}, PHOTO, 422),
        ({}, None, 422),  # no photo
        ({}, b"\xff\xd8" + b"\x00" * 2_100_000, 413),  # over the limit while streaming
        ({}, b"not a photo at all", 415),
        ({"context_id": "no-such-context"}, PHOTO, 404),
    ],
)
def test_refused_requests_leave_nothing_in_the_spool(
    client: TestClient, fields: dict[str, str], photo: bytes | None, status: int
) -> None:
    context = _context(client)
    form = {"capture_id": "r-1", "context_id": context} | fields
    answer = _send(client, photo, **form)
    assert answer.status_code == status, answer.text
    if status == 422 and fields:
        assert answer.json()["detail"][0]["loc"][0] == "body"
    assert _leftovers(_spool(client)) == []


def test_a_resend_keeps_one_file(client: TestClient) -> None:
    context = _context(client)
    for _ in range(2):
        assert _send(client, capture_id="again", context_id=context).status_code == 202
    assert len(list(_spool(client).rglob("*.photo"))) <= 1  # deleted once encoded, or kept once
    assert _leftovers(_spool(client)) == []


def test_incoming_refuses_past_its_limit_and_removes_the_file(tmp_path: Path) -> None:
    from capture_api.exceptions import ImageTooLarge

    upload = incoming(Spool(tmp_path), max_bytes=10)
    upload.write(b"12345")
    with pytest.raises(ImageTooLarge):
        upload.write(b"123456")
    assert not upload.path.exists()
