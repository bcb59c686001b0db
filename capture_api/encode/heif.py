"""HEIC/HEIF, the iPhone camera's default: transcode once to JPEG, and say so.

No DICOM transfer syntax carries HEIF stills, so the one honest option is a single
high-quality transcode, recorded as a lossy derivation (Image Type DERIVED, a second
Lossy Image Compression Method value). libheif applies the container's rotation and
mirroring (irot/imir) while decoding, so the result is already upright.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

import pillow_heif
from PIL import Image

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


def transcode_heif(data: bytes, max_pixels: int) -> TranscodedHeif:
    """Decode the primary image and encode it as a 4:2:0 baseline JPEG."""
    try:
        heif = pillow_heif.open_heif(BytesIO(data), convert_hdr_to_8bit=True)
        width, height = heif.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"the photo has {width * height / 1e6:.0f} megapixels; "
                f"the limit is {max_pixels / 1e6:.3g}"
            )
        image: Image.Image = heif.to_pillow()
        image.load()
    except ImageTooLarge:
        raise
    except Exception as exc:  # libheif reports damage as ValueError/RuntimeError/OSError
        reason = " ".join(str(exc).split())  # libheif's text ends in a newline
        raise CorruptImage(f"the HEIC photo cannot be decoded ({reason}); take it again") from exc
    exif = heif.info.get("exif")
    return TranscodedHeif(
        jpeg=encode_jpeg(image.convert("RGB"), "4:2:0"),
        exif=exif[6:] if isinstance(exif, bytes) and exif.startswith(b"Exif\x00\x00") else exif,
        icc_profile=heif.info.get("icc_profile") or None,
        source_ratio=(width * height * 3) / len(data),
        original_orientation=image.info.get("original_orientation"),
    )
