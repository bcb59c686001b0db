"""Make the stored pixels upright, losslessly whenever the JPEG allows it.

DICOM has no "display rotated" flag for VL images (STANDARDS.md 6.2): viewers show rows as
stored, so a portrait phone photo with EXIF orientation 6 must be rotated before wrapping.
TurboJPEG's transform (the library behind ``jpegtran -perfect``) rotates the DCT
coefficients, which loses nothing. It refuses when a partial iMCU at an edge would have to
move; then, and only then, we decode once and re-encode once at high quality, and say so.

The transform is the photo's strict decode too (``jpeg.turbo``: every coefficient read,
warnings are errors), so a rotated photo is read once, not checked and then transformed; it
runs through ctypes, which releases the GIL. A photo the transform refuses for damage goes to
the re-encode, whose full strict decode refuses it in libjpeg's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from capture_api.encode.jpeg.decode import decode_gray, decode_rgb
from capture_api.encode.jpeg.markers import ColorTransform, FrameInfo, StrippedParts
from capture_api.encode.jpeg.turbo import TransformFailed, TurboOp
from capture_api.encode.jpeg.turbo import transform as turbo_transform
from capture_api.encode.photo_data import PhotoData
from capture_api.exceptions import EncodeError

#: Quality of the one re-encode we may make; 95 keeps the added error near JPEG's noise floor.
REENCODE_QUALITY = 95

#: EXIF orientation -> the transform that makes the image upright (CIPA DC-008 Table 4;
#: the same table as Pillow's ImageOps.exif_transpose).
_TURBO_OPS = {
    2: TurboOp.HFLIP,
    3: TurboOp.ROT180,
    4: TurboOp.VFLIP,
    5: TurboOp.TRANSPOSE,
    6: TurboOp.ROT90,
    7: TurboOp.TRANSVERSE,
    8: TurboOp.ROT270,
}
_PIL_OPS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_DESCRIPTION = {
    2: "mirrored left-right",
    3: "rotated 180 degrees",
    4: "mirrored top-bottom",
    5: "transposed",
    6: "rotated 90 degrees clockwise",
    7: "transversed",
    8: "rotated 90 degrees counter-clockwise",
}
_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


@dataclass(frozen=True)
class Upright:
    """The upright JPEG and how it was made.

    ``method`` is ``"none"`` (orientation 1: the input bytes, untouched), ``"lossless"``
    (DCT-domain transform) or ``"reencode"`` (one decode + encode at REENCODE_QUALITY).
    """

    data: PhotoData
    method: str
    description: str


def make_upright(photo: PhotoData, stripped: StrippedParts, orientation: int) -> Upright:
    """Apply the EXIF orientation to ``photo``, whose metadata ``stripped`` has taken out.

    The lossless transform reads ``photo`` as it is, with its metadata segments: it writes
    none of them (``-copy none``), so joining the stripped pieces first would only copy the
    photo once more. A re-encode decodes the stripped stream, the one the DICOM file keeps.
    An RGB-coded JPEG (Adobe transform 0) is always re-encoded once to YCbCr: DICOM's JPEG
    photometric interpretation is YBR_FULL_422 (dciodvfy rejects RGB with JPEG lossy).
    """
    frame = stripped.frame
    if frame.color is ColorTransform.RGB:
        turned = (
            f", {_DESCRIPTION[orientation]} from EXIF orientation {orientation}"
            if orientation != 1
            else ""
        )
        note = (
            f"converted from an RGB-coded JPEG to YCbCr{turned} "
            f"by one JPEG re-encode at quality {REENCODE_QUALITY}"
        )
        return Upright(_reencode(stripped.joined().data, orientation, frame), "reencode", note)
    if orientation == 1:
        return Upright(stripped.joined().data, "none", "")
    what = f"{_DESCRIPTION[orientation]} from EXIF orientation {orientation}"
    try:
        rotated = turbo_transform(photo, _TURBO_OPS[orientation])
    except TransformFailed:  # imperfect (a partial iMCU would move), or damaged data
        return Upright(
            _reencode(stripped.joined().data, orientation, frame),
            "reencode",
            _reencode_note(what, frame),
        )
    return Upright(rotated, "lossless", f"{what}, losslessly in the DCT domain")


def _reencode_note(what: str, frame: FrameInfo) -> str:
    mcu_w, mcu_h = frame.mcu_size
    return (
        f"{what} by one JPEG re-encode at quality {REENCODE_QUALITY}: "
        f"{frame.columns}x{frame.rows} is not a multiple of the {mcu_w}x{mcu_h} JPEG block, "
        "so a lossless rotation was not possible"
    )


def _reencode(data: bytes, orientation: int, frame: FrameInfo) -> bytes:
    if frame.samples_per_pixel == 1:
        image = Image.fromarray(decode_gray(data)[:, :, 0], mode="L")
    else:
        image = Image.fromarray(decode_rgb(data), mode="RGB")
    if orientation != 1:
        image = image.transpose(_PIL_OPS[orientation])
    return encode_jpeg(image, frame.chroma_subsampling)


def encode_jpeg(image: Image.Image, subsampling: str = "4:2:0") -> bytes:
    """Baseline JPEG at REENCODE_QUALITY, with the source's chroma subsampling."""
    out = BytesIO()
    try:
        image.save(
            out,
            "JPEG",
            quality=REENCODE_QUALITY,
            subsampling=_SUBSAMPLING.get(subsampling, 2),
            progressive=False,
            optimize=False,
        )
    except OSError as exc:
        raise EncodeError(f"re-encoding the photo failed: {exc}") from exc
    return out.getvalue()
