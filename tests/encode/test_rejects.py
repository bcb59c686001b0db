"""Bad input gets a clear error (the right class, a message naming the problem), never a
crash or a hang; odd-but-harmless input (junk EXIF, grayscale, RGB-coded) is accepted."""

from __future__ import annotations

import io
import random
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image

from capture_api.capture.anatomy import resolve
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Patient
from capture_api.encode import prepare as prepare_module
from capture_api.encode.jpeg.markers import ColorTransform, read_frame, scan_data
from capture_api.encode.pipeline import wrap_photo
from capture_api.encode.prepare import Limits, prepare_photo
from capture_api.exceptions import (
    CorruptImage,
    ImageTooLarge,
    InputRejected,
    UnsupportedFormat,
)
from tests.conftest import SAMPLES, phone_jpeg, require_tool

SITE, SIDE = resolve("left forearm")


# --- helpers -----------------------------------------------------------------------------------


def _rgb(width: int = 80, height: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _encoded(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def _baseline() -> bytes:
    return _encoded(_rgb(), "JPEG", quality=90)


def _patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def _sof0(data: bytes) -> int:
    """Offset of the FFC0 marker (Pillow writes no thumbnail, so the first one is the frame)."""
    return data.index(b"\xff\xc0")


def _rejected(data: bytes, limits: Limits | None = None) -> InputRejected:
    with pytest.raises(InputRejected) as info:
        prepare_photo(data, limits or Limits())
    return info.value


def _assert_readable(message: str, *words: str) -> None:
    """One human sentence naming the problem: no bytes reprs, no newlines, no tracebacks."""
    assert message.strip(), "empty message"
    for noise in ("b'\\x", 'b"\\x', "\\x", "\n", "Traceback", "<class", "Error:"):
        assert noise not in message, f"{noise!r} in {message!r}"
    assert len(message) < 400, message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"


def _context() -> CaptureContext:
    return CaptureContext(
        capture_id="rejects-1",
        patient=Patient(patient_id="MRN-1"),
        body_site=SITE,
        laterality=SIDE,
    )


@pytest.fixture(scope="module")
def phone() -> bytes:
    return phone_jpeg(320, 240, seed=3)


# --- empty, random, truncated ------------------------------------------------------------------


def test_zero_bytes_is_corrupt_and_says_empty() -> None:
    error = _rejected(b"")
    assert type(error) is CorruptImage
    _assert_readable(str(error), "empty")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_are_unsupported(seed: int) -> None:
    rng = random.Random(seed)
    data = bytes([0x00]) + bytes(rng.randrange(256) for _ in range(31))  # never FFD8 / a magic
    error = _rejected(data)
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "not a JPEG or HEIC")


#: Where to cut phone_jpeg(320, 240): a function of the full file giving the kept length.
_CUTS: dict[str, Callable[[bytes], int]] = {
    "after-soi+1": lambda d: 4,
    "inside-app0-length": lambda d: 5,
    "inside-app0": lambda d: 10,
    "between-segments": lambda d: 20,
    "inside-exif": lambda d: d.index(b"Exif\x00\x00") + 30,
    "inside-dqt": lambda d: d.index(b"\xff\xdb") + 10,
    "inside-sof": lambda d: _sof0(d) + 6,
    "inside-dht": lambda d: d.index(b"\xff\xc4") + 8,
    "inside-sos-header": lambda d: d.index(b"\xff\xda") + 6,
    "10%": lambda d: len(d) * 10 // 100,
    "50%": lambda d: len(d) * 50 // 100,
    "90%": lambda d: len(d) * 90 // 100,
    "99%": lambda d: len(d) * 99 // 100,
    "eoi-half": lambda d: len(d) - 1,
    "no-eoi": lambda d: len(d) - 2,
}


@pytest.mark.parametrize("cut", list(_CUTS), ids=list(_CUTS))
def test_truncated_jpeg_is_corrupt(phone: bytes, cut: str) -> None:
    length = _CUTS[cut](phone)
    assert 0 < length < len(phone)
    error = _rejected(phone[:length])
    assert type(error) is CorruptImage, f"cut at {length}: {error!r}"
    _assert_readable(str(error))
    assert "cut off" in str(error) or "damaged" in str(error)


def test_jpeg_cut_after_three_bytes_is_corrupt(phone: bytes) -> None:
    error = _rejected(phone[:3])
    assert type(error) is CorruptImage


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_scan_with_eoi_appended_is_damaged(phone: bytes, fraction: float) -> None:
    """The marker walk is satisfied; only the strict decode can see the missing data."""
    data = phone[: int(len(phone) * fraction)] + b"\xff\xd9"
    error = _rejected(data)
    assert type(error) is CorruptImage
    _assert_readable(str(error), "damaged", "premature end of data segment")


# --- other formats sent as if they were .jpg ---------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("PNG", "PNG"), ("GIF", "GIF"), ("TIFF", "TIFF"), ("BMP", "BMP"), ("WEBP", "WebP")],
)
def test_other_image_formats_are_unsupported(fmt: str, name: str) -> None:
    error = _rejected(_encoded(_rgb(), fmt))
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), f"a {name} file", "JPEG or HEIC")


def test_pdf_is_unsupported() -> None:
    error = _rejected(_encoded(_rgb(), "PDF"))
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "PDF")


def test_dicom_file_is_unsupported() -> None:
    error = _rejected(bytes(128) + b"DICM" + bytes(64))
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "DICOM")


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = b"ftyp" + major + bytes(4) + b"".join(compatible)
    return struct.pack(">I", len(body) + 4) + body + bytes(32)


@pytest.mark.parametrize(
    "data",
    [_ftyp(b"isom", b"isom", b"iso2", b"mp41"), _ftyp(b"mp42", b"mp42"), _ftyp(b"qt  ", b"qt  ")],
    ids=["mp4-isom", "mp4-mp42", "quicktime"],
)
def test_video_ftyp_is_unsupported(data: bytes) -> None:
    error = _rejected(data)
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "video")


def test_avif_ftyp_without_heif_brand_is_unsupported() -> None:
    error = _rejected(_ftyp(b"avif", b"avif"))
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "AVIF")


def test_real_avif_is_unsupported_avif() -> None:
    """A real AVIF's ftyp: major 'avif', compatible 'avif mif1 miaf MA1B' (libavif/Pillow)."""
    error = _rejected(_ftyp(b"avif", b"avif", b"mif1", b"miaf", b"MA1B"))
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "AVIF")


def test_wrap_photo_refuses_png_before_building_anything() -> None:
    with pytest.raises(UnsupportedFormat, match="PNG"):
        wrap_photo(_encoded(_rgb(), "PNG"), _context())


# --- JPEG variants DICOM photos do not carry ---------------------------------------------------


def test_progressive_jpeg_is_unsupported() -> None:
    error = _rejected(_encoded(_rgb(), "JPEG", progressive=True))
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "progressive")


def test_cmyk_jpeg_is_unsupported() -> None:
    error = _rejected(_encoded(_rgb().convert("CMYK"), "JPEG"))
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "CMYK")


def test_twelve_bit_jpeg_is_unsupported() -> None:
    data = _baseline()
    twelve = _patched(data, _sof0(data) + 4, bytes([12]))  # FFC0, 2 length bytes, precision
    assert read_frame(twelve).precision == 12
    error = _rejected(twelve)
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), "12-bit", "8-bit")


@pytest.mark.parametrize(
    ("marker", "label"),
    [(0xC9, "SOF9"), (0xC3, "SOF3"), (0xCA, "SOF10"), (0xC5, "SOF5")],
    ids=["arithmetic", "lossless", "arithmetic-progressive", "hierarchical"],
)
def test_non_huffman_sequential_jpeg_is_unsupported(marker: int, label: str) -> None:
    data = _baseline()
    error = _rejected(_patched(data, _sof0(data) + 1, bytes([marker])))
    assert type(error) is UnsupportedFormat
    _assert_readable(str(error), label)


def test_extended_sof1_eight_bit_is_accepted() -> None:
    data = _baseline()
    prepared = prepare_photo(_patched(data, _sof0(data) + 1, b"\xc1"))
    assert prepared.frame.sof_marker == 0xC1
    assert prepared.derived is False


# --- limits ------------------------------------------------------------------------------------


def test_decompression_bomb_is_refused_from_the_header_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _baseline()
    bomb = _patched(data, _sof0(data) + 5, struct.pack(">HH", 60000, 60000))
    assert len(bomb) < 10_000

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(prepare_module, "check_decodes", no_decode)
    start = time.perf_counter()
    with pytest.raises(ImageTooLarge) as info:
        prepare_photo(bomb)
    assert time.perf_counter() - start < 2.0
    _assert_readable(str(info.value), "60000x60000", "megapixels")


def test_byte_limit_names_megabytes() -> None:
    data = _baseline()
    assert len(data) > 1000
    error = _rejected(data, Limits(max_bytes=1000))
    assert type(error) is ImageTooLarge
    _assert_readable(str(error), "MB", "limit")


def test_file_exactly_at_byte_limit_is_accepted() -> None:
    data = _baseline()
    assert prepare_photo(data, Limits(max_bytes=len(data))).frame.columns == 80


def test_pixel_limit_names_megapixels() -> None:
    error = _rejected(_baseline(), Limits(max_pixels=1000))
    assert type(error) is ImageTooLarge
    _assert_readable(str(error), "megapixels", "80x64")


# --- odd metadata is not a reason to lose a photo ---------------------------------------------


def _junk_exif_segment() -> bytes:
    rng = random.Random(64)
    text = "Cam\xe9ra \xff\xfe Modell \\ \x00 '; DROP TABLE photos; --".encode("latin-1")
    body = b"Exif\x00\x00"
    while len(body) < 65533:
        body += text + bytes(rng.randrange(256) for _ in range(200))
    body = body[:65533]  # the largest payload a segment can hold (length field 0xFFFF)
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def test_64k_junk_exif_is_ignored_and_the_photo_kept() -> None:
    base = _baseline()
    segment = _junk_exif_segment()
    assert len(segment) == 65537
    data = base[:2] + segment + base[2:]
    prepared = prepare_photo(data)
    assert prepared.exif.orientation == 1
    assert prepared.exif.make is None
    assert prepared.exif.taken_at is None
    assert prepared.exif.acquisition == {}
    assert "APP1:Exif" in prepared.removed_segments
    assert b"DROP TABLE" not in prepared.jpeg
    assert scan_data(prepared.jpeg) == scan_data(base)


@pytest.mark.parametrize(
    "path",
    sorted((SAMPLES / "tests").glob("*.jpg")) + sorted((SAMPLES / "invalid").glob("*.jpg")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_broken_exif_samples_are_accepted(path: Path) -> None:
    data = path.read_bytes()
    prepared = prepare_photo(data)
    assert prepared.jpeg.startswith(b"\xff\xd8") and prepared.jpeg.endswith(b"\xff\xd9")
    assert b"Exif\x00\x00" not in prepared.jpeg
    assert b"ns.adobe.com/xap" not in prepared.jpeg
    assert prepared.removed_segments  # each of these carries EXIF or XMP
    assert 1 <= prepared.exif.orientation <= 8


def test_broken_exif_samples_exist() -> None:
    assert len(list((SAMPLES / "tests").glob("*.jpg"))) >= 3
    assert len(list((SAMPLES / "invalid").glob("*.jpg"))) >= 2


# --- HEIC --------------------------------------------------------------------------------------


def _cut_heic() -> bytes:
    return (SAMPLES / "heic" / "IMG_5195.HEIC").read_bytes()[:5000]


def test_cut_off_heic_is_corrupt() -> None:
    error = _rejected(_cut_heic())
    assert type(error) is CorruptImage
    assert "HEIC" in str(error)
    assert "b'\\x" not in str(error)


def test_cut_off_heic_message_is_one_line() -> None:
    _assert_readable(str(_rejected(_cut_heic())), "HEIC")


# --- colour variants that are accepted ----------------------------------------------------------


def test_grayscale_jpeg_is_accepted_as_monochrome2() -> None:
    data = _encoded(_rgb().convert("L"), "JPEG", quality=90)
    wrapped = wrap_photo(data, _context())
    assert wrapped.photo.frame.color is ColorTransform.GRAY
    assert wrapped.photo.derived is False
    assert wrapped.dataset.PhotometricInterpretation == "MONOCHROME2"
    assert wrapped.dataset.SamplesPerPixel == 1


def _cjpeg_rgb(tmp_path: Path) -> bytes:
    ppm, out = tmp_path / "in.ppm", tmp_path / "rgb.jpg"
    _rgb().save(ppm)
    subprocess.run(
        [require_tool("cjpeg"), "-rgb", "-outfile", str(out), str(ppm)],
        check=True,
        capture_output=True,
    )
    data = out.read_bytes()
    assert read_frame(data).color is ColorTransform.RGB
    return data


def test_rgb_coded_jpeg_is_reencoded_once_to_ycbcr(tmp_path: Path) -> None:
    prepared = prepare_photo(_cjpeg_rgb(tmp_path))
    assert prepared.derived is True
    assert prepared.frame.color is ColorTransform.YCBCR
    assert read_frame(prepared.jpeg).color is ColorTransform.YCBCR
    assert len(prepared.lossy_steps) == 2


def test_rgb_coded_rotated_jpeg_is_reencoded_once_to_ycbcr(tmp_path: Path) -> None:
    out = io.BytesIO()
    piexif.insert(piexif.dump({"0th": {piexif.ImageIFD.Orientation: 3}}), _cjpeg_rgb(tmp_path), out)
    prepared = prepare_photo(out.getvalue())
    assert prepared.derived is True
    assert prepared.frame.color is ColorTransform.YCBCR
    assert read_frame(prepared.jpeg).color is ColorTransform.YCBCR
    assert b"Adobe" not in prepared.jpeg
    assert len(prepared.lossy_steps) == 2
    assert "RGB" in prepared.derivation and "180" in prepared.derivation
