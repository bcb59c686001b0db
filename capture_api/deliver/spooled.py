"""A capture's DICOM object wherever it is now: spooled while the spool keeps it, else archived.

Reading a photo back (to measure a wound on it, to re-file it for the right patient) must not
depend on which replica answers. On a database spool (``CAPTURE_SPOOL=database``) a photo
another replica encoded is on that replica's disk only, but its bytes are in the database until
the archive has it (issue 13); before, such a read went straight to the archive, which did not
have the photo yet (the archive down, or the photo a moment old): the phone's measure screen
failed on every other request behind a load balancer.
"""

from __future__ import annotations

from capture_api.deliver.archive import Archive, InstanceRef
from capture_api.store.records import CaptureRecord
from capture_api.store.spool import Spool


def instance_ref(record: CaptureRecord) -> InstanceRef:
    """The archived instance of a capture (its three UIDs)."""
    return InstanceRef(
        record.study_uid or "", record.series_uid or "", record.sop_instance_uid or ""
    )


def part10(record: CaptureRecord, spool: Spool, archive: Archive) -> bytes:
    """The DICOM object of ``record``: spooled (this machine's file, else on a database spool
    the database's copy), else retrieved from the archive (raising the archive's errors)."""
    if record.dicom_path and record.spool_deleted_at is None:
        try:
            return spool.source(record.dicom_path).read()
        except OSError:
            pass  # purged meanwhile: the archive has it
    return archive.instance(instance_ref(record))
