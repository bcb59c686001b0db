"""The encoder's public entry point: photo bytes + capture context -> DICOM Part 10.

``wrap_photo`` is what the API, the CLI and the benchmark call. It is pure (no I/O besides
the returned object), so the capture service can spool the result wherever it needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset

from capture_api.capture.model import CaptureContext
from capture_api.encode.dermoscopy import build_dermoscopic
from capture_api.encode.prepare import Limits, PreparedPhoto, prepare_photo
from capture_api.encode.vl_photo import build_vl_photo


@dataclass(frozen=True)
class EncoderOptions:
    """What the deployment decides, not the clinician (see ``capture_api.config``)."""

    uid_root: str | None = None
    institution_name: str | None = None
    station_name: str | None = None
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class WrappedPhoto:
    """The DICOM object and what happened on the way, for the capture record and the user."""

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

    def to_bytes(self) -> bytes:
        """The DICOM Part 10 file (preamble, File Meta, dataset) as bytes."""
        buffer = BytesIO()
        dcmwrite(buffer, self.dataset, enforce_file_format=True)
        return buffer.getvalue()

    def save(self, path: str | Path) -> None:
        """Write the Part 10 file to ``path``."""
        dcmwrite(path, self.dataset, enforce_file_format=True)


def wrap_photo(
    data: bytes,
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
    build = build_dermoscopic if ctx.dermoscopy is not None else build_vl_photo
    dataset = build(
        photo,
        ctx,
        uid_root=options.uid_root,
        institution_name=options.institution_name,
        station_name=options.station_name,
        now=now,
    )
    return WrappedPhoto(dataset, photo)
