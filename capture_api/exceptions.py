"""The one exception tree of capture.

Library code raises these; the API layer turns them into HTTP answers (``capture_api.api.
errors`` is the one map from class to status) and the CLI into per-file reasons. Third-party
errors (Pillow, pydicom, libjpeg-turbo, httpx, authlib) are translated at the boundary where
they happen, ``raise ... from exc``, so callers never need to know them. Every error capture
raises on purpose is a ``CaptureError``; the classes that belong to one package's vocabulary
stay in that package (module named on the right) but hang from this tree::

    CaptureError
    ├── InputRejected            the input cannot be accepted as sent (the message says why)
    │   ├── UnsupportedFormat    PNG, TIFF, PDF, progressive/12-bit/CMYK JPEG, ...
    │   ├── CorruptImage         empty, truncated, damaged scan data, undecodable
    │   ├── ImageTooLarge        over the byte or pixel limit
    │   ├── InvalidMetadata      a value DICOM cannot carry (too long, bad date, unknown site)
    │   ├── UnknownContext       the request names a patient/encounter context we do not have
    │   ├── CaptureConflict      a capture id re-used for a different photo or context
    │   ├── MeasurementRejected  a wound cannot be measured: no usable marker, bad tracing
    │   ├── ReportRangeError     review.audit_report: a report's days or time zone
    │   └── ExportQueryError     audit.export: an audit export's time range or paging
    ├── NotFound                 the photo, capture, consent or body site asked for is not
    │   │                        there, or is not one this user is shown (never says which)
    │   └── QueueKeyGone         encounters.queue_custody: the phone's queue key was destroyed
    ├── Conflict                 the request does not fit the state of what it names
    │   ├── CompletionRefused    encounters.worklist_completion: no photos, or failed ones
    │   ├── NotArchived          correct: a photo not (yet) in the archive cannot be rejected
    │   ├── RefileRefused        correct: not rejected for another patient, same patient, done
    │   ├── NoQueueUser          encounters.queue_custody: no user to keep a queue key for
    │   └── QueueTooOld          encounters.queue_custody: context past the queue's retention
    ├── NotSignedIn              no valid session: open capture from the patient's chart
    ├── PatientMismatch          a capture or scan for another patient than the launched one
    ├── RoleRequired             signed in, but without the role the action needs
    ├── QueueNotYours            encounters.queue_custody: another user's queue key or context
    ├── ConsentRequired          the deployment wants the patient's consent recorded first
    ├── AuditUnavailable         privacy.break_glass: the audit trail could not take a
    │                            break-the-glass view, so the clear image is not sent
    ├── EncodeError              our own failure while building the object (a bug, not the user's)
    ├── ArchiveError             the archive (PACS/VNA) did not take or show the instance
    │   ├── ArchiveUnavailable   transient: 5xx, timeout, connection refused -> retry with backoff
    │   └── ArchiveRejected      permanent: 4xx, Failed SOP Sequence -> failed, with its reason
    │       └── ArchiveAuthFailed  401/403: our credentials are wrong -> failed, tell the admin
    ├── FhirError                context.fhir: the EHR's FHIR server did not give the record
    │   ├── FhirUnauthorized     its 401: token expired or invalid
    │   ├── FhirForbidden        its 403: scopes or patient compartment
    │   ├── FhirNotFound         its 404/410: no such record
    │   └── FhirUnavailable      its 5xx/429, timeout, no connection: try again later
    ├── WorklistError            context.worklist: the UPS-RS worklist refused a request
    │   ├── WorklistUnavailable  not configured, unreachable or failing: try again later
    │   ├── WorkitemNotFound     no workitem with that UID
    │   ├── WorkitemClosed       not open to this device (409, with a ``code`` for the phone):
    │   │   ├── WorkitemTaken        another device has claimed it (IN PROGRESS)
    │   │   ├── WorkitemCompleted    it is COMPLETED already
    │   │   └── WorkitemCanceled     it was CANCELED (released, or by the scheduler)
    │   └── WorklistRefused      the server refused an Update or state change (4xx), its
    │                            Warning text kept: a refused completion is retried
    ├── LaunchError              context.smart: a SMART launch failed (its page carries its
    │   │                        own status: 400 ours, 403 refused, 502 the EHR)
    │   └── SessionExpired       the EHR session cannot be continued: launch again
    ├── OAuthError               oauth.errors: the OAuth client's own tree (OAuthUnavailable,
    │                            OAuthRefused, OAuthMisconfigured, OAuthProtocolError,
    │                            IdTokenRejected); callers translate it into theirs
    ├── NotifyAuthError          notify.backend_auth: the EHR refused our backend credentials
    ├── NotifyUnavailable        notify.backend_auth: the EHR could not be reached (retried)
    ├── ResourceInvalid          notify.resources: a FHIR resource we built does not validate
    └── DatabaseUnavailable      store.reports: the database did not answer a metrics query

The last four, ``EncodeError`` and ``OAuthError`` stay inside background workers or are
translated by their callers; should one reach a route it is answered as our fault (500).
Every ``InputRejected`` message is written for the person holding the phone: it names what
is wrong and what to do. Two exceptions in the code base are deliberately outside the tree:
private signals that never leave their module (``api.limits._TooLarge``, ``api.readiness.
NotReady``), both turned into an answer right where they are caught.
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
    """No such patient context (or it has expired): open the patient again."""


class CaptureConflict(InputRejected):
    """The capture id was already used (another photo, or another context): never merged."""


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
        self.code = reason  # the API answers it as ``code`` (api.errors.error_response)


class NotFound(CaptureError):
    """What the request names is not there, or is not shown to this user (never says which)."""


class Conflict(CaptureError):
    """The request does not fit the current state of what it names; the message says what."""


class NotSignedIn(CaptureError):
    """Not signed in, or the session has expired: open capture from the patient's chart."""


class PatientMismatch(CaptureError):
    """Another patient than the one this session was opened for (the safety rule)."""


class RoleRequired(CaptureError):
    """The user is signed in but lacks the role the action needs."""


class ConsentRequired(CaptureError):
    """The consent policy wants the patient's consent recorded before this photo."""


class EncodeError(CaptureError):
    """Building the DICOM object failed for a reason that is ours, not the sender's."""


class ArchiveError(CaptureError):
    """The archive did not store or show the photo (what it answered in detail)."""


class ArchiveUnavailable(ArchiveError):
    """A transient failure (5xx, timeout, network): the outbox retries with backoff."""


class ArchiveRejected(ArchiveError):
    """The archive refused the instance for a reason a retry will not change."""


class ArchiveAuthFailed(ArchiveRejected):
    """The archive refused our credentials (401/403): an administrator must fix them."""
