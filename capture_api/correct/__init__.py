"""Taking photos back (IHE IOCM): reject a wrong patient's or a bad photo everywhere it went.

``Corrections`` (``service``) rejects a photo once -- a ``rejection`` row, and a Key Object
Selection rejection note (``kos``, titled with a CID 7011 reason: ``capture.RejectReason``)
delivered through the photos' outbox -- and re-files a wrong patient's photo for the right
patient from the same JPEG bitstream (``reissue``, ``sources``). The views (``review``) and
the chart (``notify``) read the ``rejection`` table; nothing here asks them.
``RemovalWorker`` (``removal``) deletes rejected instances from Orthanc when
``CAPTURE_ARCHIVE_DELETE_REJECTED`` is on.
"""

from capture_api.capture.rejection import RejectReason
from capture_api.correct.errors import NotArchived, RefileRefused
from capture_api.correct.kos import kos_uids, rejection_note
from capture_api.correct.removal import RemovalWorker
from capture_api.correct.service import Corrections, Rejected

__all__ = [
    "Corrections",
    "NotArchived",
    "RefileRefused",
    "RejectReason",
    "Rejected",
    "RemovalWorker",
    "kos_uids",
    "rejection_note",
]
