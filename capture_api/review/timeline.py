"""The wound-care timeline: one patient's photos of one coded site, across encounters.

Photos come from the archive (``Archive.find_priors``, the same query as the priors view),
so a photo is on the timeline once the archive shows it (a capture still in the outbox is
not). Each photo gets three things the archive query does not give:

* its **sensitivity level**, applied by ``capture_api.privacy.visibility`` for the user's roles:

  - ``normal``: shown;
  - ``restricted``: listed with ``blurred=True``; its images are blurred here, on the server,
    and the clear pixels are never sent (except by the audited break-the-glass unblur); its
    note and series description are withheld too (``TimelineItem.note``);
  - ``very-restricted``: for users without the ``sensitive-viewer`` role not listed, and its
    image and comparison are refused as unknown; for sensitive viewers listed, blurred.

  Where the level comes from, in order: our database (``CaptureRecord.sensitivity_level``,
  by SOP Instance UID: every photo this service captured); else the instance's private block
  (group 0011, creator ``CAPTURE SENSITIVITY 1``, element xx10: HL7 Confidentiality code,
  see ``capture_api.encode.vl_photo``) as the archive reports it (``Archive.labels``: the
  local File-set's index, which kept the block when the instance was stored, or a DICOMweb
  server's series metadata); an instance without that block was not marked by anyone, and
  is ``normal``. An archive that cannot say (a DICOMweb server without the series metadata
  resource, or whose metadata leaves the instance or its private tags out) gives ``normal``
  too. An instance the archive should hold but cannot answer for (not in the local index,
  its file vanished, a metadata request failing), and a level or code we do not know, are
  treated as ``restricted``: listed, and only ever served blurred (``review.images``).

* its **encounter**: Admission ID and description from the context it was captured in (our
  database), else the instance's Admission ID (0038,0010) and Study Description (0008,1030).

* its **moment**: the acquisition date-time the archive reported, parsed as a DICOM DT; the
  timeline is ordered by it, oldest first (photos whose moment is unknown come last).

The priors view asks the same class (``recent``, ``locate``), so both views make the same
decision for the same photo. Photos capture rejected (IHE IOCM, ``capture_api.correct``) are
left out of every view here, whatever the archive does with the rejection note. Nothing here
is cached: every request asks the archive and the database again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydicom.valuerep import DT

from capture_api.capture.schemas import EncounterIn, PatientIn
from capture_api.capture.sensitivity import SensitivityLevel
from capture_api.deliver.archive import Archive, InstanceRef, PriorImage
from capture_api.deliver.instance_labels import InstanceLabels
from capture_api.privacy.visibility import Visibility
from capture_api.store import captures, lesions, rejections
from capture_api.store.db import Database
from capture_api.store.records import ContextRecord

#: How many photos one timeline asks the archive for (newest first: the oldest drop out).
TIMELINE_LIMIT = 1000

#: HL7 v3 Confidentiality (2.16.840.1.113883.5.25) -> our level. U, L, M and N are all
#: "may be shown"; R and V are ours; anything else is handled as restricted (fail closed).
_CONFIDENTIALITY = {
    "U": SensitivityLevel.NORMAL,
    "L": SensitivityLevel.NORMAL,
    "M": SensitivityLevel.NORMAL,
    "N": SensitivityLevel.NORMAL,
    "R": SensitivityLevel.RESTRICTED,
    "V": SensitivityLevel.VERY_RESTRICTED,
}


# --- the patient ------------------------------------------------------------------------------


def patient_of(context: ContextRecord) -> PatientIn:
    """The patient a context was opened for."""
    return PatientIn.model_validate_json(context.patient_json)


def issuer_of(patient: PatientIn) -> str | None:
    """The issuer the archive is asked with: the local namespace, else the universal ID."""
    if patient.issuer is None:
        return None
    return patient.issuer.namespace or patient.issuer.universal_id


# --- what the archive query does not give -----------------------------------------------------


@dataclass(frozen=True)
class Encounter:
    """The encounter (study) a photo belongs to, as far as it is known."""

    admission_id: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Extras:
    """Sensitivity and encounter of one instance, as a source (database, header) says."""

    sensitivity: SensitivityLevel
    encounter: Encounter


@dataclass(frozen=True)
class TimelineItem:
    """One photo on the timeline, with its privacy decision made."""

    prior: PriorImage
    moment: dt.datetime | None
    sensitivity: SensitivityLevel
    encounter: Encounter

    @property
    def ref(self) -> InstanceRef:
        return self.prior.ref

    @property
    def blurred(self) -> bool:
        """Restricted and very-restricted photos are only ever served blurred."""
        return Visibility.blurred(self.sensitivity)

    @property
    def note(self) -> str | None:
        """The capture note (Image Comments), unless the photo is served blurred: a note says
        what the photo shows, so it is as private as the pixels (issue 14, finding 8)."""
        return None if self.blurred else self.prior.comment

    @property
    def description(self) -> str | None:
        """The Series Description, withheld like the note when the photo is blurred."""
        return None if self.blurred else self.prior.description


def level_from_code(code: str | None, level: str | None = None) -> SensitivityLevel:
    """The level of a private block: its Confidentiality code, else its level text.

    A block that names neither, or names something we do not know, is restricted.
    """
    if code:
        return _CONFIDENTIALITY.get(code.strip().upper(), SensitivityLevel.RESTRICTED)
    try:
        return SensitivityLevel((level or "").strip())
    except ValueError:
        return SensitivityLevel.RESTRICTED


def archive_extras(archive: Archive, refs: Sequence[InstanceRef]) -> dict[str, Extras]:
    """Extras of instances we did not capture, as the archive reports them, by SOP UID.

    A ref the archive leaves out is one it cannot say anything about (the caller shows it
    normal); ``None`` labels, an instance it should hold but cannot answer for, restricted.
    """
    return {uid: extras_from_labels(labels) for uid, labels in archive.labels(refs).items()}


def extras_from_labels(labels: InstanceLabels | None) -> Extras:
    """Sensitivity and encounter from an instance's labels (``None``: restricted)."""
    if labels is None:
        return Extras(SensitivityLevel.RESTRICTED, Encounter())
    level = (
        level_from_code(labels.confidentiality, labels.level)
        if labels.marked
        else SensitivityLevel.NORMAL  # nobody marked it
    )
    return Extras(
        sensitivity=level,
        encounter=Encounter(admission_id=labels.admission_id, description=labels.study_description),
    )


def database_extras(engine: Database, sop_uids: Iterable[str]) -> dict[str, Extras]:
    """Extras of the photos this service captured, by SOP Instance UID."""
    found: dict[str, Extras] = {}
    for capture, context in captures.with_contexts_by_sop_uid(engine, sop_uids):
        if capture.sop_instance_uid is None:
            continue
        try:
            level = SensitivityLevel(capture.sensitivity_level)
        except ValueError:
            level = SensitivityLevel.RESTRICTED  # a value we do not know: never clear
        found[capture.sop_instance_uid] = Extras(
            sensitivity=level, encounter=_encounter_of(context)
        )
    return found


def _encounter_of(context: ContextRecord | None) -> Encounter:
    if context is None or not context.encounter_json:
        return Encounter()
    encounter = EncounterIn.model_validate_json(context.encounter_json)
    return Encounter(admission_id=encounter.admission_id, description=encounter.description)


# --- time -------------------------------------------------------------------------------------


def parse_acquired(value: str | None) -> dt.datetime | None:
    """A DICOM DT (or DA+TM run together) as a datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        moment = DT(value.strip())
    except (ValueError, TypeError):
        return None
    return dt.datetime(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
        tzinfo=moment.tzinfo,
    )


def _sort_key(item: TimelineItem) -> tuple[int, dt.datetime, str]:
    """Oldest first; an offset makes the comparison in UTC; unknown moments last."""
    moment = item.moment
    if moment is None:
        return (1, dt.datetime.min, item.ref.sop_instance_uid)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return (0, moment, item.ref.sop_instance_uid)


def days_between(a: TimelineItem, b: TimelineItem) -> int | None:
    """Calendar days between the two photos' local acquisition dates (never negative)."""
    if a.moment is None or b.moment is None:
        return None
    return abs((b.moment.date() - a.moment.date()).days)


# --- the timeline -----------------------------------------------------------------------------


class Timeline:
    """One patient's photos in the archive, with sensitivity applied for one user's roles.

    ``visibility`` defaults to a user without sensitive roles (fail closed).
    """

    def __init__(
        self,
        archive: Archive,
        engine: Database,
        patient: PatientIn,
        visibility: Visibility | None = None,
    ) -> None:
        self.archive = archive
        self.engine = engine
        self.patient = patient
        self.visibility = visibility or Visibility()

    def items(self, body_site: str, laterality: str | None = None) -> list[TimelineItem]:
        """Photos of the coded site (and side), oldest first; those not listed left out."""
        priors = [
            p
            for p in self._priors(body_site)
            if p.body_site_code == body_site and (laterality is None or p.laterality == laterality)
        ]
        items = self._decide(priors)
        items.sort(key=_sort_key)
        return items

    def lesion_items(self, tracking_uid: str) -> list[TimelineItem]:
        """Photos of one lesion (its Tracking UID), clinical and dermoscopic, oldest first.

        Which lesion a photo shows: our database for the photos this service captured, else
        the instance's Tracking UID as the archive reports it (``Archive.lesions``).
        """
        priors = self._priors(None)
        shows = lesions.lesions_by_sop_uid(self.engine, (p.ref.sop_instance_uid for p in priors))
        foreign = [p.ref for p in priors if p.ref.sop_instance_uid not in shows]
        if foreign:
            marks = self.archive.lesions(foreign)
            shows |= {uid: mark.tracking_uid for uid, mark in marks.items()}
        mine = [p for p in priors if shows.get(p.ref.sop_instance_uid) == tracking_uid]
        items = self._decide(mine)
        items.sort(key=_sort_key)
        return items

    def find(self, refs: Sequence[InstanceRef | str]) -> list[TimelineItem | None]:
        """Each photo, if it is on one of this patient's timelines (coded site, listed).

        A ``str`` is a SOP Instance UID; an ``InstanceRef`` must match all three UIDs.
        """
        priors = {p.ref.sop_instance_uid: p for p in self._priors(None) if p.body_site_code}
        return self._match(priors, refs)

    def recent(self, body_site: str | None, limit: int) -> list[TimelineItem]:
        """The priors view: the patient's photos newest first (coded or not), those listed."""
        return self._decide(self._priors(body_site, limit))

    def locate(self, ref: InstanceRef) -> TimelineItem | None:
        """Any listed photo of the patient (coded site or not), by all three UIDs."""
        priors = {p.ref.sop_instance_uid: p for p in self._priors(None)}
        (found,) = self._match(priors, [ref])
        return found

    def _priors(self, body_site: str | None, limit: int = TIMELINE_LIMIT) -> list[PriorImage]:
        """The archive's photos of the patient, without the rejected ones (IHE IOCM).

        An archive that honours the KOS rejection note hides them itself; one that does not
        (Orthanc) still lists them, so every view leaves out the instances capture rejected.
        """
        found = self.archive.find_priors(
            self.patient.id, issuer_of(self.patient), body_site, limit=limit
        )
        rejected = rejections.rejected_among(self.engine, (p.ref.sop_instance_uid for p in found))
        return [p for p in found if p.ref.sop_instance_uid not in rejected]

    def _match(
        self, priors: Mapping[str, PriorImage], refs: Sequence[InstanceRef | str]
    ) -> list[TimelineItem | None]:
        matches: list[PriorImage | None] = []
        for ref in refs:
            uid = ref if isinstance(ref, str) else ref.sop_instance_uid
            prior = priors.get(uid)
            if prior is not None and isinstance(ref, InstanceRef) and prior.ref != ref:
                prior = None
            matches.append(prior)
        decided = {i.ref.sop_instance_uid: i for i in self._decide([m for m in matches if m])}
        return [decided.get(m.ref.sop_instance_uid) if m else None for m in matches]

    def _decide(self, priors: Sequence[PriorImage]) -> list[TimelineItem]:
        """Each prior with its sensitivity and encounter; the ones not listed left out."""
        known = database_extras(self.engine, (p.ref.sop_instance_uid for p in priors))
        foreign = [p.ref for p in priors if p.ref.sop_instance_uid not in known]
        if foreign:
            known |= archive_extras(self.archive, foreign)
        items = []
        for prior in priors:
            extras = known.get(prior.ref.sop_instance_uid)
            item = TimelineItem(
                prior=prior,
                moment=parse_acquired(prior.acquired),
                # no extras: the archive cannot say (see the module docstring)
                sensitivity=extras.sensitivity if extras else SensitivityLevel.NORMAL,
                encounter=extras.encounter if extras else Encounter(),
            )
            if self.visibility.listed(item.sensitivity):
                items.append(item)
        return items
