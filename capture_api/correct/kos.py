"""The IOCM rejection note: a Key Object Selection document (PS3.3 A.35.4) built by highdicom.

What IHE IOCM asks of it (RAD TF-3 4.66 "Rejection Note Stored"), and how it is met here:

* Document Title = the CID 7011 reason (``reasons.RejectReason.kos_title``);
* it references the rejected instance (SOP Class and Instance UID) in its content tree and,
  in the Current Requested Procedure Evidence Sequence, with its Study and Series UIDs;
* it is in the **rejected instance's study** (same patient, same Study Instance UID), in a
  series of its own (KO modality) -- highdicom copies Patient and Study from the evidence.

Its UIDs are derived from the rejected instance's SOP Instance UID (``encode.derived_uid``),
so two requests that race to reject one photo build the same SOP instance and the outbox
(``deliver.enqueue_object``, keyed by that UID) delivers it once.
"""

from __future__ import annotations

import highdicom as hd
from pydicom import Dataset
from pydicom.uid import UID

from capture_api.capture.rejection import RejectReason
from capture_api.encode import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, derived_uid

#: Series Number of the rejection notes (one per note; far above the photos' numbers).
KOS_SERIES_NUMBER = 9901
MANUFACTURER = "capture"


def kos_uids(uid_root: str | None, rejected_sop_uid: str) -> tuple[str, str]:
    """(Series Instance UID, SOP Instance UID) of the note rejecting ``rejected_sop_uid``."""
    series = derived_uid(uid_root, "iocm-kos-series", rejected_sop_uid)
    return series, derived_uid(uid_root, "iocm-kos", rejected_sop_uid)


def rejection_note(
    rejected: Dataset,
    reason: RejectReason,
    *,
    uid_root: str | None = None,
    institution_name: str | None = None,
    comment: str | None = None,
) -> Dataset:
    """The KOS rejecting ``rejected`` (its header: pixels are not needed) for ``reason``.

    ``comment`` (the person's words, e.g. "duplicate of the photo before") becomes the Key
    Object Description; none for the phone's buttons.
    """
    series_uid, sop_uid = kos_uids(uid_root, str(rejected.SOPInstanceUID))
    document = hd.ko.KeyObjectSelectionDocument(
        evidence=[rejected],
        content=hd.ko.KeyObjectSelection(
            document_title=reason.kos_title,
            referenced_objects=[rejected],
            description=comment[:1024] if comment else None,
        ),
        series_instance_uid=series_uid,
        series_number=KOS_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        institution_name=institution_name,
    )
    document.SeriesDescription = f"IOCM: {reason.kos_title.meaning}"[:64]
    document.file_meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    document.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return document
