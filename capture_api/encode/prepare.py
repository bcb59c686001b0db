"""From uploaded bytes to the exact JPEG stream we will encapsulate, with its history.

Order matters: cheap checks first (format, size, frame header), then the marker-level strip
and orientation, and the strict decode that proves the scan data is whole. An upright photo
gets the strict decode on its own; a rotated one is proven whole by the lossless transform
itself (or by the full decode of the re-encode), so no photo is decoded twice. The camera's
scan bytes are only ever changed by a rotation, and at most once lossily.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

from capture_api.encode.exif import ExifFacts, read_exif
from capture_api.encode.formats import PhotoFormat, sniff
from capture_api.encode.heif import HEVC_METHOD, transcode_heif
from capture_api.encode.jpeg.decode import check_decodes
from capture_api.encode.jpeg.markers import (
    ColorTransform,
    FrameInfo,
    Process,
    read_frame,
    strip_metadata,
    strip_metadata_parts,
)
from capture_api.encode.memory import (
    MemoryBudget,
    lossless_rotation_cost,
    reencode_cost,
)
from capture_api.encode.orientation import REENCODE_QUALITY, Upright, make_upright
from capture_api.encode.photo_data import PhotoData
from capture_api.exceptions import CorruptImage, ImageTooLarge, UnsupportedFormat

JPEG_METHOD = "ISO_10918_1"


@dataclass(frozen=True)
class Limits:
    """Guards against huge files, decompression bombs and memory amplification."""

    max_bytes: int = 80 * 1024 * 1024
    max_pixels: int = 210_000_000
    #: Whole-image work (rotation, re-encode, HEIC) reserves its memory here first.
    memory: MemoryBudget = field(default_factory=MemoryBudget)


@dataclass(frozen=True)
class LossyStep:
    """One lossy compression in the image's history (Lossy Image Compression Ratio/Method)."""

    ratio: float
    method: str


@dataclass(frozen=True)
class PreparedPhoto:
    """The final JPEG stream and everything the DICOM builder needs to describe it.

    The stream is kept as ``parts`` (an upright photo's scan is a view of the upload, not a
    copy); ``jpeg`` joins them for whoever needs one ``bytes``.
    """

    parts: tuple[bytes | memoryview, ...]
    frame: FrameInfo
    source_format: PhotoFormat
    exif: ExifFacts
    icc_profile: bytes | None
    lossy_steps: tuple[LossyStep, ...]
    derived: bool
    derivation: str
    removed_segments: tuple[str, ...]
    #: Per part, its ``(start, end)`` in the uploaded file when it is a view of it (an upright
    #: JPEG's scan); None when the stream is new bytes (turned, or converted from HEIF).
    spans: tuple[tuple[int, int] | None, ...] | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.exif.warnings

    @functools.cached_property
    def jpeg(self) -> bytes:
        """The stream as one ``bytes`` (a copy, made on first use)."""
        return b"".join(self.parts)


def prepare_photo(data: PhotoData, limits: Limits = Limits()) -> PreparedPhoto:
    """Validate, strip and orient ``data``; raise ``InputRejected`` subclasses on bad input."""
    if len(data) > limits.max_bytes:
        size, limit = len(data) / 1e6, limits.max_bytes / 1e6
        raise ImageTooLarge(f"the file is {size:.3g} MB; the limit is {limit:.3g} MB")
    if sniff(data) is PhotoFormat.HEIF:
        return _prepare_heif(bytes(data), limits)  # libheif copies it anyway
    return _prepare_jpeg(data, limits)


def _prepare_jpeg(data: PhotoData, limits: Limits) -> PreparedPhoto:
    try:  # one walk of the markers gives the frame and the pieces to keep
        stripped = strip_metadata_parts(data)
    except CorruptImage:
        frame = read_frame(data)  # up to the scan only: is the damage after it?
        _check_supported(frame, limits)
        check_decodes(data, frame)  # damaged scan data: refused in libjpeg's words first
        raise
    frame = stripped.frame
    _check_supported(frame, limits)  # before any decode: a bomb is refused from its header
    exif = read_exif(stripped.exif)
    steps = [LossyStep(_ratio(frame, stripped.size), JPEG_METHOD)]
    parts, final_frame = stripped.parts, frame
    spans: tuple[tuple[int, int] | None, ...] | None = stripped.spans
    if exif.orientation == 1 and frame.color is not ColorTransform.RGB:
        upright = Upright(b"", "none", "")  # the pieces as they are: no joined copy
        check_decodes(data, frame)  # nothing read the scan yet: prove it whole
    else:  # the transform (or the re-encode's full decode) is the strict decode
        with limits.memory.hold(*_upright_cost(frame, exif.orientation, len(data))):
            upright = make_upright(data, stripped, exif.orientation)
        turned = strip_metadata_parts(upright.data)  # libjpeg's JFIF header out, scan viewed
        parts, final_frame, spans = turned.parts, turned.frame, None  # views of new bytes
    if upright.method == "reencode":
        steps.append(LossyStep(_ratio(final_frame, sum(map(len, parts))), JPEG_METHOD))
    return PreparedPhoto(
        parts=parts,
        frame=final_frame,
        source_format=PhotoFormat.JPEG,
        exif=exif,
        icc_profile=stripped.icc_profile,
        lossy_steps=tuple(steps),
        derived=upright.method == "reencode",
        derivation=upright.description,
        removed_segments=stripped.removed,
        spans=spans,
    )


def _upright_cost(frame: FrameInfo, orientation: int, size: int) -> tuple[int, str]:
    """What ``make_upright`` will hold: nothing for an upright YCbCr photo (it is passed on
    as it is), a lossless rotation's coefficients, or a re-encode's pixels (RGB-coded JPEGs
    and rotations whose edge blocks do not fit the JPEG block size)."""
    pixels = f"a {frame.columns}x{frame.rows} photo"
    if frame.color is not ColorTransform.RGB and orientation == 1:
        return 0, pixels
    mcu_w, mcu_h = frame.mcu_size
    aligned = frame.columns % mcu_w == 0 and frame.rows % mcu_h == 0
    if frame.color is not ColorTransform.RGB and (aligned or orientation in (2, 3, 4)):
        # Flips and 180 degrees may still be imperfect at an edge: the re-encode is the
        # upper bound then, so reserve it (the check below uses the larger of the two).
        cost = lossless_rotation_cost(frame, size)
        if not aligned:
            cost = max(cost, reencode_cost(frame, size))
        return cost, f"turning {pixels} upright"
    return reencode_cost(frame, size), f"turning {pixels} upright (one re-encode)"


def _prepare_heif(data: bytes, limits: Limits) -> PreparedPhoto:
    heif = transcode_heif(data, limits.max_pixels, limits.memory)
    stripped = strip_metadata(heif.jpeg)
    # libheif already applied the container's rotation: the EXIF orientation no longer applies.
    exif = dataclasses.replace(read_exif(heif.exif), orientation=1)
    steps = (
        LossyStep(heif.source_ratio, HEVC_METHOD),
        LossyStep(_ratio(stripped.frame, len(stripped.data)), JPEG_METHOD),
    )
    return PreparedPhoto(
        parts=(stripped.data,),
        frame=stripped.frame,
        source_format=PhotoFormat.HEIF,
        exif=exif,
        icc_profile=heif.icc_profile,
        lossy_steps=steps,
        derived=True,
        derivation=f"transcoded from HEIC (HEVC) to baseline JPEG at quality {REENCODE_QUALITY}",
        removed_segments=(),
    )


def _check_supported(frame: FrameInfo, limits: Limits) -> None:
    """Refuse what DICOM VL Photographic cannot carry unchanged (STANDARDS.md box)."""
    fix = "Send the camera's original photo (baseline JPEG or HEIC)."
    if frame.process is Process.PROGRESSIVE:
        raise UnsupportedFormat(
            f"this is a progressive JPEG; DICOM has no current transfer syntax for it. {fix}"
        )
    if frame.process not in (Process.BASELINE, Process.EXTENDED):
        raise UnsupportedFormat(
            f"this JPEG uses coding process SOF{frame.sof_marker - 0xC0} (lossless, "
            f"hierarchical or arithmetic), which DICOM photos do not use. {fix}"
        )
    if frame.precision != 8:
        raise UnsupportedFormat(
            f"this is a {frame.precision}-bit JPEG; VL photographic images are 8-bit. {fix}"
        )
    if frame.color in (ColorTransform.CMYK, ColorTransform.YCCK) or frame.samples_per_pixel not in (
        1,
        3,
    ):
        raise UnsupportedFormat(f"this is a CMYK (print) JPEG, not a camera photo. {fix}")
    if frame.rows * frame.columns > limits.max_pixels:
        raise ImageTooLarge(
            f"the photo is {frame.columns}x{frame.rows} pixels; "
            f"the limit is {limits.max_pixels / 1e6:.3g} megapixels"
        )


def _ratio(frame: FrameInfo, size: int) -> float:
    """Uncompressed 8-bit size over compressed size (Lossy Image Compression Ratio)."""
    return frame.rows * frame.columns * frame.samples_per_pixel / size
