"""Recognise what was uploaded from its first bytes, not from its name or Content-Type.

Phones and browsers mislabel files (a PNG screenshot called .jpg, HEIC sent as
application/octet-stream), so the encoder trusts magic numbers only. Every refusal names
the format found and what the person can do instead.
"""

from __future__ import annotations

from enum import Enum

from capture_api.encode.photo_data import PhotoData
from capture_api.exceptions import CorruptImage, UnsupportedFormat

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


class PhotoFormat(Enum):
    """The inputs we can turn into a VL Photographic Image."""

    JPEG = "JPEG"
    HEIF = "HEIC/HEIF"


_REFUSED: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"%PDF", 0, "PDF"),
    (b"BM", 0, "BMP"),
    (b"WEBP", 8, "WebP"),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"DICM", 128, "DICOM"),
)
#: No JPEG, HEIC or other image header fits in fewer bytes (an HEIF ftyp box alone is 16).
_SHORTEST_PHOTO = 16
_WHAT_TO_DO = (
    "Send the camera's original JPEG or HEIC photo instead (set the camera to JPEG or HEIC)."
)


def sniff(data: PhotoData) -> PhotoFormat:
    """Return the format or raise with a message a clinician can act on."""
    if not data:
        raise CorruptImage(
            "the file is empty (0 bytes): nothing was received; take the photo again"
        )
    if data[:2] == b"\xff\xd8":  # a JPEG, even if cut off right after its start marker
        return PhotoFormat.JPEG
    if len(data) < _SHORTEST_PHOTO:
        raise CorruptImage(
            f"the file is only {len(data)} byte{'s' if len(data) > 1 else ''}, too short to be "
            "a photo: it was cut off on the way; take or send the photo again"
        )
    if data[4:8] == b"ftyp":
        return _iso_media_format(data)
    for magic, offset, name in _REFUSED:
        if data[offset : offset + len(magic)] == magic:
            raise UnsupportedFormat(
                f"this is a {name} file, not a photo we can archive. {_WHAT_TO_DO}"
            )
    raise UnsupportedFormat(
        f"this file is not a JPEG or HEIC photo (unknown format). {_WHAT_TO_DO}"
    )


def _iso_media_format(data: PhotoData) -> PhotoFormat:
    box_size = int.from_bytes(data[0:4], "big")
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, min(box_size, len(data), 64), 4)}
    # AVIF files also list the generic HEIF brand mif1: decide AVIF first.
    if brands & _AVIF_BRANDS:
        raise UnsupportedFormat(f"this is an AVIF image, not a photo we can archive. {_WHAT_TO_DO}")
    if brands & _HEIF_BRANDS:
        return PhotoFormat.HEIF
    raise UnsupportedFormat(
        f"this is a video or other ISO media file, not a still photo. {_WHAT_TO_DO}"
    )
