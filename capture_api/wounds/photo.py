"""The archived photo a wound is measured on: its DICOM header and its decoded pixels.

The numbers must be computed on exactly the pixels the archive holds (the outline and the SR's
SCOORDs are in that image's coordinates), so the photo is read back as the VL Photographic
Image: from the spool while its bytes are still there (``deliver.spooled``: on any replica),
else from the archive (WADO-RS Retrieve Instance). Its one JPEG frame is decoded by OpenCV as
stored, with any EXIF orientation ignored: the encoder already turned the photo upright, and
Rows x Columns are checked.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from pydicom import Dataset, dcmread
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError

from capture_api.deliver.archive import Archive
from capture_api.deliver.spooled import part10
from capture_api.exceptions import CorruptImage, InputRejected
from capture_api.store.records import CaptureRecord, CaptureStatus
from capture_api.store.spool import Spool

__all__ = ["WoundPhoto", "load_photo", "photo_jpeg"]

#: Statuses in which the photo's DICOM object exists (spooled or archived).
ENCODED_STATES = (CaptureStatus.ENCODED, CaptureStatus.STORED, CaptureStatus.VERIFIED)


@dataclass(frozen=True)
class WoundPhoto:
    """The photo's header (no pixel data) and its pixels as OpenCV reads them (BGR)."""

    header: Dataset
    pixels: npt.NDArray[np.uint8]

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows)."""
        return int(self.header.Columns), int(self.header.Rows)


def load_photo(record: CaptureRecord, spool: Spool, archive: Archive) -> WoundPhoto:
    """The photo of ``record``, from the spool or the archive; ``InputRejected`` when it has
    no DICOM object yet (still being encoded, or failed)."""
    _check_encoded(record)
    return _decode(part10(record, spool, archive))


def photo_jpeg(record: CaptureRecord, spool: Spool, archive: Archive) -> bytes:
    """The photo's one JPEG frame as archived: what the phone draws the outline on, so its
    coordinates are the archived image's whatever the phone did with the original file."""
    _check_encoded(record)
    dataset = _dataset(part10(record, spool, archive))
    return _frame(dataset)


def _check_encoded(record: CaptureRecord) -> None:
    if record.status not in ENCODED_STATES or not record.sop_instance_uid:
        raise InputRejected(
            "the photo is not encoded yet (or was refused): measure it once it is on its way "
            "to the archive"
        )


def _dataset(part10: bytes) -> Dataset:
    try:
        return dcmread(io.BytesIO(part10))
    except (InvalidDicomError, ValueError) as exc:
        raise CorruptImage("the archived photo could not be read back") from exc


def _frame(dataset: Dataset) -> bytes:
    try:
        return bytes(next(generate_frames(dataset.PixelData, number_of_frames=1)))
    except (AttributeError, StopIteration, ValueError) as exc:
        raise CorruptImage("the archived photo has no image frame") from exc


def _decode(part10: bytes) -> WoundPhoto:
    dataset = _dataset(part10)
    frame = _frame(dataset)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(frame, np.uint8), flags)
    if pixels is None or pixels.shape[:2] != (int(dataset.Rows), int(dataset.Columns)):
        raise CorruptImage("the archived photo's image could not be decoded at its stored size")
    del dataset.PixelData
    return WoundPhoto(dataset, np.asarray(pixels, dtype=np.uint8))
