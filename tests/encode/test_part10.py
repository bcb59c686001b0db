"""The Part 10 file written as header + the JPEG's bytes is byte for byte pydicom's own.

``encode.part10`` appends encapsulated Pixel Data to pydicom's header instead of letting
``encapsulate`` and ``dcmwrite`` copy the photo (issue 13, item 4). Whatever reads pydicom's
file (dciodvfy, dcmdump, pydicom: ``test_samples.py`` and ``test_vl_photo.py``) reads ours,
because they are the same bytes: here for an even and an odd JPEG, upright and rotated,
VL Photographic and Dermoscopic.
"""

from __future__ import annotations

import copy
import io

import pydicom
import pytest
from pydicom import dcmwrite
from pydicom.encaps import generate_frames

from capture_api.capture.lesions import Dermoscopy
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Patient
from capture_api.encode.part10 import write_part10
from capture_api.encode.pipeline import WrappedPhoto, wrap_photo
from capture_api.encode.vl_photo import add_pixel_data
from tests.conftest import phone_jpeg


def _pydicom_bytes(wrapped: WrappedPhoto) -> bytes:
    whole = copy.deepcopy(wrapped.dataset)
    add_pixel_data(whole, wrapped.photo)
    out = io.BytesIO()
    dcmwrite(out, whole, enforce_file_format=True)
    return out.getvalue()


def _ctx(dermoscopic: bool = False) -> CaptureContext:
    return CaptureContext(
        capture_id="part10-1",
        patient=Patient(patient_id="MRN-10"),
        dermoscopy=Dermoscopy() if dermoscopic else None,
    )


@pytest.mark.parametrize(
    ("width", "orientation", "dermoscopic"),
    [(320, 1, False), (320, 6, False), (336, 1, True), (320, 3, True)],
)
def test_same_bytes_as_pydicom_and_reads_back(
    width: int, orientation: int, dermoscopic: bool
) -> None:
    wrapped = wrap_photo(phone_jpeg(width, 240, orientation=orientation), _ctx(dermoscopic))
    ours = wrapped.to_bytes()
    assert ours == _pydicom_bytes(wrapped)
    ds = pydicom.dcmread(io.BytesIO(ours))
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    assert frame.rstrip(b"\x00") == wrapped.photo.jpeg.rstrip(b"\x00")


def test_an_odd_length_jpeg_is_padded_like_pydicom() -> None:
    for width in range(320, 400, 16):
        wrapped = wrap_photo(phone_jpeg(width, 240, seed=width), _ctx())
        if len(wrapped.photo.jpeg) % 2:
            assert wrapped.to_bytes() == _pydicom_bytes(wrapped)
            return
    pytest.fail("no odd-length JPEG among the sizes tried")


def test_a_header_holding_pixel_data_is_refused() -> None:
    wrapped = wrap_photo(phone_jpeg(64, 48), _ctx())
    whole = copy.deepcopy(wrapped.dataset)
    add_pixel_data(whole, wrapped.photo)
    with pytest.raises(ValueError, match="before Pixel Data"):
        write_part10(io.BytesIO(), whole, wrapped.photo.parts)
