"""UPS datasets both ways: a workitem read into our context, and what we write back to it.

Read (PS3.4 Table CC.2.5-3): patient (Patient ID, Issuer of Patient ID (0010,0021) and its
Qualifiers Sequence (0010,0024), every component of Patient's Name, birth date, sex) and
encounter (Admission ID (0038,0010), Issuer of Admission ID Sequence (0038,0014)).

Written, before a state change (PS3.4 CC.2.1.2: the performer meets the Final State
requirements of Table CC.2.5-3 with an Update, N-SET, first):

* COMPLETED ("P" attributes): the Unified Procedure Step Performed Procedure Sequence
  (0074,1216) with Performed Station Name Code Sequence (0040,4028), Performed Workitem Code
  Sequence (0040,4019), Performed Procedure Step Start/End DateTime (0040,4050/4051) and the
  Output Information Sequence (0040,4033), one item per series, each a PS3.3 Table 10-3b
  "Referenced Instances and Access Macro": Type of Instances, Study and Series Instance UID,
  Referenced SOP Sequence, and at least one retrieval sequence (0040,E021)-(0040,E025) from
  the archive's ``Retrieval``.
* CANCELED ("X" attributes): the Procedure Step Progress Information Sequence (0074,1002)
  with Procedure Step Cancellation DateTime (0040,4052), Procedure Step Discontinuation Reason
  Code Sequence (0074,100E, DICOM CID 9300) and Reason For Cancellation (0074,1238).

Bodies are DICOM JSON (PS3.18 F.2): ``to_json`` writes every dataset, sequence items
included, with its attributes in ascending tag order (F.2.2), which pydicom's
``to_json_dict`` (insertion order) does not guarantee.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.valuerep import DA, DT

from capture_api.capture.patient import Sex
from capture_api.capture.retrieval import Retrieval
from capture_api.capture.schemas import ContextIn, EncounterIn, IssuerIn, NameIn, PatientIn
from capture_api.exceptions import CaptureError

MEDIA_TYPE = "application/dicom+json"
#: VL Photographic Image Storage (PS3.4 B.5), the SOP Class of every capture.
VL_PHOTOGRAPHIC_IMAGE = "1.2.840.10008.5.1.4.1.1.77.1.4"

SCHEDULED = "SCHEDULED"
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
CANCELED = "CANCELED"

#: Why a claimed item is given back (DICOM CID 9300 Procedure Discontinuation Reasons):
#: released from the phone -> (110529, DCM, "Discontinued Procedure Step rescheduling
#: recommended"): the encounter still needs its photos; the wrong patient was opened ->
#: (110514, DCM, "Incorrect worklist entry selected").
RELEASED = codes.DCM.DiscontinuedProcedureStepReschedulingRecommended
WRONG_ENTRY = codes.DCM.IncorrectWorklistEntrySelected


class WorklistError(CaptureError):
    """The worklist refused a request; the message says what it answered."""


@dataclass(frozen=True)
class ProducedInstance:
    """One stored DICOM instance, listed in the workitem's Output Information Sequence."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str = VL_PHOTOGRAPHIC_IMAGE


@dataclass(frozen=True)
class Workitem:
    """The parts of a UPS (PS3.4 Table CC.2.5-3) an encounter worklist needs."""

    uid: str
    state: str
    patient_id: str | None
    patient_issuer: str | None = None  # Issuer of Patient ID (0010,0021)
    patient_issuer_uid: str | None = None  # ... Qualifiers Sequence > Universal Entity ID
    family_name: str | None = None
    given_name: str | None = None
    middle_name: str | None = None
    name_prefix: str | None = None
    name_suffix: str | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None
    admission_id: str | None = None
    admission_issuer: str | None = None  # Issuer of Admission ID Seq. > Local Namespace
    admission_issuer_uid: str | None = None  # ... > Universal Entity ID
    scheduled_start: dt.datetime | None = None
    station_code: str | None = None
    label: str | None = None  # Worklist Label (0074,1202)
    description: str | None = None  # Procedure Step Label, else the workitem code meaning
    priority: str | None = None

    @property
    def display_name(self) -> str:
        """The patient's name as a banner shows it ("Family, Given Middle")."""
        given = " ".join(p for p in (self.given_name, self.middle_name) if p)
        return ", ".join(p for p in (self.family_name, given) if p) or "(no name)"

    @classmethod
    def from_dataset(cls, ds: Dataset) -> Workitem:
        """Read a workitem from its DICOM dataset (missing attributes become ``None``)."""
        name = ds.get("PatientName")
        admission_issuer = _item(ds, "IssuerOfAdmissionIDSequence")
        station = _item(ds, "ScheduledStationNameCodeSequence")
        code = _item(ds, "ScheduledWorkitemCodeSequence")
        return cls(
            uid=str(ds.get("SOPInstanceUID", "")),
            state=str(ds.get("ProcedureStepState", "")),
            patient_id=_text(ds, "PatientID"),
            patient_issuer=_text(ds, "IssuerOfPatientID"),
            patient_issuer_uid=universal_id(_item(ds, "IssuerOfPatientIDQualifiersSequence")),
            family_name=(name.family_name or None) if name else None,
            given_name=(name.given_name or None) if name else None,
            middle_name=(name.middle_name or None) if name else None,
            name_prefix=(name.name_prefix or None) if name else None,
            name_suffix=(name.name_suffix or None) if name else None,
            birth_date=_date(ds.get("PatientBirthDate")),
            sex=_sex(ds.get("PatientSex")),
            admission_id=_text(ds, "AdmissionID"),
            admission_issuer=_text(admission_issuer, "LocalNamespaceEntityID"),
            admission_issuer_uid=universal_id(admission_issuer),
            scheduled_start=_datetime(ds.get("ScheduledProcedureStepStartDateTime")),
            station_code=_text(station, "CodeValue"),
            label=_text(ds, "WorklistLabel"),
            description=_text(ds, "ProcedureStepLabel") or _text(code, "CodeMeaning"),
            priority=_text(ds, "ScheduledProcedureStepPriority"),
        )

    def to_context(self) -> ContextIn:
        """The capture context of this workitem (its patient and its encounter)."""
        if not self.patient_id:
            raise WorklistError(f"worklist item {self.uid} has no Patient ID; it cannot be used")
        encounter = None
        if self.admission_id or self.description or self.scheduled_start:
            encounter = EncounterIn(
                admission_id=self.admission_id,
                issuer=_issuer(self.admission_issuer, self.admission_issuer_uid),
                description=self.description[:64] if self.description else None,
                started_at=self.scheduled_start,
            )
        return ContextIn(
            patient=PatientIn(
                id=self.patient_id,
                issuer=_issuer(self.patient_issuer, self.patient_issuer_uid),
                name=self._name(),
                birth_date=self.birth_date,
                sex=self.sex,
            ),
            encounter=encounter,
        )

    def _name(self) -> NameIn | None:
        if not self.family_name:
            return None
        return NameIn(
            family=self.family_name,
            given=self.given_name or "",
            middle=self.middle_name,
            prefix=self.name_prefix,
            suffix=self.name_suffix,
        )


def universal_id(item: Dataset) -> str | None:
    """An HD's Universal Entity ID (0040,0032), an ``urn:oid:`` URI read as its bare OID.

    With Universal Entity ID Type (0040,0033) ISO the value is an OID already; a URI of the
    form ``urn:oid:1.2.3`` (RFC 3001) names the same ISO object, so both are kept as ``1.2.3``
    and compare equal (``capture_api.capture.same_authority``).
    """
    value = _text(item, "UniversalEntityID")
    if value and value.lower().startswith("urn:oid:"):
        return value[len("urn:oid:") :]
    return value


# --- DICOM JSON (PS3.18 F.2) ------------------------------------------------------------------


def to_json(*datasets: Dataset) -> bytes:
    """A DICOM JSON array (F.2.1) whose objects keep their attributes in tag order (F.2.2).

    Tags are eight uppercase hex digits, so ascending lexicographic order is tag order; the
    order is applied at every level, inside sequence items too.
    """
    return json.dumps([ds.to_json_dict() for ds in datasets], sort_keys=True).encode()


def from_json(body: Any) -> list[Dataset]:
    """The datasets of a DICOM JSON body (one object, or an array of them)."""
    items = body if isinstance(body, list) else [body]
    try:
        return [Dataset.from_json(item) for item in items if isinstance(item, dict)]
    except (ValueError, TypeError, KeyError) as exc:
        raise WorklistError(f"the worklist answered invalid DICOM JSON ({exc})") from exc


# --- what we write -----------------------------------------------------------------------------


def completion_update(
    current: Dataset,
    instances: Sequence[ProducedInstance],
    retrieval: Retrieval,
    started_at: dt.datetime | None,
) -> Dataset:
    """The Update that meets COMPLETED's Final State requirements (Table CC.2.5-3 "P")."""
    now = dt.datetime.now().astimezone()
    performed = Dataset()
    performed.PerformedProcedureStepStartDateTime = dicom_dt(started_at or now)
    performed.PerformedProcedureStepEndDateTime = dicom_dt(now)
    if "ScheduledStationNameCodeSequence" in current:
        performed.PerformedStationNameCodeSequence = current.ScheduledStationNameCodeSequence
    if "ScheduledWorkitemCodeSequence" in current:
        performed.PerformedWorkitemCodeSequence = current.ScheduledWorkitemCodeSequence
    if "ProcedureStepLabel" in current:
        performed.PerformedProcedureStepDescription = current.ProcedureStepLabel
    performed.OutputInformationSequence = output_items(instances, retrieval)
    update = Dataset()
    update.UnifiedProcedureStepPerformedProcedureSequence = [performed]
    return update


def output_items(instances: Sequence[ProducedInstance], retrieval: Retrieval) -> list[Dataset]:
    """One Output Information Sequence item per series (PS3.3 Table 10-3b).

    Retrieval sequences, as the archive offers them (at least one is required, 1C):
    WADO-RS Retrieval Sequence (0040,E025) > Retrieve URL (0008,1190) of the series; DICOM
    Retrieval Sequence (0040,E021) > Retrieve AE Title (0008,0054); DICOM Media Retrieval
    Sequence (0040,E022) > Storage Media File-Set ID (0088,0130) and UID (0088,0140).
    """
    if not retrieval.offered:
        raise WorklistError(
            "the archive offers no way to retrieve the photos (no WADO-RS URL, AE title or "
            "File-set): set CAPTURE_WADO_URL or CAPTURE_ARCHIVE_RETRIEVE_AET"
        )
    series: dict[tuple[str, str], list[ProducedInstance]] = {}
    for instance in instances:
        series.setdefault((instance.study_uid, instance.series_uid), []).append(instance)
    return [
        _output_item(study_uid, series_uid, members, retrieval)
        for (study_uid, series_uid), members in series.items()
    ]


def _output_item(
    study_uid: str, series_uid: str, members: list[ProducedInstance], retrieval: Retrieval
) -> Dataset:
    item = Dataset()
    item.TypeOfInstances = "DICOM"
    item.StudyInstanceUID = study_uid
    item.SeriesInstanceUID = series_uid
    item.ReferencedSOPSequence = [_sop(member) for member in members]
    if retrieval.ae_title:
        item.DICOMRetrievalSequence = [_dataset(RetrieveAETitle=retrieval.ae_title)]
    if retrieval.file_set_uid:
        item.DICOMMediaRetrievalSequence = [
            _dataset(
                StorageMediaFileSetID=retrieval.file_set_id or "",
                StorageMediaFileSetUID=retrieval.file_set_uid,
            )
        ]
    if retrieval.wado_rs_base:
        url = f"{retrieval.wado_rs_base.rstrip('/')}/studies/{study_uid}/series/{series_uid}"
        item.WADORSRetrievalSequence = [_dataset(RetrieveURL=url)]
    return item


def cancel_update(
    current: Dataset,
    reason: Any,
    text: str,
    instances: Sequence[ProducedInstance] = (),
    retrieval: Retrieval | None = None,
) -> Dataset:
    """The Update that meets CANCELED's Final State requirements (Table CC.2.5-3 "X").

    The progress item keeps what the performer wrote before (an N-SET replaces the whole
    sequence). Photos already archived are listed too (PS3.17 GGG.3: a partly done step
    records its output and is CANCELED).
    """
    progress = Dataset()
    previous = _item(current, "ProcedureStepProgressInformationSequence")
    for element in previous:
        progress.add(element)
    progress.ProcedureStepCancellationDateTime = dicom_dt(dt.datetime.now().astimezone())
    progress.ProcedureStepDiscontinuationReasonCodeSequence = [
        _dataset(
            CodeValue=reason.value,
            CodingSchemeDesignator=reason.scheme_designator,
            CodeMeaning=reason.meaning,
        )
    ]
    progress.ReasonForCancellation = text
    update = Dataset()
    update.ProcedureStepProgressInformationSequence = [progress]
    if instances and retrieval is not None and retrieval.offered:
        performed = Dataset()
        performed.OutputInformationSequence = output_items(instances, retrieval)
        update.UnifiedProcedureStepPerformedProcedureSequence = [performed]
    return update


# --- helpers ------------------------------------------------------------------------------------


def dicom_dt(value: dt.datetime) -> str:
    """A DICOM DT with microseconds and UTC offset (PS3.5 Table 6.2-1)."""
    return value.strftime("%Y%m%d%H%M%S.%f%z")


def _dataset(**attributes: str) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def _sop(instance: ProducedInstance) -> Dataset:
    return _dataset(
        ReferencedSOPClassUID=instance.sop_class_uid,
        ReferencedSOPInstanceUID=instance.sop_instance_uid,
    )


def _item(ds: Dataset, keyword: str) -> Dataset:
    sequence = ds.get(keyword)
    return sequence[0] if sequence else Dataset()


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    return str(value).strip() or None


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return DA(str(value))
    except ValueError:
        return None


def _datetime(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return DT(str(value))
    except ValueError:
        return None


def _sex(value: Any) -> Sex | None:
    try:
        return Sex(str(value)) if value else None
    except ValueError:
        return None


def _issuer(namespace: str | None, universal: str | None) -> IssuerIn | None:
    if not namespace and not universal:
        return None
    return IssuerIn(namespace=namespace, universal_id=universal)
