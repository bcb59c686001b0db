"""Photo bytes -> a DICOM VL Photographic Image, without re-encoding the camera's JPEG.

``wrap_photo`` (``pipeline``) is the one entry: it sniffs the format (``formats``), checks
and prepares the photo (``prepare``: strict decode, size limits, HEIC transcoding by
``heif``, EXIF by ``exif``, upright pixels by ``orientation``, whole-image work within the
``memory`` budget), then builds the instance (``vl_photo``) with UIDs derived from the
capture id (``uids``), so a re-sent photo gets the same SOP Instance UID. Every refusal is
an ``InputRejected`` whose message is written for the person holding the phone. ``jpeg``
reads and strips marker segments byte for byte.
"""

from capture_api.encode.exif import ExifFacts, read_exif
from capture_api.encode.formats import PhotoFormat, sniff
from capture_api.encode.memory import MemoryBudget, MiB
from capture_api.encode.pipeline import EncoderOptions, WrappedPhoto, wrap_photo
from capture_api.encode.prepare import Limits, PreparedPhoto, prepare_photo
from capture_api.encode.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    derived_uid,
    instance_uid,
    is_valid_uid,
)
from capture_api.encode.vl_photo import (
    CATEGORY_ELEMENT,
    CONFIDENTIALITY_ELEMENT,
    LEVEL_ELEMENT,
    SENSITIVITY_CREATOR,
    SENSITIVITY_GROUP,
    build_vl_photo,
)

__all__ = [
    "CATEGORY_ELEMENT",
    "CONFIDENTIALITY_ELEMENT",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "LEVEL_ELEMENT",
    "SENSITIVITY_CREATOR",
    "SENSITIVITY_GROUP",
    "EncoderOptions",
    "ExifFacts",
    "Limits",
    "MemoryBudget",
    "MiB",
    "PhotoFormat",
    "PreparedPhoto",
    "WrappedPhoto",
    "build_vl_photo",
    "derived_uid",
    "instance_uid",
    "is_valid_uid",
    "prepare_photo",
    "read_exif",
    "sniff",
    "wrap_photo",
]
