"""The camera's JPEG, read and kept byte for byte: marker segments and a strict decode.

``markers`` reads the frame header, drops metadata segments and keeps the entropy-coded
scan data untouched (DICOM must carry the camera's bytes); ``decode`` proves with
libjpeg-turbo in strict mode that the scan data is whole. Used by ``capture_api.encode``.
"""

from capture_api.encode.jpeg.decode import check_decodes, decode_gray, decode_rgb
from capture_api.encode.jpeg.markers import (
    ColorTransform,
    Component,
    FrameInfo,
    Process,
    StrippedJpeg,
    StrippedParts,
    read_frame,
    scan_data,
    strip_metadata,
    strip_metadata_parts,
)

__all__ = [
    "ColorTransform",
    "Component",
    "FrameInfo",
    "Process",
    "StrippedJpeg",
    "StrippedParts",
    "check_decodes",
    "decode_gray",
    "decode_rgb",
    "read_frame",
    "scan_data",
    "strip_metadata",
    "strip_metadata_parts",
]
