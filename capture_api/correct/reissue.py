"""A wrong patient's photo, issued again for the right patient from the same JPEG bitstream.

The archived object's one frame is the camera's JPEG with its metadata segments removed
(``encode``), and the encoder keeps a JPEG's scan data byte for byte; fed back to the encoder
for the right patient's context, it yields a new VL Photographic (or Dermoscopic) Image with
new SOP, Series and Study UIDs and that patient's demographics, whose frame is the same bytes:
no pixel is decoded or re-compressed. The one thing the frame no longer carries is the ICC
profile, which the encoder moved into ICC Profile (0028,2000): it is put back as APP2
segments (ICC.1 Annex B.4) so the new object carries it too.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from pydicom import Dataset
from pydicom.valuerep import DT

_SOI = b"\xff\xd8"
_ICC_SIGNATURE = b"ICC_PROFILE\x00"
_ICC_CHUNK = 65519  # 65535 - 2 (length) - 12 (signature) - 2 (sequence, count)


def refiled_capture_id(rejected_capture_id: str) -> str:
    """The new photo's capture id: one per rejected photo, so a re-sent request is the same."""
    return "refile-" + hashlib.sha256(rejected_capture_id.encode()).hexdigest()[:40]


def with_icc(jpeg: bytes, dataset: Dataset) -> bytes:
    """``jpeg`` with the dataset's ICC profile as APP2 segments after SOI (if it has one)."""
    icc = dataset.get("ICCProfile")
    if not icc or not jpeg.startswith(_SOI):
        return jpeg
    chunks = [bytes(icc[i : i + _ICC_CHUNK]) for i in range(0, len(icc), _ICC_CHUNK)]
    if len(chunks) > 255:
        return jpeg
    segments = b"".join(
        b"\xff\xe2"
        + (len(chunk) + 16).to_bytes(2, "big")
        + _ICC_SIGNATURE
        + bytes([number, len(chunks)])
        + chunk
        for number, chunk in enumerate(chunks, start=1)
    )
    return _SOI + segments + jpeg[2:]


def acquired_at(dataset: Dataset) -> dt.datetime | None:
    """The photo's Acquisition DateTime (0008,002A), the moment the new object keeps."""
    value = dataset.get("AcquisitionDateTime")
    if not value:
        return None
    try:
        return DT(str(value))
    except ValueError:
        return None
