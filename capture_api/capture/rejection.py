"""Why a photo is taken back: the titles of an IOCM rejection note (DICOM CID 7011).

Domain vocabulary (``capture_api.correct`` writes it, ``review``'s report counts it).

IHE IOCM (Imaging Object Change Management, RAD TF-1 Vol 1 section 37) rejects instances with
a Key Object Selection document whose Document Title (the root of its content tree) is one of
CID 7011 "Rejected for ..." codes; the archive then hides (or deletes) what it references.
The phone and the API name a reason by a short key; the code is what goes into the KOS and
the ``rejection`` row.
"""

from __future__ import annotations

from enum import StrEnum

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code


class RejectReason(StrEnum):
    """The reasons capture offers (``wrong-patient`` and ``worklist-entry`` can be re-filed)."""

    WRONG_PATIENT = "wrong-patient"  # DCM 113037 Rejected for Patient Safety Reasons
    QUALITY = "quality"  # DCM 113001 Rejected for Quality Reasons (blurred, duplicate)
    WORKLIST_ENTRY = "worklist-entry"  # DCM 113038 Incorrect Modality Worklist Entry

    @property
    def kos_title(self) -> Code:
        """The KOS Document Title (CID 7011)."""
        return _TITLES[self]

    @property
    def refilable(self) -> bool:
        """Whether the photo belongs to another patient (it may be re-filed for them)."""
        return self is not RejectReason.QUALITY

    @classmethod
    def label(cls, value: str) -> str:
        """The reason key of a stored code value, or the code itself when it is not ours."""
        try:
            return cls.from_code(value).value
        except ValueError:
            return value

    @classmethod
    def from_code(cls, value: str) -> RejectReason:
        """The reason whose CID 7011 code value is ``value`` (a stored ``rejection.reason``)."""
        for reason, code in _TITLES.items():
            if code.value == value:
                return reason
        raise ValueError(f"{value!r} is not a CID 7011 code capture uses")


_TITLES: dict[RejectReason, Code] = {
    RejectReason.WRONG_PATIENT: codes.DCM.RejectedForPatientSafetyReasons,
    RejectReason.QUALITY: codes.DCM.RejectedForQualityReasons,
    RejectReason.WORKLIST_ENTRY: codes.DCM.IncorrectModalityWorklistEntry,
}
