"""Every photo in the shared corpus, and generated phone-size photos, through the encoder.

Each output is checked by tools that are not ours: dciodvfy (conformance), DCMTK dcmj2pnm
and pydicom (decoding), jpegtran (the reference lossless rotation).
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

from capture_api.capture.anatomy import resolve
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Patient
from capture_api.encode.jpeg.markers import scan_data
from capture_api.encode.pipeline import WrappedPhoto, wrap_photo
from capture_api.exceptions import CorruptImage
from tests.conftest import (
    BROKEN_SAMPLES,
    SAMPLES,
    dciodvfy_errors,
    dcmtk_rgb,
    pydicom_rgb,
    require_tool,
    sample_id,
    upright_reference,
    well_formed_samples,
)

#: Mean absolute difference (0-255) allowed between our upright image and the reference.
#: A lossless path decodes within rounding of chroma upsampling; one q95 re-encode adds ~2.
#: A wrong rotation or mirror differs by tens.
UPRIGHT_TOLERANCE = 3.0

#: Metadata that must not survive anywhere in the file.
FORBIDDEN = [
    b"Exif\x00\x00",
    b"http://ns.adobe.com/xap",
    b"<x:xmpmeta",
    b"ICC_PROFILE\x00",
    b"Photoshop 3.0",
]

SITE, SIDE = resolve("left forearm")


def _wrap(data: bytes, capture_id: str) -> WrappedPhoto:
    ctx = CaptureContext(
        capture_id=capture_id, patient=Patient(patient_id="MRN-1"), body_site=SITE, laterality=SIDE
    )
    return wrap_photo(data, ctx)


def _frame(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    return b"".join(generate_frames(ds.PixelData, number_of_frames=1))


@pytest.fixture(scope="module")
def wrapped_samples(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[bytes, Path, WrappedPhoto]]:
    out = tmp_path_factory.mktemp("samples")
    result = {}
    for path in well_formed_samples():
        data = path.read_bytes()
        wrapped = _wrap(data, sample_id(path))
        target = out / (sample_id(path).replace("/", "_") + ".dcm")
        wrapped.save(target)
        result[sample_id(path)] = (data, target, wrapped)
    return result


SAMPLE_IDS = [sample_id(p) for p in well_formed_samples()]


@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_sample_passes_dciodvfy(
    name: str, wrapped_samples: dict[str, tuple[bytes, Path, WrappedPhoto]]
) -> None:
    _, path, _ = wrapped_samples[name]
    assert dciodvfy_errors(path) == []


@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_sample_carries_no_metadata(
    name: str, wrapped_samples: dict[str, tuple[bytes, Path, WrappedPhoto]]
) -> None:
    _, path, wrapped = wrapped_samples[name]
    raw = path.read_bytes()
    assert [marker for marker in FORBIDDEN if marker in raw] == []
    geolocation = wrapped.dataset.group_dataset(0x0016)
    assert not any(0x0070 <= elem.tag.element <= 0x008E for elem in geolocation)
    frame = _frame(path)
    assert frame[:2] == b"\xff\xd8" and frame.rstrip(b"\x00")[-2:] == b"\xff\xd9"


@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_sample_decodes_upright_with_pydicom_and_dcmtk(
    name: str, wrapped_samples: dict[str, tuple[bytes, Path, WrappedPhoto]], tmp_path: Path
) -> None:
    data, path, _ = wrapped_samples[name]
    reference = upright_reference(data)
    for decoded in (pydicom_rgb(path), dcmtk_rgb(path, tmp_path)):
        assert decoded.shape == reference.shape
        assert float(np.abs(decoded - reference).mean()) < UPRIGHT_TOLERANCE


@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_scan_data_is_untouched_unless_a_rotation_needed_it(
    name: str, wrapped_samples: dict[str, tuple[bytes, Path, WrappedPhoto]], tmp_path: Path
) -> None:
    data, path, wrapped = wrapped_samples[name]
    method = "heif" if name.lower().endswith(".heic") else _method(wrapped)
    frame = _frame(path)
    if method == "none":
        assert scan_data(frame) == scan_data(data)
        assert list(wrapped.dataset.ImageType) == ["ORIGINAL", "PRIMARY"]
    elif method == "lossless":
        assert scan_data(frame) == scan_data(
            _jpegtran(data, wrapped.photo.exif.orientation, tmp_path)
        )
        assert list(wrapped.dataset.ImageType) == ["ORIGINAL", "PRIMARY"]
    else:
        assert list(wrapped.dataset.ImageType) == ["DERIVED", "PRIMARY"]
        assert len(wrapped.dataset.LossyImageCompressionMethod) == 2


def _method(wrapped: WrappedPhoto) -> str:
    if wrapped.photo.derived:
        return "reencode"
    return "lossless" if wrapped.photo.exif.orientation != 1 else "none"


_JPEGTRAN_ARGS = {
    2: ["-flip", "horizontal"],
    3: ["-rotate", "180"],
    4: ["-flip", "vertical"],
    5: ["-transpose"],
    6: ["-rotate", "90"],
    7: ["-transverse"],
    8: ["-rotate", "270"],
}


def _jpegtran(data: bytes, orientation: int, tmp: Path) -> bytes:
    """The reference lossless transform (libjpeg-turbo's jpegtran, -perfect)."""
    source = tmp / "in.jpg"
    source.write_bytes(data)
    args = [
        require_tool("jpegtran"),
        "-copy",
        "none",
        "-perfect",
        *_JPEGTRAN_ARGS[orientation],
        str(source),
    ]
    return subprocess.run(args, capture_output=True, check=True).stdout


def test_orientation_samples_cover_both_rotation_paths(
    wrapped_samples: dict[str, tuple[bytes, Path, WrappedPhoto]],
) -> None:
    methods = {
        _method(w) for n, (_, _, w) in wrapped_samples.items() if n.startswith("orientation/")
    }
    assert methods == {"none", "lossless", "reencode"}


@pytest.mark.parametrize("name", sorted(BROKEN_SAMPLES))
def test_broken_sample_is_rejected_with_its_reason(name: str) -> None:
    with pytest.raises(CorruptImage, match=BROKEN_SAMPLES[name]):
        _wrap((SAMPLES / name).read_bytes(), name)


# --- generated phone-size photos ------------------------------------------------------------


def test_portrait_phone_photo_is_rotated_losslessly_and_loses_its_gps(
    phone_12mp_rotated_gps: bytes, tmp_path: Path
) -> None:
    data = phone_12mp_rotated_gps
    wrapped = _wrap(data, "phone-12mp")
    path = tmp_path / "phone.dcm"
    wrapped.save(path)
    assert (wrapped.dataset.Rows, wrapped.dataset.Columns) == (4032, 3024)
    assert wrapped.photo.exif.had_gps and not wrapped.photo.derived
    assert dciodvfy_errors(path) == []
    raw = path.read_bytes()
    latitude = ((51, 1), (30, 1), (2612, 100))  # as written by tests.conftest.phone_jpeg
    packed = [struct.pack(f"{e}6I", *(n for pair in latitude for n in pair)) for e in "<>"]
    assert packed[0] in data or packed[1] in data  # the input really carries the position
    assert not any(p in raw for p in packed)
    assert b"Exif\x00\x00" not in raw
    assert scan_data(_frame(path)) == scan_data(_jpegtran(data, 6, tmp_path))
    reference = upright_reference(data)
    assert float(np.abs(dcmtk_rgb(path, tmp_path) - reference).mean()) < UPRIGHT_TOLERANCE


def test_48_megapixel_photo_keeps_its_scan_bytes(phone_48mp: bytes, tmp_path: Path) -> None:
    wrapped = _wrap(phone_48mp, "phone-48mp")
    path = tmp_path / "phone48.dcm"
    wrapped.save(path)
    assert (wrapped.dataset.Rows, wrapped.dataset.Columns) == (6048, 8064)
    assert scan_data(_frame(path)) == scan_data(phone_48mp)
    assert dciodvfy_errors(path) == []
    reference = upright_reference(phone_48mp)
    assert float(np.abs(pydicom_rgb(path) - reference).mean()) < 0.5
