"""The one exception tree of capture.

Library code raises these; the API layer turns them into HTTP answers and the CLI into
per-file reasons. Third-party errors (Pillow, pydicom, libjpeg-turbo) are translated at the
boundary where they happen, ``raise ... from exc``, so callers never need to know them::

    CaptureError
    ├── InputRejected            the photo or its metadata cannot be accepted as sent
    │   ├── UnsupportedFormat    PNG, TIFF, PDF, progressive/12-bit/CMYK JPEG, ...
    │   ├── CorruptImage         empty, truncated, damaged scan data, undecodable
    │   ├── ImageTooLarge        over the byte or pixel limit
    │   ├── InvalidMetadata      a value DICOM cannot carry (too long, bad date, unknown site)
    │   ├── UnknownContext       the capture names a patient/encounter context we do not have
    │   ├── CaptureConflict      a capture id re-used for a different photo
    │   └── MeasurementRejected  a wound cannot be measured: no usable marker, bad tracing
    ├── FhirError                the EHR's FHIR server (capture_api.context.fhir): 401/403/404/5xx
    ├── NotSignedIn              no valid session: open capture from the patient's chart
    ├── PatientMismatch          a capture or scan for another patient than the launched one
    ├── RoleRequired             signed in, but without the role the action needs
    ├── ConsentRequired          the deployment wants the patient's consent recorded first
    ├── EncodeError              our own failure while building the object (a bug, not the user's)
    └── ArchiveError             the archive (PACS/VNA) did not take or show the instance
        ├── ArchiveUnavailable   transient: 5xx, timeout, connection refused -> retry with backoff
        └── ArchiveRejected      permanent: 4xx, Failed SOP Sequence -> failed, with its reason
            └── ArchiveAuthFailed  401/403: our credentials are wrong -> failed, tell the admin

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


class UnknownContext(InputRejected):
    """The capture refers to an encounter context that does not exist (or has expired)."""


class CaptureConflict(InputRejected):
    """The capture id was already used for a different photo: a client bug, never merged."""


class MeasurementRejected(InputRejected):
    """A wound cannot be measured from this photo or tracing (capture_api.measure).

    ``reason`` is a stable short code (``no-marker``, ``marker-too-small``, ``too-oblique``,
    ``marker-hidden``, ``outline-too-few-points``, ``outline-self-intersecting``,
    ``outline-outside-image``, ...) a client can map to its own wording; the message is
    already written for the person holding the phone.
    """

    def __init__(self, message: str, *, reason: str = "unmeasurable") -> None:
        super().__init__(message)
        self.reason = reason


class NotSignedIn(CaptureError):
    """No (or an expired) session where one is required."""


class PatientMismatch(CaptureError):
    """The safety rule: a session launched for one patient never captures another."""


class RoleRequired(CaptureError):
    """The user is signed in but lacks the role the action needs (403)."""


class ConsentRequired(CaptureError):
    """The consent policy wants the patient's consent recorded before this photo (428)."""


class EncodeError(CaptureError):
    """Building the DICOM object failed for a reason that is ours, not the sender's."""


class ArchiveError(CaptureError):
    """The archive did not store or show an instance; the message says what it answered."""


class ArchiveUnavailable(ArchiveError):
    """A transient failure (5xx, timeout, network): the outbox retries with backoff."""


class ArchiveRejected(ArchiveError):
    """The archive refused the instance for a reason a retry will not change."""


class ArchiveAuthFailed(ArchiveRejected):
    """The archive refused our credentials (401/403): an administrator must fix them."""
