"""An upright photo's DICOM object is spooled as references to the photo (``store.composed``):
its megabytes are written once, and every reader still gets the object byte for byte.

The oracle for the bytes is pydicom's own writer (``encapsulate`` + ``dcmwrite`` of the same
dataset, as ``tests/encode/test_part10.py``), and dciodvfy and DCMTK read the object as the
outbox sends it. On a database spool the object is read on another replica, from the
database alone.
"""

from __future__ import annotations

import io
from pathlib import Path
from unittest.mock import ANY

import pytest
from sqlalchemy import Engine

from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.encode.jpeg.markers import scan_data
from capture_api.encode.pipeline import EncoderOptions, wrap_photo
from capture_api.intake.service import CaptureRequest, CaptureService
from capture_api.store import composed, spool_source
from capture_api.store.db import make_engine, migrate
from capture_api.store.records import CaptureStatus
from capture_api.store.spool import Spool
from capture_api.store.spool_blobs import DatabaseSpool
from capture_api.store.spool_source import FolderReader
from tests.conftest import dciodvfy_errors, dcmtk_rgb, phone_jpeg, pydicom_rgb
from tests.deliver.service_process import fresh_postgres_database, pg_rows
from tests.encode.test_part10 import _ctx, _pydicom_bytes


def _engine(tmp: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp / 'capture.db'}")
    migrate(engine)
    return engine


def _accepted(service: CaptureService, capture_id: str, photo: bytes) -> tuple[Path, Path]:
    context = service.create_context(ContextIn(patient=PatientIn(id=f"MRN-{capture_id}")))
    record, _ = service.accept(
        CaptureRequest(capture_id=capture_id, context_id=context.id), io.BytesIO(photo)
    )
    assert record.status == CaptureStatus.ENCODED, record.reason
    assert record.photo_path and record.dicom_path
    return Path(record.photo_path), Path(record.dicom_path)


def test_the_composed_object_is_pydicoms_bytes_from_the_photo_written_once(
    tmp_path: Path,
) -> None:
    photo = phone_jpeg(640, 480, seed=81)
    wrapped = wrap_photo(photo, _ctx())
    layout = wrapped.layout()
    assert layout is not None
    assert [piece for piece in layout if isinstance(piece, tuple)] != []

    spool = Spool(tmp_path / "spool")
    photo_file = spool.path_for("composed-photo", ".jpg")
    spool.write_bytes(photo_file, photo)
    written = spool.write_composed(spool.path_for("composed-dicom", ".dcm"), layout, photo_file)

    assert written.path.read_bytes().startswith(composed.MAGIC)
    assert written.size < 8 * 1024  # the header and the JPEG's tables, not the photo
    found = FolderReader().source(str(written.path))
    expected = _pydicom_bytes(wrapped)
    assert found.size == len(expected)
    assert found.read() == expected


def test_ranges_are_read_across_pieces_of_any_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several ranges (an empty one, two that meet), literal bytes between them, read in
    pieces that do not line up with any of them; ranges out of order are refused."""
    spool = Spool(tmp_path / "spool")
    photo = bytes(range(256)) * 40
    photo_file = spool.path_for("bytes", ".jpg")
    spool.write_bytes(photo_file, photo)
    pieces: list[composed.Piece] = [b"head", (100, 2000), b"mid", (2000, 2000), (2000, 2600)]
    pieces += [(5000, 10240), b"tail"]
    target = spool.path_for("object", ".dcm")
    spool.write_composed(target, pieces, photo_file)
    expected = b"head" + photo[100:2000] + b"mid" + photo[2000:2600] + photo[5000:] + b"tail"
    for size in (1, 333, 4096, 1 << 20):
        monkeypatch.setattr(spool_source, "SEND_CHUNK", size)
        source = spool.source(str(target))
        assert (source.size, b"".join(source.chunks())) == (len(expected), expected)
    with pytest.raises(ValueError, match="ascend"):
        spool.write_composed(target, [(2000, 2600), (100, 200)], photo_file)
    with pytest.raises(ValueError, match="not in the spool beside"):
        spool.write_composed(target, pieces, tmp_path / photo_file.name)


def test_the_outbox_reads_it_in_pieces_and_independent_readers_accept_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read in pieces much smaller than the scan (a range crosses many of them), as the
    outbox streams a STOW-RS body; what it sends is what dciodvfy and DCMTK read."""
    service = CaptureService(_engine(tmp_path), Spool(tmp_path / "spool"), EncoderOptions())
    photo = phone_jpeg(1024, 768, seed=82)
    photo_file, dicom_file = _accepted(service, "pieces", photo)
    assert dicom_file.stat().st_size < 8 * 1024 < photo_file.stat().st_size

    monkeypatch.setattr(spool_source, "SEND_CHUNK", 1000)
    source = service.spool.source(str(dicom_file))
    chunks = list(source.chunks())
    assert len(chunks) > len(photo) // 1000
    sent = tmp_path / "sent.dcm"
    sent.write_bytes(b"".join(chunks))
    assert sent.stat().st_size == source.size

    assert dciodvfy_errors(sent) == []
    assert (abs(dcmtk_rgb(sent, tmp_path) - pydicom_rgb(sent)) <= 1).all()
    assert scan_data(photo) in sent.read_bytes()  # the camera's scan, byte for byte


def test_a_photo_turned_upright_is_spooled_whole(tmp_path: Path) -> None:
    """Turned photos are new bytes (the lossless transform's): there is nothing to refer to."""
    service = CaptureService(_engine(tmp_path), Spool(tmp_path / "spool"), EncoderOptions())
    _, dicom_file = _accepted(service, "turned", phone_jpeg(640, 480, orientation=6, seed=83))
    data = dicom_file.read_bytes()
    assert data[128:132] == b"DICM"
    assert FolderReader().source(str(dicom_file)).read() == data


def test_a_missing_or_cut_photo_is_an_error_not_a_short_object(tmp_path: Path) -> None:
    service = CaptureService(_engine(tmp_path), Spool(tmp_path / "spool"), EncoderOptions())
    photo_file, dicom_file = _accepted(service, "cut", phone_jpeg(640, 480, seed=84))
    photo_file.write_bytes(photo_file.read_bytes()[:-3000])  # damaged on disk
    source = FolderReader().source(str(dicom_file))
    with pytest.raises(OSError, match="shorter than the object needs"):
        source.read()
    photo_file.unlink()
    with pytest.raises(FileNotFoundError):
        FolderReader().source(str(dicom_file))


def test_on_a_database_spool_another_replica_reads_it_from_the_database(tmp_path: Path) -> None:
    """The object's row in ``spool_blob`` is its few kilobytes, not a second photo; a replica
    with none of the files (A's disk is gone) reads the whole object from the database."""
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            service = CaptureService(
                engine, DatabaseSpool(tmp_path / "a", engine), EncoderOptions()
            )
            photo = phone_jpeg(1024, 768, seed=85)
            photo_file, dicom_file = _accepted(service, "replicas", photo)
            on_a = service.spool.source(str(dicom_file)).read()
            sizes = dict(
                pg_rows(url, "SELECT name, sum(length(data)) FROM spool_blob GROUP BY name")
            )
            assert sizes == {photo_file.name: len(photo), dicom_file.name: ANY}
            assert sizes[dicom_file.name] < 8 * 1024 < len(on_a)

            for path in (photo_file, dicom_file):
                path.unlink()  # A's disk is gone
            replica_b = DatabaseSpool(tmp_path / "b", engine)
            assert replica_b.source(str(dicom_file)).read() == on_a
            assert scan_data(photo) in on_a
        finally:
            engine.dispose()
