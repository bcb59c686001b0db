"""HEIC/HEIF, the iPhone camera's default: transcode once to JPEG, and say so.

No DICOM transfer syntax carries HEIF stills, so the one honest option is a single
high-quality transcode, recorded as a lossy derivation (Image Type DERIVED, a second
Lossy Image Compression Method value). libheif applies the container's rotation and
mirroring (irot/imir) while decoding, so the result is already upright.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from io import BytesIO

import pillow_heif
from PIL import Image

from capture_api.encode.memory import MemoryBudget, transcode_cost
from capture_api.encode.orientation import encode_jpeg
from capture_api.exceptions import CorruptImage, ImageTooLarge

#: DICOM Lossy Image Compression Method defined term for HEVC (PS3.3 C.7.6.1.1.5.1).
HEVC_METHOD = "ISO_23008_2"


@dataclass(frozen=True)
class TranscodedHeif:
    """The JPEG made from a HEIF photo, with what we keep of the original."""

    jpeg: bytes
    exif: bytes | None
    icc_profile: bytes | None
    source_ratio: float
    original_orientation: int | None


def transcode_heif(
    data: bytes, max_pixels: int, memory: MemoryBudget | None = None
) -> TranscodedHeif:
    """Decode the primary image and encode it as a 4:2:0 baseline JPEG.

    The decode and encode hold the whole image: they reserve it from ``memory`` first.
    """
    _check_complete(data)
    try:
        heif = pillow_heif.open_heif(BytesIO(data), convert_hdr_to_8bit=True)
        width, height = heif.size
    except Exception as exc:  # libheif reports damage as ValueError/RuntimeError/OSError
        raise _damaged(exc) from exc
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the photo has {width * height / 1e6:.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:.3g}"
        )
    budget = memory or MemoryBudget()
    with budget.hold(transcode_cost(width, height), f"converting a {width}x{height} HEIC photo"):
        try:
            image: Image.Image = heif.to_pillow()
            image.load()
        except Exception as exc:
            raise _damaged(exc) from exc
        jpeg = encode_jpeg(image.convert("RGB"), "4:2:0")
    exif = heif.info.get("exif")
    return TranscodedHeif(
        jpeg=jpeg,
        exif=exif[6:] if isinstance(exif, bytes) and exif.startswith(b"Exif\x00\x00") else exif,
        icc_profile=heif.info.get("icc_profile") or None,
        source_ratio=(width * height * 3) / len(data),
        original_orientation=image.info.get("original_orientation"),
    )


def _damaged(exc: Exception) -> CorruptImage:
    reason = " ".join(str(exc).split())  # libheif's text ends in a newline
    return CorruptImage(f"the HEIC photo cannot be decoded ({reason}); take it again")


def _check_complete(data: bytes) -> None:
    """Refuse a file whose top-level boxes run past its end: it was cut off.

    libheif decodes a cut-off iPhone HEIC without an error, leaving the missing grid tiles
    blank (a photo cut at 99 % came back with 194 wrong rows), so the proof that the file is
    whole must be ours. The box header is the simplest structure of ISO/IEC 14496-12 (4.2):
    a 32-bit size (1: a 64-bit size follows the type; 0: up to the end of the file) and a
    four-letter type; no library we have exposes it, and libheif's ``strict_decoding``
    option is not reachable through pillow-heif.
    """
    position = 0
    while position + 8 <= len(data):
        (size,) = struct.unpack_from(">I", data, position)  # then the four-letter type
        if size == 1 and position + 16 <= len(data):
            size = struct.unpack_from(">Q", data, position + 8)[0]
        if size == 0:  # the last box, to the end of the file: nothing to compare against
            return
        if size < 8:
            raise CorruptImage("the HEIC photo's structure is damaged; take it again")
        if position + size > len(data):
            missing = position + size - len(data)
            raise CorruptImage(
                f"the HEIC photo was cut off ({missing} bytes are missing); send it again"
            )
        position += size
