"""The encoder's public entry point: photo bytes + capture context -> DICOM Part 10.

``wrap_photo`` is what the API, the CLI and the benchmark call. It is pure (no I/O besides
the returned object), so the capture service can spool the result wherever it needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset

from capture_api.capture.model import CaptureContext
from capture_api.encode.dermoscopy import DERMOSCOPIC
from capture_api.encode.part10 import framing, write_part10
from capture_api.encode.photo_data import PhotoData
from capture_api.encode.prepare import Limits, PreparedPhoto, prepare_photo
from capture_api.encode.vl_photo import VL_PHOTOGRAPHIC, build_photo


@dataclass(frozen=True)
class EncoderOptions:
    """What the deployment decides, not the clinician (see ``capture_api.config``)."""

    uid_root: str | None = None
    institution_name: str | None = None
    station_name: str | None = None
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class WrappedPhoto:
    """The DICOM object and what happened on the way, for the capture record and the user.

    ``dataset`` holds everything but Pixel Data, which is ``photo.jpeg``: ``write`` puts the
    two together in the file without copying the photo (``encode.part10``).
    """

    dataset: Dataset
    photo: PreparedPhoto

    @property
    def sop_instance_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)

    @property
    def study_instance_uid(self) -> str:
        return str(self.dataset.StudyInstanceUID)

    @property
    def series_instance_uid(self) -> str:
        return str(self.dataset.SeriesInstanceUID)

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.photo.warnings

    def write(self, out: BinaryIO) -> None:
        """Write the DICOM Part 10 file (preamble, File Meta, dataset) to ``out``."""
        write_part10(out, self.dataset, self.photo.parts)

    def layout(self) -> tuple[bytes | tuple[int, int], ...] | None:
        """The Part 10 file as small runs of bytes and ``(start, end)`` ranges of the uploaded
        file (its scan, kept byte for byte); None when the stream is not the upload's own
        bytes (turned upright, or converted from HEIF). The spool keeps such an object as
        references to the photo it already holds (``store.composed``): the same bytes as
        ``write``, without writing the photo's megabytes a second time."""
        spans = self.photo.spans
        if spans is None:
            return None
        head, tail = framing(self.dataset, sum(len(part) for part in self.photo.parts))
        pieces: list[bytes | tuple[int, int]] = [head]
        for part, span in zip(self.photo.parts, spans, strict=True):
            if span is not None:
                pieces.append(span)
            elif isinstance(pieces[-1], bytes):
                pieces[-1] += bytes(part)
            else:
                pieces.append(bytes(part))
        if isinstance(pieces[-1], bytes):
            pieces[-1] += tail
        else:
            pieces.append(tail)
        return tuple(pieces)

    def to_bytes(self) -> bytes:
        """The DICOM Part 10 file as bytes (for callers that need it in memory)."""
        buffer = BytesIO()
        self.write(buffer)
        return buffer.getvalue()

    def save(self, path: str | Path) -> None:
        """Write the Part 10 file to ``path``."""
        with open(path, "wb") as out:
            self.write(out)


def wrap_photo(
    data: PhotoData,
    ctx: CaptureContext,
    options: EncoderOptions = EncoderOptions(),
    *,
    now: dt.datetime | None = None,
) -> WrappedPhoto:
    """Validate ``data`` (JPEG or HEIC) and wrap it as a VL Photographic Image (a
    Dermoscopic Photography Image when ``ctx.dermoscopy`` says it was taken through a
    dermatoscope).

    Raises ``InputRejected`` (with a message for the person who sent it) for anything we
    will not archive; never returns a partially valid object.
    """
    photo = prepare_photo(data, options.limits)
    iod = DERMOSCOPIC if ctx.dermoscopy is not None else VL_PHOTOGRAPHIC
    dataset = build_photo(
        photo,
        ctx,
        iod,
        uid_root=options.uid_root,
        institution_name=options.institution_name,
        station_name=options.station_name,
        now=now,
    )
    return WrappedPhoto(dataset, photo)
