"""The marker-level stripper: metadata segments go, the scan data stays byte for byte."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import piexif
import pytest
from PIL import Image

from capture_api.encode.jpeg.markers import (
    ColorTransform,
    Process,
    read_frame,
    scan_data,
    strip_metadata,
)
from capture_api.exceptions import CorruptImage, UnsupportedFormat
from tests.conftest import require_tool

THUMBNAIL = b"THUMBNAILRGB"  # 2x2 RGB = 12 bytes, recognisable if it leaks
ICC_CHUNK_1 = b"ICC-FIRST-HALF:" + bytes(range(40))
ICC_CHUNK_2 = b"ICC-SECOND-HALF:" + bytes(range(200, 230))
XMP = b'http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x="adobe:ns:meta/">XMP-TOKEN</x:xmpmeta>'
PHOTOSHOP = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0cIPTC-TOKEN!!"
COMMENT = b"COMMENT-TOKEN from the camera"
TRAILER = b"\xff\xd8\xff\xe0SECOND-IMAGE" + bytes(range(256)) * 4


# --- building blocks ---------------------------------------------------------------------------


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def _jfif_with_thumbnail() -> bytes:
    # identifier, version 1.02, units 1 (dpi), 300x300, thumbnail 2x2 + 12 bytes of RGB
    body = b"JFIF\x00" + b"\x01\x02" + b"\x01" + struct.pack(">HH", 300, 300) + b"\x02\x02"
    return _segment(0xE0, body + THUMBNAIL)


def _icc(sequence: int, total: int, chunk: bytes) -> bytes:
    return _segment(0xE2, b"ICC_PROFILE\x00" + bytes([sequence, total]) + chunk)


def _adobe(transform: int) -> bytes:
    return _segment(0xEE, b"Adobe" + b"\x00\x64" + b"\x00\x00" + b"\x00\x00" + bytes([transform]))


def _pixels(seed: int = 0, width: int = 96, height: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def _pillow_jpeg(image: Image.Image, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **kwargs)
    return out.getvalue()


def _without_app0(data: bytes) -> bytes:
    """Pillow's output minus SOI and its JFIF APP0: from the first DQT to EOI."""
    assert data[2:4] == b"\xff\xe0"
    length = struct.unpack(">H", data[4:6])[0]
    return data[4 + length :]


def _decoded(data: bytes) -> npt.NDArray[np.uint8]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _segments_before_scan(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of each segment up to SOS, read independently of the code under test."""
    out: list[tuple[int, bytes]] = []
    pos = 2
    while True:
        while data[pos + 1] == 0xFF:
            pos += 1
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        out.append((marker, data[pos + 4 : pos + 2 + length]))
        if marker == 0xDA:
            return out
        pos += 2 + length


@pytest.fixture(scope="module")
def loaded() -> bytes:
    """A JPEG with every kind of metadata a phone or editor writes, and a trailer."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"EXIF-TOKEN"}, "Exif": {}, "GPS": {}})
    rest = _without_app0(_pillow_jpeg(_pixels(), subsampling=2))
    return b"".join(
        [
            b"\xff\xd8",
            _jfif_with_thumbnail(),
            _segment(0xE1, exif),
            _segment(0xE1, XMP),
            _icc(2, 2, ICC_CHUNK_2),  # file order 2 then 1: reassembly must sort
            _icc(1, 2, ICC_CHUNK_1),
            _segment(0xED, PHOTOSHOP),
            b"\xff\xff\xff",  # fill bytes before a marker (T.81 B.1.1.2)
            _segment(0xFE, COMMENT),
            rest,
            TRAILER,
        ]
    )


# --- the full strip ----------------------------------------------------------------------------


def test_fixture_is_a_valid_jpeg_with_all_the_metadata(loaded: bytes) -> None:
    markers = [m for m, _ in _segments_before_scan(loaded)]
    assert markers[:7] == [0xE0, 0xE1, 0xE1, 0xE2, 0xE2, 0xED, 0xFE]
    assert _decoded(loaded).shape == (64, 96, 3)


def test_strip_output_is_one_image_soi_to_eoi(loaded: bytes) -> None:
    out = strip_metadata(loaded).data
    assert out.startswith(b"\xff\xd8\xff")
    assert out.endswith(b"\xff\xd9")
    assert b"SECOND-IMAGE" not in out
    assert len(out) < len(loaded) - len(TRAILER)


def test_jfif_is_kept_without_its_thumbnail(loaded: bytes) -> None:
    out = strip_metadata(loaded).data
    assert out[2:4] == b"\xff\xe0"
    assert struct.unpack(">H", out[4:6])[0] == 16
    body = out[6:20]
    assert body[:5] == b"JFIF\x00"
    assert body[5:7] == b"\x01\x02"  # version kept
    assert body[7] == 1 and struct.unpack(">HH", body[8:12]) == (300, 300)  # density kept
    assert body[12:14] == b"\x00\x00"  # thumbnail 0x0
    assert THUMBNAIL not in out
    assert sum(1 for m, _ in _segments_before_scan(out) if m == 0xE0) == 1


@pytest.mark.parametrize(
    "token",
    [b"Exif\x00\x00", b"EXIF-TOKEN", b"http://ns.adobe.com/xap", b"XMP-TOKEN", b"ICC_PROFILE",
     b"ICC-FIRST", b"Photoshop 3.0", b"IPTC-TOKEN", b"8BIM", b"COMMENT-TOKEN"],
)  # fmt: skip
def test_metadata_bytes_are_gone(loaded: bytes, token: bytes) -> None:
    assert token in loaded
    assert token not in strip_metadata(loaded).data


def test_only_decoder_segments_remain(loaded: bytes) -> None:
    markers = {m for m, _ in _segments_before_scan(strip_metadata(loaded).data)}
    assert markers <= {0xE0, 0xDB, 0xC4, 0xC0, 0xDA}
    assert {0xDB, 0xC4, 0xC0, 0xDA} <= markers


def test_icc_chunks_are_reassembled_in_sequence_order(loaded: bytes) -> None:
    assert strip_metadata(loaded).icc_profile == ICC_CHUNK_1 + ICC_CHUNK_2


def test_exif_payload_is_returned_as_tiff(loaded: bytes) -> None:
    exif = strip_metadata(loaded).exif
    assert exif is not None
    assert exif[:4] in (b"II*\x00", b"MM\x00*")
    assert b"EXIF-TOKEN" in exif


def test_removed_lists_each_dropped_segment_in_file_order(loaded: bytes) -> None:
    removed = strip_metadata(loaded).removed
    assert [r.split(":", 1)[0] for r in removed] == [
        "APP1",
        "APP1",
        "APP2",
        "APP2",
        "APP13",
        "COM",
    ]
    labels = [r.split(":", 1)[1] for r in removed[:5]]
    for label, expected in zip(
        labels, ["Exif", "http://ns.ad", "ICC_PROFILE", "ICC_PROFILE", "Photoshop"], strict=True
    ):
        assert label.startswith(expected), (label, expected)


def test_scan_data_is_byte_identical(loaded: bytes) -> None:
    out = strip_metadata(loaded).data
    assert scan_data(out) == scan_data(loaded)
    assert len(scan_data(out)) > 1000


def test_pixels_are_identical(loaded: bytes) -> None:
    assert np.array_equal(_decoded(strip_metadata(loaded).data), _decoded(loaded))


def test_strip_is_idempotent(loaded: bytes) -> None:
    once = strip_metadata(loaded)
    twice = strip_metadata(once.data)
    assert twice.data == once.data
    assert twice.removed == ()
    assert twice.exif is None and twice.icc_profile is None


def test_frame_is_reported(loaded: bytes) -> None:
    frame = strip_metadata(loaded).frame
    assert (frame.columns, frame.rows) == (96, 64)
    assert frame.process is Process.BASELINE
    assert frame.color is ColorTransform.YCBCR


# --- Adobe APP14 -------------------------------------------------------------------------------


def test_adobe_ycbcr_segment_is_dropped() -> None:
    data = b"\xff\xd8" + _adobe(1) + _without_app0(_pillow_jpeg(_pixels(1)))
    assert read_frame(data).color is ColorTransform.YCBCR
    stripped = strip_metadata(data)
    assert b"Adobe" not in stripped.data
    assert stripped.removed == ("APP14:Adobe",)
    assert read_frame(stripped.data).color is ColorTransform.YCBCR
    assert np.array_equal(_decoded(stripped.data), _decoded(data))


def test_adobe_rgb_segment_is_kept(tmp_path: Path) -> None:
    ppm, out = tmp_path / "in.ppm", tmp_path / "rgb.jpg"
    _pixels(2).save(ppm)
    subprocess.run(
        [require_tool("cjpeg"), "-rgb", "-outfile", str(out), str(ppm)],
        check=True,
        capture_output=True,
    )
    data = out.read_bytes()
    adobe = [body for m, body in _segments_before_scan(data) if m == 0xEE]
    assert adobe and adobe[0][11] == 0  # transform 0: RGB
    assert read_frame(data).color is ColorTransform.RGB
    stripped = strip_metadata(data)
    assert b"Adobe" in stripped.data
    assert read_frame(stripped.data).color is ColorTransform.RGB
    assert np.array_equal(_decoded(stripped.data), _decoded(data))


def test_adobe_rgb_transform_on_ycbcr_ids_reads_as_rgb() -> None:
    data = b"\xff\xd8" + _adobe(0) + _without_app0(_pillow_jpeg(_pixels(3)))
    assert read_frame(data).color is ColorTransform.RGB
    assert b"Adobe" in strip_metadata(data).data


def test_jfif_wins_over_adobe_transform() -> None:
    """libjpeg: a JFIF marker means YCbCr whatever the Adobe transform says."""
    pillow = _pillow_jpeg(_pixels(4))
    data = pillow[:2] + _adobe(0) + pillow[2:]
    assert read_frame(data).color is ColorTransform.YCBCR
    assert b"Adobe" not in strip_metadata(data).data


def test_dropping_adobe_from_rgb_named_ycbcr_stream_adds_jfif() -> None:
    """Component ids 'R','G','B' with Adobe transform 1: without a JFIF marker after the
    strip, libjpeg would guess RGB from the ids; the stripper must pin YCbCr with JFIF."""
    rest = bytearray(_without_app0(_pillow_jpeg(_pixels(5))))
    sof = rest.index(b"\xff\xc0")
    sos = rest.index(b"\xff\xda")
    for i, ident in enumerate(b"RGB"):
        rest[sof + 10 + 3 * i] = ident  # SOF component id
        rest[sos + 5 + 2 * i] = ident  # SOS component selector
    data = b"\xff\xd8" + _adobe(1) + bytes(rest)
    frame = read_frame(data)
    assert [c.ident for c in frame.components] == [0x52, 0x47, 0x42]
    assert frame.color is ColorTransform.YCBCR
    stripped = strip_metadata(data)
    assert stripped.data[2:4] == b"\xff\xe0" and stripped.data[6:11] == b"JFIF\x00"
    assert b"Adobe" not in stripped.data
    assert read_frame(stripped.data).color is ColorTransform.YCBCR
    assert np.array_equal(_decoded(stripped.data), _decoded(data))


# --- read_frame --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff", b"\x89PNG\r\n\x1a\n" + bytes(32), b"GIF89a" + bytes(32), b"\xd8\xff" * 8],
    ids=["empty", "one-byte", "png", "gif", "swapped-soi"],
)
def test_read_frame_refuses_non_jpeg(data: bytes) -> None:
    with pytest.raises(UnsupportedFormat, match="not a JPEG"):
        read_frame(data)


def test_read_frame_without_sof_is_corrupt() -> None:
    data = b"\xff\xd8" + _segment(0xFE, b"only a comment") + b"\xff\xd9"
    with pytest.raises(CorruptImage, match="SOF"):
        read_frame(data)


def test_read_frame_with_garbage_where_a_marker_should_be_is_corrupt() -> None:
    data = b"\xff\xd8" + _segment(0xFE, b"x") + b"\x12\x34" + _pillow_jpeg(_pixels())[2:]
    with pytest.raises(CorruptImage, match="byte 7"):
        read_frame(data)


@pytest.mark.parametrize(
    ("subsampling", "expected", "mcu"),
    [(0, "4:4:4", (8, 8)), (1, "4:2:2", (16, 8)), (2, "4:2:0", (16, 16))],
)
def test_chroma_subsampling_and_mcu(subsampling: int, expected: str, mcu: tuple[int, int]) -> None:
    frame = read_frame(_pillow_jpeg(_pixels(), subsampling=subsampling))
    assert frame.chroma_subsampling == expected
    assert frame.mcu_size == mcu
    assert frame.samples_per_pixel == 3
    assert (frame.precision, frame.rows, frame.columns) == (8, 64, 96)


def test_grayscale_frame() -> None:
    frame = read_frame(_pillow_jpeg(_pixels().convert("L")))
    assert frame.color is ColorTransform.GRAY
    assert frame.chroma_subsampling == ""
    assert frame.mcu_size == (8, 8)
    assert frame.samples_per_pixel == 1


def test_progressive_frame() -> None:
    frame = read_frame(_pillow_jpeg(_pixels(), progressive=True))
    assert frame.process is Process.PROGRESSIVE
    assert frame.sof_marker == 0xC2


# --- restart markers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def with_restarts(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("restart")
    ppm, out = tmp / "in.ppm", tmp / "rst.jpg"
    _pixels(6, width=128, height=96).save(ppm)
    subprocess.run(
        [require_tool("cjpeg"), "-restart", "1B", "-outfile", str(out), str(ppm)],
        check=True,
        capture_output=True,
    )
    with_exif = io.BytesIO()
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"RST-CAM"}, "Exif": {}, "GPS": {}})
    piexif.insert(exif, out.read_bytes(), with_exif)
    return with_exif.getvalue()


def _restart_count(scan: bytes) -> int:
    return sum(scan.count(bytes([0xFF, 0xD0 + n])) for n in range(8))


def test_restart_markers_are_kept_byte_identical(with_restarts: bytes) -> None:
    scan = scan_data(with_restarts)
    assert _restart_count(scan) >= 40  # 8x6 MCUs of 16x16, one interval each
    stripped = strip_metadata(with_restarts)
    assert stripped.removed == ("APP1:Exif",)
    assert scan_data(stripped.data) == scan
    assert 0xDD in {m for m, _ in _segments_before_scan(stripped.data)}  # DRI kept
    assert np.array_equal(_decoded(stripped.data), _decoded(with_restarts))
