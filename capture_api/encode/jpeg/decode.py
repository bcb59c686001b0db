"""Decoding with libjpeg-turbo in strict mode: the proof that a JPEG is whole.

Pillow silences libjpeg's warnings, so a photo whose scan data stops early decodes "fine"
with a grey band. simplejpeg (libjpeg-turbo, strict) turns those warnings into errors, which
is what STANDARDS.md asks: a damaged photo is rejected with libjpeg's reason, not archived.

The acceptance check (``check_decodes``) needs no full-size pixels: it Huffman-decodes every
coefficient in a 1/8-scale decode (``turbo.check_scaled``, warnings stopped on) and releases
the GIL while it runs.
``tests/encode/test_damaged_corpus.py`` shows it refuses exactly what the full decode refuses.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import simplejpeg

from capture_api.encode.jpeg.markers import FrameInfo
from capture_api.encode.jpeg.turbo import TransformFailed, check_scaled
from capture_api.encode.photo_data import PhotoData
from capture_api.exceptions import CorruptImage


def check_decodes(data: PhotoData, frame: FrameInfo) -> None:
    """Entropy-decode every coefficient (at 1/8 scale, so the IDCT is cheap) or raise.

    DCT scaling still walks the whole Huffman-coded scan, so truncation and corrupt data
    are found at about half the cost of a full decode.
    """
    try:
        check_scaled(data, frame.rows, frame.columns)
    except TransformFailed as exc:
        raise damaged(exc) from exc


def damaged(exc: Exception) -> CorruptImage:
    """The refusal of a photo libjpeg found damaged, in libjpeg's words."""
    return CorruptImage(f"the photo's image data is damaged ({exc}); take it again")


def decode_rgb(data: bytes) -> npt.NDArray[np.uint8]:
    """Full-size RGB pixels (for the one re-encode we may have to make, and for tests)."""
    return _decode(data)


def decode_gray(data: bytes) -> npt.NDArray[np.uint8]:
    """Full-size luminance for single-component JPEGs."""
    return _decode(data, colorspace="GRAY")


def _decode(data: bytes, **kwargs: object) -> npt.NDArray[np.uint8]:
    try:
        pixels: npt.NDArray[np.uint8] = simplejpeg.decode_jpeg(data, strict=True, **kwargs)
    except ValueError as exc:
        raise damaged(exc) from exc
    return pixels
