"""What the index keeps about an instance, read once from its header when it is stored.

The same values the priors view and the timeline used to read from each file's header on
every request (Acquisition Context and VL Image attributes, PS3.3 C.7.10.1, C.8.12.1), and
capture's sensitivity private block (group 0011, creator ``CAPTURE SENSITIVITY 1``, see
``capture_api.encode.vl_photo``).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import DT

from capture_api.deliver.archive import InstanceRef
from capture_api.deliver.local_archive._dicomdir import Records, directory_records
from capture_api.encode.vl_photo import (
    CONFIDENTIALITY_ELEMENT,
    LEVEL_ELEMENT,
    SENSITIVITY_CREATOR,
    SENSITIVITY_GROUP,
)
from capture_api.exceptions import ArchiveRejected
from capture_api.store.archive_index import Facts


@dataclass(frozen=True)
class Described:
    """An instance as the index takes it: its facts and its directory records."""

    facts: Facts
    records: Records


#: The documents capture stores beside its photos: Structured Reports (wound measurements) and
#: Key Object Selection documents (IOCM rejection notes). They have no Pixel Data; the index
#: keeps them apart from photos by modality (priors ask for photo modalities only).
DOCUMENT_MODALITIES = frozenset({"SR", "KO"})


def parse_instance(part10: bytes, ref: InstanceRef) -> Described:
    """The instance's description, after checking it is a Part 10 file (PS3.10 7.1) for ``ref``.

    Pixel Data is dropped from the parsed copy: the index needs only the header, and the
    file written to the folder is ``part10`` itself, byte for byte.
    """
    try:
        ds = dcmread(io.BytesIO(part10))
        uids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        has_pixels = "PixelData" in ds
        document = ds.get("Modality") in DOCUMENT_MODALITIES
    except Exception as exc:  # pydicom's parse errors have no common base class
        raise ArchiveRejected(f"not a readable DICOM Part 10 file: {exc}") from exc
    if uids != (ref.study_uid, ref.series_uid, ref.sop_instance_uid):
        raise ArchiveRejected("the file's Study/Series/SOP Instance UIDs do not match the request")
    if document:
        ds.pop("PixelData", None)  # a document has none; the index never needs it
    elif not has_pixels:
        raise ArchiveRejected("the instance has no Pixel Data")
    else:
        del ds.PixelData
    return describe(ds)


def describe(ds: Dataset) -> Described:
    """Facts and records of a parsed header; ``ArchiveRejected`` when it cannot be indexed."""
    try:
        facts = _facts(ds)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ArchiveRejected(f"the instance cannot be indexed: {exc}") from exc
    return Described(facts, directory_records(ds))


def _facts(ds: Dataset) -> Facts:
    code, meaning = _body_site(ds)
    marked, confidentiality, level = _sensitivity(ds)
    acquired = _acquired(ds)
    return Facts(
        sop_instance_uid=str(ds.SOPInstanceUID),
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        patient_id=str(ds.PatientID),
        issuers=_issuers(ds),
        modality=_text(ds, "Modality"),
        body_site_code=code,
        body_site_meaning=meaning,
        laterality=_text(ds, "ImageLaterality"),
        acquired=acquired,
        acquired_key=acquired_key(acquired),
        description=_text(ds, "SeriesDescription"),
        comment=_text(ds, "ImageComments"),
        marked=marked,
        confidentiality=confidentiality,
        level=level,
        admission_id=first_text(ds.get("AdmissionID")),
        study_description=first_text(ds.get("StudyDescription")),
    )


# --- header values ----------------------------------------------------------------------------


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    return str(value) if value not in (None, "") else None


def first_text(value: Any) -> str | None:
    """A DICOM value (single or multi, or an element) as its first string; None when empty."""
    if value is None:
        return None
    if hasattr(value, "value"):  # a DataElement
        value = value.value
    if isinstance(value, list | tuple | MultiValue):
        value = value[0] if len(value) else None
    text = str(value).strip() if value is not None else ""
    return text or None


def _acquired(ds: Dataset) -> str | None:
    """Acquisition DateTime (C.7.10.1), else Content Date + Time (C.7.6.1), as DICOM text."""
    moment = _text(ds, "AcquisitionDateTime")
    if moment:
        return moment
    date = _text(ds, "ContentDate")
    return f"{date}{_text(ds, 'ContentTime') or ''}" if date else None


def acquired_key(acquired: str | None) -> str:
    """A DT as sortable text, in UTC when it has an offset; "" (sorts last) when unknown."""
    if not acquired:
        return ""
    try:
        moment = DT(acquired)
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return f"{moment.year:04d}{moment.strftime('-%m-%dT%H:%M:%S.%f')}"


def _body_site(ds: Dataset) -> tuple[str | None, str | None]:
    """Anatomic Region Sequence item 1: Code Value and Code Meaning (C.8.12.1)."""
    regions = ds.get("AnatomicRegionSequence")
    if not regions:
        return None, None
    return _text(regions[0], "CodeValue"), _text(regions[0], "CodeMeaning")


def _issuers(ds: Dataset) -> tuple[str, ...]:
    """Issuer of Patient ID (0010,0021) and the Universal Entity IDs of its qualifiers."""
    names = [_text(ds, "IssuerOfPatientID")]
    for item in ds.get("IssuerOfPatientIDQualifiersSequence") or []:
        names.append(_text(item, "UniversalEntityID"))
    return tuple(dict.fromkeys(n for n in names if n))


def _sensitivity(ds: Dataset) -> tuple[bool, str | None, str | None]:
    """(marked, Confidentiality code, level text) of capture's private block."""
    try:
        block = ds.private_block(SENSITIVITY_GROUP, SENSITIVITY_CREATOR)
    except KeyError:
        return False, None, None  # nobody marked it
    code = block[CONFIDENTIALITY_ELEMENT].value if CONFIDENTIALITY_ELEMENT in block else None
    text = block[LEVEL_ELEMENT].value if LEVEL_ELEMENT in block else None
    return True, first_text(code), first_text(text)
