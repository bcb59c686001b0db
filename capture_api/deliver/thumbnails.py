"""Small JPEG previews of our VL Photographic Images, for the priors view.

Our instances carry the camera's JPEG unchanged as the single fragment of encapsulated Pixel
Data (PS3.5 A.4, one frame), so a preview is a JPEG decode of that frame: no pydicom pixel
handler, no colour conversion by hand. Pillow's ``draft`` asks libjpeg to decode at 1/2, 1/4
or 1/8 scale (DCT scaling), which keeps a 48 MP photo's preview fast and small in memory.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageFilter
from pydicom import dcmread
from pydicom.encaps import get_frame

THUMBNAIL_QUALITY = 80


def thumbnail_from_part10(data: bytes | Path, max_size: int = 256) -> bytes:
    """An RGB JPEG of the instance, at most ``max_size`` px on the long side.

    Works for YBR_FULL_422 (colour) and MONOCHROME2 frames alike: the JPEG stream's own
    markers say how to decode it (PS3.5 8.2.1). Raises ``ValueError`` when the dataset holds no
    encapsulated frame, and Pillow's ``OSError`` when the frame is not a decodable JPEG.
    """
    if max_size < 1:
        raise ValueError("the thumbnail size must be at least 1 pixel")
    return _shrink(_first_frame(data), max_size)


def blurred(jpeg: bytes, radius: int = 12) -> bytes:
    """The JPEG with a Gaussian blur, for sensitive photos shown only on request."""
    with Image.open(io.BytesIO(jpeg)) as image:
        soft = image.convert("RGB").filter(ImageFilter.GaussianBlur(radius))
    return _encode(soft)


def _first_frame(data: bytes | Path) -> bytes:
    """Frame 1 of encapsulated Pixel Data (PS3.5 A.4); native pixel data is not ours."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    ds = dcmread(source)
    if "PixelData" not in ds or not ds.file_meta.TransferSyntaxUID.is_encapsulated:
        raise ValueError("the instance has no encapsulated (JPEG) pixel data")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return get_frame(ds.PixelData, 0, number_of_frames=frames)


def _shrink(jpeg: bytes, max_size: int) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        image.draft("RGB", (max_size, max_size))  # DCT scaling: decode at 1/2..1/8 size
        small = image.convert("RGB")
    small.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return _encode(small)


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()
