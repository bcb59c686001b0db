"""The service encodes a spooled photo mapped from its file, as it would encode its bytes.

``store.spool.mapped`` hands the encoder an ``mmap`` of the spooled photo instead of a
``bytes`` copy read into the heap (issue 13, peak RSS per upload). Nothing may change for
that: over the shared sample photos (JPEG and HEIC, rotated and not, and the broken one) the
mapped photo gives the same DICOM file byte for byte, or the same refusal in the same words,
and the upright scan is written from the mapping itself, not from a copy of it.
"""

from __future__ import annotations

import datetime as dt
import mmap
from pathlib import Path

import pytest

from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Patient
from capture_api.encode.photo_data import PhotoData
from capture_api.encode.pipeline import wrap_photo
from capture_api.encode.prepare import prepare_photo
from capture_api.exceptions import CorruptImage, InputRejected
from capture_api.store.spool import mapped
from tests.conftest import phone_jpeg, sample_id, sample_paths

NOW = dt.datetime(2026, 12, 6, 15, 0, tzinfo=dt.UTC)


def _ctx() -> CaptureContext:
    return CaptureContext(
        capture_id="mapped-1",
        patient=Patient(patient_id="MRN-MAP"),
        study_uid="1.2.826.0.1.3680043.10.543.77",
    )


def _outcome(data: PhotoData) -> bytes | str:
    """The DICOM file, or the refusal's type and words."""
    try:
        return wrap_photo(data, _ctx(), now=NOW).to_bytes()
    except InputRejected as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("path", sample_paths(), ids=sample_id)
def test_a_mapped_sample_gives_the_same_dicom_file_or_refusal(path: Path) -> None:
    from_bytes = _outcome(path.read_bytes())
    mapping = mapped(path)
    assert isinstance(mapping, mmap.mmap)
    assert _outcome(mapping) == from_bytes


def test_the_upright_scan_is_written_from_the_mapping_not_a_copy(tmp_path: Path) -> None:
    path = tmp_path / "upright.photo"
    path.write_bytes(phone_jpeg(640, 480, seed=5))
    mapping = mapped(path)
    photo = prepare_photo(mapping)
    views = [part for part in photo.parts if isinstance(part, memoryview)]
    assert len(views) == 1 and views[0].obj is mapping  # the scan: megabytes, never copied
    assert views[0].nbytes > 0.9 * len(photo.jpeg)


def test_a_rotated_photo_is_turned_from_the_mapping(tmp_path: Path) -> None:
    path = tmp_path / "rotated.photo"
    path.write_bytes(phone_jpeg(640, 480, orientation=6, seed=6))
    photo = prepare_photo(mapped(path))
    assert (photo.frame.columns, photo.frame.rows) == (480, 640)
    assert photo.derivation


def test_an_empty_spooled_photo_is_refused_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.photo"
    path.write_bytes(b"")
    assert mapped(path) == b""  # an empty file cannot be mapped
    with pytest.raises(CorruptImage, match="the file is empty"):
        prepare_photo(mapped(path))
