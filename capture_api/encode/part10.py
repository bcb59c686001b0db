"""Writing a photo's DICOM Part 10 file: pydicom's header, then the JPEG as it is.

pydicom's ``encapsulate`` joins the fragment into a new buffer and ``dcmwrite`` to memory
makes another, so a 12 MP photo cost three more copies of itself per request (issue 13).
Pixel Data is the dataset's last element (nothing of ours has a tag above 7FE0,0010), so
pydicom writes everything before it and we append the encapsulated Pixel Data ourselves,
straight from the photo's bytes to the file. The bytes are the same as pydicom's
(``tests/encode/test_part10.py`` compares them); dciodvfy, dcmdump and pydicom read them.

Byte layout (PS3.5 7.1.2 and A.4; explicit VR little endian, as every JPEG transfer syntax)::

    E07F 1000  "OB"  0000  FFFFFFFF      Pixel Data, undefined length
    FEFF 00E0  04000000  00000000        Basic Offset Table item: frame 1 at offset 0
    FEFF 00E0  <length, even>  <JPEG>    the frame's one fragment (a 00 pads an odd length)
    FEFF DDE0  00000000                  Sequence Delimitation Item
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from io import BytesIO
from typing import BinaryIO

from pydicom import dcmwrite
from pydicom.dataset import Dataset
from pydicom.tag import Tag

PIXEL_DATA = Tag(0x7FE0, 0x0010)
_PIXEL_DATA_HEADER = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"
_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def write_part10(out: BinaryIO, header: Dataset, jpeg: Sequence[bytes | memoryview]) -> None:
    """Write ``header`` (a dataset with File Meta, no Pixel Data) and then ``jpeg``'s pieces."""
    head, tail = framing(header, sum(len(part) for part in jpeg))
    out.write(head)
    for part in jpeg:
        out.write(part)
    out.write(tail)


def framing(header: Dataset, size: int) -> tuple[bytes, bytes]:
    """What goes before and after a JPEG stream of ``size`` bytes in the Part 10 file:
    ``header`` written by pydicom and the encapsulated Pixel Data's item headers, then the
    odd length's pad and the Sequence Delimitation Item. Small: the photo's megabytes are
    never part of either."""
    if max(header.keys(), default=0) >= PIXEL_DATA:
        raise ValueError("the header must end before Pixel Data (7FE0,0010)")
    if not header.file_meta.TransferSyntaxUID.is_encapsulated:
        raise ValueError("Pixel Data written as fragments needs an encapsulated transfer syntax")
    buffer = BytesIO()
    dcmwrite(buffer, header, enforce_file_format=True)
    pad = size % 2
    buffer.write(_PIXEL_DATA_HEADER + _ITEM + b"\x04\x00\x00\x00" + b"\x00\x00\x00\x00")
    buffer.write(_ITEM + struct.pack("<I", size + pad))
    return buffer.getvalue(), b"\x00" * pad + _SEQUENCE_DELIMITER
