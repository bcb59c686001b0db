"""Encounter worklist over UPS-RS (DICOM PS3.18 chapter 11; UPS behaviour in PS3.4 Annex CC).

The IHE Encounter-Based Imaging Workflow lets a lightweight modality (this service) find the
patient and visit to photograph on a worklist instead of having them typed in:

1. ``today()`` runs the Search Transaction (PS3.18 11.9) for today's SCHEDULED workitems of
   our station: ``ScheduledProcedureStepStartDateTime`` range (C-FIND range matching, PS3.4
   C.2.2.2.5), ``ProcedureStepState=SCHEDULED``, ``ScheduledStationNameCodeSequence.CodeValue``
   and/or ``WorklistLabel``; 204 means an empty worklist.
2. ``claim()`` takes ownership with Change Workitem State (PS3.18 11.7) to IN PROGRESS and a
   new Transaction UID (0008,1195) that only we know (PS3.4 CC.1.1). A second device gets 409
   and ``WorkitemTaken``.
3. ``complete()`` records what was produced with Update Workitem (PS3.18 11.6, N-SET):
   Unified Procedure Step Performed Procedure Sequence (0074,1216) > Output Information
   Sequence (0040,4033) listing the stored instances; then Change State to COMPLETED.
   ``cancel()`` releases a claimed item as CANCELED.

A workitem becomes a capture context with ``Workitem.to_context()``: patient (Patient ID,
Issuer of Patient ID, name, birth date, sex) and encounter (Admission ID (0038,0010) and
Issuer of Admission ID Sequence (0038,0014), the EBIW visit identifier).

Bodies are DICOM JSON (PS3.18 F.2, ``application/dicom+json``) read and written with pydicom.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydicom import Dataset
from pydicom.uid import generate_uid
from pydicom.valuerep import DA, DT

from capture_api.capture.patient import Sex
from capture_api.capture.schemas import ContextIn, EncounterIn, IssuerIn, NameIn, PatientIn
from capture_api.exceptions import CaptureError

MEDIA_TYPE = "application/dicom+json"
#: VL Photographic Image Storage (PS3.4 B.5), the SOP Class of every capture.
VL_PHOTOGRAPHIC_IMAGE = "1.2.840.10008.5.1.4.1.1.77.1.4"

SCHEDULED = "SCHEDULED"
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
CANCELED = "CANCELED"

#: Attributes we ask for on top of the UPS return keys (PS3.18 11.9.1.2 includefield):
#: Admission ID and Issuer of Admission ID Sequence (Visit Identification, IHE EBIW).
_INCLUDE_FIELDS = "00380010,00380014,00741204,00404018"

TAKEN_MESSAGE = (
    "this encounter is already being photographed on another device "
    "(the worklist item is in progress)"
)


class WorklistError(CaptureError):
    """The worklist refused a request; the message says what it answered."""


class WorklistUnavailable(WorklistError):
    """The worklist could not be reached or failed (5xx, timeout, network): try again later."""


class WorkitemNotFound(WorklistError):
    """The worklist has no workitem with that UID (it may have been removed)."""


class WorkitemTaken(WorklistError):
    """Another performer has claimed the workitem (Change State answered 409)."""


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
        """The patient's name as a banner shows it ("Family, Given")."""
        return ", ".join(p for p in (self.family_name, self.given_name) if p) or "(no name)"

    @classmethod
    def from_dataset(cls, ds: Dataset) -> Workitem:
        """Read a workitem from its DICOM dataset (missing attributes become ``None``)."""
        name = ds.get("PatientName")
        qualifiers = _item(ds, "IssuerOfPatientIDQualifiersSequence")
        admission_issuer = _item(ds, "IssuerOfAdmissionIDSequence")
        station = _item(ds, "ScheduledStationNameCodeSequence")
        code = _item(ds, "ScheduledWorkitemCodeSequence")
        return cls(
            uid=str(ds.get("SOPInstanceUID", "")),
            state=str(ds.get("ProcedureStepState", "")),
            patient_id=_text(ds, "PatientID"),
            patient_issuer=_text(ds, "IssuerOfPatientID"),
            patient_issuer_uid=_text(qualifiers, "UniversalEntityID"),
            family_name=(name.family_name or None) if name else None,
            given_name=(name.given_name or None) if name else None,
            birth_date=_date(ds.get("PatientBirthDate")),
            sex=_sex(ds.get("PatientSex")),
            admission_id=_text(ds, "AdmissionID"),
            admission_issuer=_text(admission_issuer, "LocalNamespaceEntityID"),
            admission_issuer_uid=_text(admission_issuer, "UniversalEntityID"),
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
        patient_issuer = _issuer(self.patient_issuer, self.patient_issuer_uid)
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
                issuer=patient_issuer,
                name=(
                    NameIn(family=self.family_name, given=self.given_name or "")
                    if self.family_name
                    else None
                ),
                birth_date=self.birth_date,
                sex=self.sex,
            ),
            encounter=encounter,
        )


class WorklistClient:
    """A UPS-RS user agent for one station's encounter worklist (PS3.18 chapter 11).

    ``base_url`` is the DICOMweb base (``.../dicom-web``); the client adds ``/workitems``.
    ``aet`` is our AE title, sent in the User-Agent (UPS-RS uses it only for subscriptions).
    """

    def __init__(
        self,
        base_url: str,
        *,
        station_code: str | None = None,
        label: str | None = None,
        aet: str = "CAPTURE",
        client: httpx.Client | None = None,
        timeout: float = 15,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.station_code = station_code
        self.label = label
        self.aet = aet
        self._own = client is None
        self._http = client or httpx.Client(timeout=timeout)
        self._headers = {"Accept": MEDIA_TYPE, "User-Agent": f"capture-api (AE {aet})"}

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> WorklistClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transactions -----------------------------------------------------------------------

    def search(self, params: Sequence[tuple[str, str]]) -> list[Workitem]:
        """Search Transaction (PS3.18 11.9): the matching workitems; 204 means none."""
        response = self._send("GET", "/workitems", params=list(params))
        if response.status_code == 204:
            return []
        self._check(response, "search the worklist")
        return [Workitem.from_dataset(ds) for ds in _datasets(response)]

    def today(self, now: dt.datetime | None = None) -> list[Workitem]:
        """Today's SCHEDULED workitems of our station (and label), earliest first.

        "Today" is the calendar day of ``now`` (default: the local time), sent as a DT range
        with its UTC offset (PS3.4 C.2.2.2.5) so the worklist does not guess our time zone.
        """
        if now is None or now.tzinfo is None:
            now = (now or dt.datetime.now()).astimezone()
        start = dt.datetime.combine(now.date(), dt.time.min, tzinfo=now.tzinfo)
        end = dt.datetime.combine(now.date(), dt.time.max, tzinfo=now.tzinfo)
        params = [
            ("ScheduledProcedureStepStartDateTime", f"{_dt(start)}-{_dt(end)}"),
            ("ProcedureStepState", SCHEDULED),
        ]
        if self.station_code:
            params.append(("ScheduledStationNameCodeSequence.CodeValue", self.station_code))
        if self.label:
            params.append(("WorklistLabel", self.label))
        params.append(("includefield", _INCLUDE_FIELDS))
        items = self.search(params)
        return sorted(items, key=lambda w: (w.scheduled_start or end, w.uid))

    def get(self, uid: str) -> Workitem:
        """Retrieve Transaction (PS3.18 11.5)."""
        return Workitem.from_dataset(self._retrieve(uid))

    def claim(self, uid: str) -> str:
        """Take the workitem (SCHEDULED -> IN PROGRESS); returns our new Transaction UID.

        Keep the Transaction UID: it is the only proof of ownership (PS3.4 CC.1.1) and is
        needed to complete or cancel. Raises ``WorkitemTaken`` when another device has it.
        """
        transaction_uid = str(generate_uid())
        self._change_state(uid, transaction_uid, IN_PROGRESS)
        return transaction_uid

    def complete(
        self,
        uid: str,
        transaction_uid: str,
        instances: Iterable[ProducedInstance],
        *,
        started_at: dt.datetime | None = None,
    ) -> None:
        """Record the produced instances (Update, PS3.18 11.6), then COMPLETED (11.7).

        The Performed Procedure Sequence carries the start/end DateTime the final-state
        requirements ask for (PS3.4 CC.2.5.1.3), the performed station and workitem codes
        copied from the scheduled ones, and the Output Information Sequence (0040,4033).
        Completing an item that is already COMPLETED is a no-op.
        """
        current = self._retrieve(uid)
        if str(current.get("ProcedureStepState", "")) == COMPLETED:
            return
        update = _performed(current, list(instances), started_at)
        self._update(uid, transaction_uid, update)
        self._change_state(uid, transaction_uid, COMPLETED)

    def cancel(self, uid: str, transaction_uid: str) -> None:
        """Release a claimed workitem as CANCELED (Change State, PS3.18 11.7)."""
        self._change_state(uid, transaction_uid, CANCELED)

    # --- plumbing ---------------------------------------------------------------------------

    def _retrieve(self, uid: str) -> Dataset:
        response = self._send("GET", f"/workitems/{uid}")
        if response.status_code == 404:
            raise WorkitemNotFound(f"the worklist has no item {uid}")
        self._check(response, "read the worklist item")
        found = _datasets(response)
        if not found:
            raise WorklistError(f"the worklist answered an empty body for item {uid}")
        return found[0]

    def _update(self, uid: str, transaction_uid: str, ds: Dataset) -> None:
        response = self._send(
            "POST",
            f"/workitems/{uid}?{transaction_uid}",
            content=json.dumps([ds.to_json_dict()]).encode(),
        )
        if response.status_code == 404:
            raise WorkitemNotFound(f"the worklist has no item {uid}")
        self._check(response, "record the photos on the worklist item")

    def _change_state(self, uid: str, transaction_uid: str, state: str) -> None:
        ds = Dataset()
        ds.TransactionUID = transaction_uid
        ds.ProcedureStepState = state
        response = self._send(
            "PUT", f"/workitems/{uid}/state", content=json.dumps([ds.to_json_dict()]).encode()
        )
        if response.status_code == 404:
            raise WorkitemNotFound(f"the worklist has no item {uid}")
        if response.status_code == 409 and state == IN_PROGRESS:
            raise WorkitemTaken(TAKEN_MESSAGE)
        self._check(response, f"set the worklist item {state}")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(self._headers)
        if "content" in kwargs:
            headers["Content-Type"] = MEDIA_TYPE
        try:
            response = self._http.request(
                method, f"{self.base_url}{path}", headers=headers, **kwargs
            )
        except httpx.TransportError as exc:
            raise WorklistUnavailable(
                f"the worklist at {self.base_url} cannot be reached ({type(exc).__name__}); "
                "try again in a moment"
            ) from exc
        if response.status_code >= 500:
            raise WorklistUnavailable(
                f"the worklist failed (HTTP {response.status_code}); try again in a moment"
            )
        return response

    @staticmethod
    def _check(response: httpx.Response, doing: str) -> None:
        if response.is_success:
            return
        warnings = "; ".join(_warning_text(w) for w in response.headers.get_list("Warning"))
        reason = warnings or response.reason_phrase
        raise WorklistError(
            f"could not {doing}: the worklist answered {response.status_code} ({reason})"
        )


# --- DICOM helpers ------------------------------------------------------------------------------


def _datasets(response: httpx.Response) -> list[Dataset]:
    try:
        body = response.json()
    except ValueError as exc:
        raise WorklistError("the worklist answered something that is not DICOM JSON") from exc
    items = body if isinstance(body, list) else [body]
    try:
        return [Dataset.from_json(item) for item in items if isinstance(item, dict)]
    except (ValueError, TypeError, KeyError) as exc:
        raise WorklistError(f"the worklist answered invalid DICOM JSON ({exc})") from exc


def _warning_text(value: str) -> str:
    """``299 agent: text`` -> ``text`` (PS3.18 8.4 Warning header)."""
    parts = value.split(" ", 2)
    return parts[2] if len(parts) == 3 and parts[0].isdigit() else value


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


def _issuer(namespace: str | None, universal_id: str | None) -> IssuerIn | None:
    if not namespace and not universal_id:
        return None
    return IssuerIn(namespace=namespace, universal_id=universal_id)


def _dt(value: dt.datetime) -> str:
    """A DICOM DT with microseconds and UTC offset (PS3.5 Table 6.2-1)."""
    return value.strftime("%Y%m%d%H%M%S.%f%z")


def _performed(
    current: Dataset, instances: list[ProducedInstance], started_at: dt.datetime | None
) -> Dataset:
    """The Unified Procedure Step Performed Procedure Sequence item for an Update."""
    now = dt.datetime.now().astimezone()
    performed = Dataset()
    performed.PerformedProcedureStepStartDateTime = _dt(started_at or now)
    performed.PerformedProcedureStepEndDateTime = _dt(now)
    if "ScheduledStationNameCodeSequence" in current:
        performed.PerformedStationNameCodeSequence = current.ScheduledStationNameCodeSequence
    if "ScheduledWorkitemCodeSequence" in current:
        performed.PerformedWorkitemCodeSequence = current.ScheduledWorkitemCodeSequence
    if "ProcedureStepLabel" in current:
        performed.PerformedProcedureStepDescription = current.ProcedureStepLabel
    outputs = []
    series: dict[tuple[str, str], list[ProducedInstance]] = {}
    for instance in instances:
        series.setdefault((instance.study_uid, instance.series_uid), []).append(instance)
    for (study_uid, series_uid), members in series.items():
        output = Dataset()
        output.TypeOfInstances = "DICOM"
        output.StudyInstanceUID = study_uid
        output.SeriesInstanceUID = series_uid
        refs = []
        for member in members:
            ref = Dataset()
            ref.ReferencedSOPClassUID = member.sop_class_uid
            ref.ReferencedSOPInstanceUID = member.sop_instance_uid
            refs.append(ref)
        output.ReferencedSOPSequence = refs
        outputs.append(output)
    performed.OutputInformationSequence = outputs
    update = Dataset()
    update.UnifiedProcedureStepPerformedProcedureSequence = [performed]
    return update
