"""The one exception tree of capture.

Library code raises these; the API layer turns them into HTTP answers and the CLI into
per-file reasons. Third-party errors (Pillow, pydicom, libjpeg-turbo) are translated at the
boundary where they happen, ``raise ... from exc``, so callers never need to know them::

    CaptureError
    ├── InputRejected            the photo or its metadata cannot be accepted as sent
    │   ├── UnsupportedFormat    PNG, TIFF, PDF, progressive/12-bit/CMYK JPEG, ...
    │   ├── CorruptImage         empty, truncated, damaged scan data, undecodable
    │   ├── ImageTooLarge        over the byte or pixel limit
    │   └── InvalidMetadata      a value DICOM cannot carry (too long, bad date, unknown site)
    └── EncodeError              our own failure while building the object (a bug, not the user's)

Every ``InputRejected`` message is written for the person holding the phone: it names what
is wrong and what to do.
"""

from __future__ import annotations


class CaptureError(Exception):
    """Base of every error capture raises on purpose."""


class InputRejected(CaptureError):
    """The input cannot be accepted; the message says why and what to do."""


class UnsupportedFormat(InputRejected):
    """The file is not a format we archive (or a JPEG variant DICOM has no syntax for)."""


class CorruptImage(InputRejected):
    """The file claims to be an image but its data is damaged or incomplete."""


class ImageTooLarge(InputRejected):
    """The file is over the configured byte or pixel limit."""


class InvalidMetadata(InputRejected):
    """A capture value cannot be written into DICOM as given."""


class EncodeError(CaptureError):
    """Building the DICOM object failed for a reason that is ours, not the sender's."""
