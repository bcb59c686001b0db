"""The hostile input corpus: files a phone, a browser or an attacker can send as "the photo".

Every case is generated here at test time (nothing large is committed) and says what the API
must answer: the HTTP status, and words the ``detail`` must contain so that the person holding
the phone knows what went wrong and what to do. Accepted cases (202) are odd-but-valid photos
that must be archived, with their metadata stripped.

The 200 MB upload is not a ``HostileFile``: ``streamed_multipart`` yields it chunk by chunk so
the test itself never holds it in memory.
"""

from __future__ import annotations

import io
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import piexif
from PIL import Image

from tests.conftest import BROKEN_SAMPLES, SAMPLES, phone_jpeg, require_tool

ACCEPTED = 202


@dataclass(frozen=True)
class HostileFile:
    """One upload and the answer it must get."""

    name: str
    data: bytes
    status: int
    words: tuple[str, ...] = ()
    filename: str = "photo.jpg"
    content_type: str = "image/jpeg"


# --- building blocks ---------------------------------------------------------------------------


def _noise(width: int = 96, height: int = 64, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _sof_offset(jpeg: bytes) -> int:
    """Offset of the baseline frame header (Pillow writes no EXIF thumbnail with its own SOF)."""
    return jpeg.index(b"\xff\xc0")


def _replace_at(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def _app1_exif(tiff: bytes) -> bytes:
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _with_app1(jpeg: bytes, segment: bytes) -> bytes:
    """``jpeg`` (no EXIF of its own) with ``segment`` right after SOI."""
    return jpeg[:2] + segment + jpeg[2:]


def base_photo() -> bytes:
    """A small phone-like JPEG with EXIF and GPS: the photo every truncation starts from."""
    return phone_jpeg(640, 480, gps=True, seed=41)


# --- the shared sample corpus -----------------------------------------------------------------


def sample_cases() -> list[HostileFile]:
    """The samples README's broken files: the corrupt one refused, broken-EXIF ones accepted."""
    cases = [
        HostileFile(
            f"sample:{name}", (SAMPLES / name).read_bytes(), 422, ("damaged", reason, "again")
        )
        for name, reason in BROKEN_SAMPLES.items()
    ]
    for folder in ("invalid", "tests"):
        for path in sorted((SAMPLES / folder).glob("*.jpg")):
            cases.append(HostileFile(f"sample:{folder}/{path.name}", path.read_bytes(), ACCEPTED))
    return cases


# --- empty and cut-off files --------------------------------------------------------------------


def truncated_cases(photo: bytes) -> list[HostileFile]:
    """Zero bytes, the photo cut at 10/50/99 %, inside SOI and inside the EXIF APP1; a half HEIC."""
    exif_at = photo.index(b"Exif\x00\x00")
    cuts = {
        "cut:inside-soi": 1,
        "cut:soi-only": 2,
        "cut:inside-app1-length": exif_at - 1,
        "cut:inside-app1-exif": exif_at + 40,
        "cut:10%": len(photo) // 10,
        "cut:50%": len(photo) // 2,
        "cut:99%": len(photo) * 99 // 100,
    }
    cases = [HostileFile("zero-bytes", b"", 422, ("empty", "0 bytes", "take the photo again"))]
    for name, length in cuts.items():
        assert 0 < length < len(photo)
        cases.append(HostileFile(name, photo[:length], 422, ("cut off",)))
    heic = (SAMPLES / "heic" / "IMG_5195.HEIC").read_bytes()
    for percent in (50, 99):  # libheif alone decodes these, with blank tiles
        cut = heic[: len(heic) * percent // 100]
        words = ("HEIC", "cut off", "send it again")
        cases.append(HostileFile(f"cut:heic-{percent}%", cut, 422, words, "photo.HEIC"))
    return cases


# --- marker structure: loops and floods in the segment walk -----------------------------------


def marker_cases() -> list[HostileFile]:
    """Standalone markers (which once made the walk loop forever) and a segment flood.

    ``FFD8 FF01 FFD9`` is six bytes; before the fix it pinned a CPU and a request thread
    for good. 100 000 empty COM segments (400 kB) stand for the 80 MB flood that took minutes
    and gigabytes to walk.
    """
    photo = _saved(_noise(seed=9), "JPEG", quality=90)
    flood = b"\xff\xfe\x00\x02" * 100_000
    return [
        HostileFile("markers:tem-only", b"\xff\xd8\xff\x01\xff\xd9", 422, ("damaged",)),
        HostileFile("markers:stray-tem-and-rst", _with_app1(photo, b"\xff\x01\xff\xd0"), ACCEPTED),
        HostileFile("markers:fill-bytes", _with_app1(photo, b"\xff" * 100_000), ACCEPTED),
        HostileFile(
            "markers:segment-flood", _with_app1(photo, flood), 422, ("marker segments", "damaged")
        ),
    ]


# --- other formats named .jpg -------------------------------------------------------------------


def other_format_cases() -> list[HostileFile]:
    """PNG, PDF, HTML and DICOM files, all named photo.jpg and sent as image/jpeg."""
    html = b"<!doctype html><script>alert(document.cookie)</script>"
    dicom = bytes(128) + b"DICM" + bytes(64)
    return [
        HostileFile("png-as-jpg", _saved(_noise(), "PNG"), 415, ("PNG", "JPEG or HEIC")),
        HostileFile("pdf-as-jpg", _saved(_noise(), "PDF"), 415, ("PDF", "JPEG or HEIC")),
        HostileFile("html-as-jpg", html, 415, ("not a JPEG or HEIC", "camera")),
        HostileFile("dicom-as-jpg", dicom, 415, ("DICOM",)),
    ]


# --- JPEG variants a DICOM photo cannot carry -----------------------------------------------


def _arithmetic_jpeg() -> bytes:
    """A real arithmetic-coded JPEG from libjpeg-turbo's cjpeg (Pillow cannot write one)."""
    with tempfile.TemporaryDirectory() as folder:
        ppm, out = Path(folder) / "in.ppm", Path(folder) / "arith.jpg"
        _noise().save(ppm)
        subprocess.run(
            [require_tool("cjpeg"), "-arithmetic", "-outfile", str(out), str(ppm)],
            check=True,
            capture_output=True,
        )
        return out.read_bytes()


def _twelve_bit_jpeg() -> bytes:
    """A frame header declaring 12-bit samples (libjpeg-turbo 2.1's tools cannot write one)."""
    jpeg = _saved(_noise(), "JPEG", quality=90)
    return _replace_at(jpeg, _sof_offset(jpeg) + 4, bytes([12]))


def jpeg_variant_cases() -> list[HostileFile]:
    return [
        HostileFile("cmyk", _saved(_noise().convert("CMYK"), "JPEG"), 415, ("CMYK",)),
        HostileFile("12-bit", _twelve_bit_jpeg(), 415, ("12-bit", "8-bit")),
        HostileFile(
            "progressive",
            _saved(_noise(), "JPEG", progressive=True),
            415,
            ("progressive", "baseline JPEG or HEIC"),
        ),
        HostileFile("arithmetic", _arithmetic_jpeg(), 415, ("SOF9", "arithmetic")),
    ]


# --- memory amplification: small, valid files of huge images that must be turned upright ---------

#: One 4:2:0 MCU of a flat mid-grey image with the standard Huffman tables (ITU-T T.81 Annex K):
#: four luminance blocks of "DC difference 0, end of block" (00 + 1010) and two chrominance
#: blocks (00 + 00): 32 bits, so whole MCUs are whole bytes and can simply be repeated.
_FLAT_MCU = bytes([0b00101000, 0b10100010, 0b10001010, 0b00000000])


def flat_jpeg(width: int, height: int, orientation: int = 1) -> bytes:
    """A valid baseline JPEG of ``width`` x ``height`` mid-grey pixels, about 4 bytes per MCU.

    Issue 14's finding 3 was a 3.3 MB JPEG of 14479 x 14479 pixels with EXIF orientation 6:
    this writes such files without ever holding their pixels (Pillow's header and tables from
    a 16 x 16 grey image, its frame size patched, the scan written MCU by MCU).
    """
    small = _saved(Image.new("RGB", (16, 16), (128, 128, 128)), "JPEG", quality=90, subsampling=2)
    sos = small.index(b"\xff\xda")
    (sos_length,) = struct.unpack(">H", small[sos + 2 : sos + 4])
    header = _replace_at(
        small[: sos + 2 + sos_length], _sof_offset(small) + 5, struct.pack(">HH", height, width)
    )
    mcus = -(-width // 16) * -(-height // 16)
    jpeg = header + _FLAT_MCU * mcus + b"\xff\xd9"
    if orientation == 1:
        return jpeg
    tiff = piexif.dump({"0th": {piexif.ImageIFD.Orientation: orientation}})[6:]
    return _with_app1(jpeg, _app1_exif(tiff))


# --- decompression bombs: tiny files that claim enormous images --------------------------------

BOMB_SIDE = 65535


def _jpeg_bomb() -> bytes:
    jpeg = _saved(_noise(), "JPEG", quality=90)
    return _replace_at(jpeg, _sof_offset(jpeg) + 5, struct.pack(">HH", BOMB_SIDE, BOMB_SIDE))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_bomb() -> bytes:
    """A valid PNG header for a 65535x65535 RGB image whose data is one compressed row."""
    header = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 8, 2, 0, 0, 0)
    row = zlib.compress(bytes(1 + 3 * BOMB_SIDE), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", row)
        + _png_chunk(b"IEND", b"")
    )


def _heic_bomb() -> bytes:
    """The sample iPhone HEIC with its image spatial extents (ispe) claiming 65535x65535."""
    heic = bytearray((SAMPLES / "heic" / "IMG_5195.HEIC").read_bytes())
    found = 0
    start = heic.find(b"ispe")
    while start != -1:
        heic[start + 8 : start + 16] = struct.pack(">II", BOMB_SIDE, BOMB_SIDE)
        found += 1
        start = heic.find(b"ispe", start + 4)
    assert found >= 1, "no ispe box in the sample HEIC"
    return bytes(heic)


def bomb_cases() -> list[HostileFile]:
    return [
        HostileFile("bomb:jpeg-65535x65535", _jpeg_bomb(), 413, ("65535x65535", "megapixels")),
        HostileFile("bomb:png-65535x65535", _png_bomb(), 415, ("PNG",)),
        HostileFile("bomb:heic-65535x65535", _heic_bomb(), 413, ("megapixels", "limit")),
    ]


# --- odd but valid: must be accepted, with the metadata stripped -----------------------------

#: What must not reach the archive from the two EXIF cases below.
BIG_EXIF_MARKER = b"BIG-EXIF-PADDING"
MAX_SEGMENT_PAYLOAD = 0xFFFF - 2


def _big_exif_photo() -> bytes:
    """A real EXIF block with GPS, padded by a UserComment to the largest APP1 (64 KB)."""
    photo = _saved(_noise(160, 120, seed=64), "JPEG", quality=90)

    def exif(comment_size: int) -> bytes:
        comment = b"ASCII\x00\x00\x00" + (BIG_EXIF_MARKER * 4096)[:comment_size]
        dumped: bytes = piexif.dump(
            {
                "0th": {piexif.ImageIFD.Make: b"BigExifPhone", piexif.ImageIFD.Orientation: 1},
                "Exif": {piexif.ExifIFD.UserComment: comment},
                "GPS": {
                    piexif.GPSIFD.GPSLatitudeRef: b"N",
                    piexif.GPSIFD.GPSLatitude: ((47, 1), (22, 1), (1234, 100)),
                },
            }
        )
        return dumped[6:]  # piexif.dump starts with b"Exif\0\0"

    overhead = len(exif(0))
    tiff = exif(MAX_SEGMENT_PAYLOAD - len(b"Exif\x00\x00") - overhead)
    segment = _app1_exif(tiff)
    assert len(segment) == 2 + 0xFFFF, len(segment)
    return _with_app1(photo, segment)


#: Bytes that are not UTF-8 (Latin-1, lone continuation bytes, a UTF-16 BOM, C1 controls).
NON_UTF8 = {
    "Make": b"Fabricant \xe9\xe8 \xff\xfe",
    "Model": b"Mod\xe8le \x80\x81\x9f X",
    "ImageDescription": b"Plaie \xe0 gauche \xc3\x28",
}


def _non_utf8_exif_photo() -> bytes:
    photo = _saved(_noise(160, 120, seed=8), "JPEG", quality=90)
    tiff = piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.Make: NON_UTF8["Make"],
                piexif.ImageIFD.Model: NON_UTF8["Model"],
                piexif.ImageIFD.ImageDescription: NON_UTF8["ImageDescription"],
            },
            "Exif": {piexif.ExifIFD.UserComment: b"UNICODE\x00\xd8\x00\xff\xfe\x00"},
        }
    )[6:]
    return _with_app1(photo, _app1_exif(tiff))


def valid_odd_cases() -> list[HostileFile]:
    return [
        HostileFile("exif:64KB-app1", _big_exif_photo(), ACCEPTED),
        HostileFile("exif:non-utf8", _non_utf8_exif_photo(), ACCEPTED),
    ]


# --- strings for text fields ----------------------------------------------------------------

#: Every text field of the API gets each of these (tests/hostile/test_injection.py, the scan).
INJECTIONS = {
    "sql": "'; DROP TABLE capture;--",
    "script": "<script>alert(1)</script>",
    "path": "../../etc/passwd",
    "template": "{{7*7}}",
    "nul": "before\x00after",
    "10kB": "x" * 10_000,
    "rtl-emoji": "\u202eevil\u202c 🩹👩🏽‍⚕️ مرحبا",
}


# --- everything ---------------------------------------------------------------------------


def corpus() -> list[HostileFile]:
    """Every case, in a fixed order (names are unique)."""
    cases = [
        *sample_cases(),
        *truncated_cases(base_photo()),
        *marker_cases(),
        *other_format_cases(),
        *jpeg_variant_cases(),
        *bomb_cases(),
        *valid_odd_cases(),
    ]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), names
    return cases


# --- a 200 MB upload that is never in memory -----------------------------------------------


def streamed_multipart(
    fields: Mapping[str, str], size: int, chunk: int = 1 << 20
) -> tuple[str, int, Iterator[bytes]]:
    """A multipart/form-data body with a ``photo`` part of ``size`` bytes, made on the fly.

    Returns the content type, the exact body length and the chunk iterator (the photo part is
    a JPEG start marker and then zeros, so it looks like the beginning of a photo).
    """
    boundary = "hostile-boundary-7MA4YWxkTrZu0gW"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; '
        f'filename="huge.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head + b"\xff\xd8\xff\xe0"
        sent, zeros = 4, bytes(chunk)
        while sent < size:
            step = min(chunk, size - sent)
            yield zeros[:step]
            sent += step
        yield tail

    return f"multipart/form-data; boundary={boundary}", len(head) + size + len(tail), body()
