"""JPEG marker segments: read the frame header, drop metadata, keep the scan bytes.

This is the "no re-encode" path of STANDARDS.md 6.2: the DICOM object must carry the
camera's entropy-coded data byte for byte, so we work on marker segments only and never
touch what lies between SOS and EOI. Pillow and libjpeg-turbo cannot do this (saving
re-encodes; ``jpegtran -copy none`` re-codes the Huffman data), hence this small parser.

Byte layout (ITU-T T.81 B.1.1): ``FFD8`` SOI, then segments ``FFxx LLLL payload`` where
LLLL (big-endian) counts itself but not the marker; after SOS comes entropy-coded data in
which ``FF00`` is a stuffed byte and ``FFD0``-``FFD7`` are restart markers; ``FFD9`` ends
the image. Anything after the first EOI (MPF secondary images, vendor trailers) is not
part of the image and is dropped.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from enum import Enum

from capture_api.encode.photo_data import PhotoData
from capture_api.exceptions import CorruptImage, UnsupportedFormat

SOI, EOI, SOS, DHT, DQT, DRI, DNL, COM = 0xD8, 0xD9, 0xDA, 0xC4, 0xDB, 0xDD, 0xDC, 0xFE
APP0, APP1, APP2, APP14 = 0xE0, 0xE1, 0xE2, 0xEE
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
#: A marker that ends entropy-coded data: FF followed by anything but 00 (stuffing),
#: D0-D7 (restart) or FF (fill byte).
_END_OF_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
#: A marker: one or more FF (the extra ones are fill bytes, T.81 B.1.1.2) and its code.
_MARKER = re.compile(rb"\xff+([^\xff])")
#: Far above any camera file (tens of segments; an ICC profile adds at most 255), far below
#: what a hostile file of repeated 4-byte empty segments reaches: 20 million in 80 MB, which
#: would take minutes and gigabytes to walk.
MAX_SEGMENTS = 4096
_ICC_ID = b"ICC_PROFILE\x00"
_EXIF_ID = b"Exif\x00\x00"


class Process(Enum):
    """The JPEG coding process, from the SOF marker (T.81 Table B.1)."""

    BASELINE = 0xC0
    EXTENDED = 0xC1
    PROGRESSIVE = 0xC2
    LOSSLESS = 0xC3
    OTHER = 0


class ColorTransform(Enum):
    """How the decoder must interpret the components (libjpeg's rules, jdapimin.c)."""

    GRAY = "gray"
    YCBCR = "YCbCr"
    RGB = "RGB"
    CMYK = "CMYK"
    YCCK = "YCCK"


@dataclass(frozen=True)
class Component:
    """One SOF component: its id and sampling factors."""

    ident: int
    h: int
    v: int


@dataclass(frozen=True)
class FrameInfo:
    """What the SOF, Adobe and JFIF markers say about the image."""

    process: Process
    sof_marker: int
    precision: int
    rows: int
    columns: int
    components: tuple[Component, ...]
    color: ColorTransform

    @property
    def samples_per_pixel(self) -> int:
        return len(self.components)

    @property
    def chroma_subsampling(self) -> str:
        """'4:2:0', '4:2:2', '4:4:4', '4:4:0', '4:1:1' or 'other'; '' for one component."""
        if len(self.components) != 3:
            return ""
        y, cb, cr = self.components
        if (cb.h, cb.v) != (cr.h, cr.v) or (cb.h, cb.v) != (1, 1):
            return "other"
        return {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0"}.get(
            (y.h, y.v), "4:1:1" if (y.h, y.v) == (4, 1) else "other"
        )

    @property
    def mcu_size(self) -> tuple[int, int]:
        """Width and height in pixels of one iMCU (what a perfect lossless rotation needs)."""
        return 8 * max(c.h for c in self.components), 8 * max(c.v for c in self.components)


@dataclass(frozen=True)
class StrippedJpeg:
    """A JPEG with every metadata segment removed, and what those segments carried."""

    data: bytes
    frame: FrameInfo
    exif: bytes | None = None
    icc_profile: bytes | None = None
    removed: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class StrippedParts:
    """``StrippedJpeg`` before its pieces are joined: the scan is a view of the input.

    The DICOM file is written from these pieces (``encode.part10``), so an upright photo's
    scan data is never copied: the input stays the only copy in memory (issue 13).
    """

    parts: tuple[bytes | memoryview, ...]
    frame: FrameInfo
    exif: bytes | None = None
    icc_profile: bytes | None = None
    removed: tuple[str, ...] = field(default_factory=tuple)
    #: Per part: ``(start, end)`` in the input when the part is a view of it (a scan), else
    #: None. The spool keeps an upright photo's DICOM object as references to the photo's
    #: own file there (``store.composed``), not a second copy of its megabytes.
    spans: tuple[tuple[int, int] | None, ...] = ()

    @property
    def size(self) -> int:
        return sum(len(part) for part in self.parts)

    def joined(self) -> StrippedJpeg:
        return StrippedJpeg(
            b"".join(self.parts), self.frame, self.exif, self.icc_profile, self.removed
        )


@dataclass(frozen=True)
class _Segment:
    marker: int
    start: int
    end: int  # exclusive; for SOS this includes the entropy-coded data that follows

    def payload(self, data: PhotoData) -> bytes:
        return data[self.start + 4 : self.end] if self.marker != SOS else b""


def strip_metadata(data: bytes) -> StrippedJpeg:
    """Return the image with only the segments a decoder needs, scan data untouched.

    The same as ``strip_metadata_parts``, joined into one ``bytes``.
    """
    return strip_metadata_parts(data).joined()


def strip_metadata_parts(data: PhotoData) -> StrippedParts:
    """The stripped image as pieces: kept segments, and the scan as a view of ``data``.

    Kept: SOF, DHT, DQT, DRI, SOS + entropy-coded data, DNL, JFIF APP0 minus its thumbnail,
    and the Adobe APP14 segment only for an RGB-coded stream (where it is the sole signal).
    Removed: EXIF (with GPS, maker notes and its thumbnail), XMP, ICC (returned for the ICC
    Profile attribute instead), IPTC/Photoshop, MPF, comments, JFXX thumbnails, a YCbCr
    stream's Adobe segment (pydicom's Pillow decoder converts its colour twice; the DICOM
    Photometric Interpretation says YCbCr already), and anything after the first EOI.
    """
    segments = _read_segments(data)
    frame = _frame_info(data, segments)
    out: list[bytes | memoryview] = [b"\xff\xd8", _jfif_if_needed(data, segments, frame)]
    spans: list[tuple[int, int] | None] = [None, None]
    exif: bytes | None = None
    icc_chunks: list[tuple[int, bytes]] = []
    removed: list[str] = []
    for seg in segments:
        kept = _kept_bytes(data, seg, frame)
        if kept is not None:
            out.append(kept)
            spans.append((seg.start, seg.end) if isinstance(kept, memoryview) else None)
            continue
        body = seg.payload(data)
        if seg.marker == APP1 and body.startswith(_EXIF_ID) and exif is None:
            exif = body[len(_EXIF_ID) :]
        elif seg.marker == APP2 and body.startswith(_ICC_ID) and len(body) > 14:
            icc_chunks.append((body[12], body[14:]))
        removed.append(_describe(seg.marker, body))
    out.append(b"\xff\xd9")
    spans.append(None)
    icc = b"".join(chunk for _, chunk in sorted(icc_chunks)) or None
    kept_parts = [(p, span) for p, span in zip(out, spans, strict=True) if len(p)]
    return StrippedParts(
        tuple(p for p, _ in kept_parts),
        frame,
        exif,
        icc,
        tuple(removed),
        tuple(span for _, span in kept_parts),
    )


def read_frame(data: PhotoData) -> FrameInfo:
    """Parse the marker structure and describe the frame.

    It walks to the end of the scan (a regex search, not a decode), so a file cut off inside
    the scan is already refused here.
    """
    return _frame_info(data, _read_segments(data, stop_at_scan=True))


def scan_data(data: bytes) -> bytes:
    """The entropy-coded bytes of the first scan: what must stay byte-identical."""
    for seg in _read_segments(data):
        if seg.marker == SOS:
            header_len = struct.unpack(">H", data[seg.start + 2 : seg.start + 4])[0]
            return data[seg.start + 2 + header_len : seg.end]
    raise CorruptImage("the JPEG has no image data (no SOS marker)")


# --- segment walking ---------------------------------------------------------------------


def _read_segments(data: PhotoData, *, stop_at_scan: bool = False) -> list[_Segment]:
    if data[:2] != b"\xff\xd8":
        raise UnsupportedFormat("this is not a JPEG file (it does not start with FFD8)")
    if len(data) < 4:
        raise CorruptImage("the JPEG ends right after its start marker: the file was cut off")
    segments: list[_Segment] = []
    pos = 2
    for _ in range(MAX_SEGMENTS):
        marker, pos = _next_marker(data, pos)
        if marker == EOI:
            return segments
        if marker in _STANDALONE:  # TEM or a stray RST: no length field, nothing to keep
            pos += 2
            continue
        seg = _segment_at(data, marker, pos)
        segments.append(seg)
        if marker == SOS and stop_at_scan:
            return segments
        pos = seg.end
    raise CorruptImage(
        f"the JPEG has more than {MAX_SEGMENTS} marker segments, which no camera writes: "
        "the file is damaged or not a photo; send the camera's original photo"
    )


def _next_marker(data: PhotoData, pos: int) -> tuple[int, int]:
    """Find the marker at ``pos`` (skipping FF fill bytes); return it and where it starts.

    A regex skips the fill bytes: a byte-by-byte loop spends seconds on a file of 80 MB of FF.
    """
    if pos >= len(data):
        raise CorruptImage(
            "the JPEG ends before its end-of-image marker: the file was cut off; send it again"
        )
    if data[pos] != 0xFF:
        raise CorruptImage(f"the JPEG structure is damaged at byte {pos} (expected a marker)")
    found = _MARKER.match(data, pos)
    if found is None:
        raise CorruptImage("the JPEG ends inside a marker: the file was cut off; send it again")
    return found.group(1)[0], found.start(1) - 1


def _segment_at(data: PhotoData, marker: int, pos: int) -> _Segment:
    if pos + 4 > len(data):
        raise CorruptImage("the JPEG ends inside a marker segment: the file was cut off")
    length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    end = pos + 2 + length
    if length < 2 or end > len(data):
        raise CorruptImage(
            f"a JPEG marker segment (FF{marker:02X}) runs past the end of the file: "
            "the file was cut off or damaged"
        )
    if marker == SOS:
        found = _END_OF_SCAN.search(data, end)
        if found is None:
            raise CorruptImage(
                "the JPEG image data has no end-of-image marker: the file was cut off; "
                "send it again"
            )
        end = found.start()
    return _Segment(marker, pos, end)


# --- what to keep --------------------------------------------------------------------------


def _kept_bytes(data: PhotoData, seg: _Segment, frame: FrameInfo) -> bytes | memoryview | None:
    """The bytes to keep for this segment, or None when it is metadata to drop."""
    if seg.marker == SOS:  # the scan: megabytes, viewed rather than copied
        return memoryview(data)[seg.start : seg.end]
    body = seg.payload(data)
    if seg.marker in _SOF_MARKERS or seg.marker in (DHT, DQT, DRI, DNL, 0xCC):
        return data[seg.start : seg.end]
    if seg.marker == APP14 and body.startswith(b"Adobe") and frame.color is ColorTransform.RGB:
        return data[seg.start : seg.end]
    if seg.marker == APP0 and body.startswith(b"JFIF\x00") and len(body) >= 14:
        return _jfif_without_thumbnail(body)
    return None


def _jfif_if_needed(data: PhotoData, segments: list[_Segment], frame: FrameInfo) -> bytes:
    """A minimal JFIF APP0 when dropping Adobe APP14 would make libjpeg guess RGB.

    Without JFIF or Adobe markers libjpeg infers RGB from component IDs 'R','G','B'
    (jdapimin.c); JFIF pins YCbCr. Only that rare stream needs one.
    """
    has_jfif = any(s.marker == APP0 and s.payload(data)[:5] == b"JFIF\x00" for s in segments)
    ids = tuple(c.ident for c in frame.components)
    if frame.color is not ColorTransform.YCBCR or has_jfif or ids != (0x52, 0x47, 0x42):
        return b""
    return _jfif_without_thumbnail(b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01")


def _jfif_without_thumbnail(body: bytes) -> bytes:
    """JFIF APP0 with the thumbnail removed (it can show the uncropped scene)."""
    header = body[:12] + b"\x00\x00"  # identifier, version, units, densities; 0x0 thumbnail
    return b"\xff\xe0" + struct.pack(">H", len(header) + 2) + header


def _describe(marker: int, body: bytes) -> str:
    if marker == COM:
        return "COM"
    if 0xE0 <= marker <= 0xEF:
        ident = body[:12].split(b"\x00", 1)[0].decode("latin-1", "replace")
        label = ident if ident.isprintable() and ident else "?"
        return f"APP{marker - 0xE0}:{label}"
    return f"FF{marker:02X}"


# --- frame header --------------------------------------------------------------------------


def _frame_info(data: PhotoData, segments: list[_Segment]) -> FrameInfo:
    sof = next((s for s in segments if s.marker in _SOF_MARKERS), None)
    if sof is None:
        raise CorruptImage("the JPEG has no frame header (SOF marker): it is damaged")
    body = sof.payload(data)
    if len(body) < 6:
        raise CorruptImage("the JPEG frame header is too short: the file is damaged")
    precision, rows, columns, count = struct.unpack(">BHHB", body[:6])
    if len(body) < 6 + 3 * count or count == 0:
        raise CorruptImage("the JPEG frame header is too short for its components")
    comps = tuple(
        Component(body[6 + 3 * i], body[7 + 3 * i] >> 4, body[7 + 3 * i] & 0x0F)
        for i in range(count)
    )
    if rows == 0 or columns == 0:
        raise UnsupportedFormat(
            "the JPEG does not state its height in the frame header (DNL): not supported"
        )
    if any(not (1 <= c.h <= 4 and 1 <= c.v <= 4) for c in comps):
        raise CorruptImage("the JPEG frame header has invalid sampling factors")
    process = Process(sof.marker) if sof.marker in (0xC0, 0xC1, 0xC2, 0xC3) else Process.OTHER
    color = _color_transform(data, segments, comps)
    return FrameInfo(process, sof.marker, precision, rows, columns, comps, color)


def _color_transform(
    data: PhotoData, segments: list[_Segment], comps: tuple[Component, ...]
) -> ColorTransform:
    """Decide the colour space the way libjpeg does (jdapimin.c default_decompress_parms)."""
    adobe = next(
        (
            s.payload(data)
            for s in segments
            if s.marker == APP14 and s.payload(data)[:5] == b"Adobe"
        ),
        None,
    )
    jfif = any(s.marker == APP0 and s.payload(data)[:5] == b"JFIF\x00" for s in segments)
    transform = adobe[11] if adobe is not None and len(adobe) >= 12 else None
    if len(comps) == 1:
        return ColorTransform.GRAY
    if len(comps) == 4:
        return ColorTransform.YCCK if transform == 2 else ColorTransform.CMYK
    if jfif:
        return ColorTransform.YCBCR
    if transform is not None:
        return ColorTransform.RGB if transform == 0 else ColorTransform.YCBCR
    ids = tuple(c.ident for c in comps)
    return ColorTransform.RGB if ids == (0x52, 0x47, 0x42) else ColorTransform.YCBCR
