"""A patient's lesions (L1, L2, ...): pinned on the phone, kept by capture, found again in
the archive.

``LesionBook`` answers for one patient (id + issuer, the context's): ``pin`` records a new
lesion at a spot of the body map (a new Tracking UID, the next number); ``known`` lists the
patient's lesions, after adopting those the archive's photos name and the database does not
know (pinned on another capture install, or before a fresh install: every photo of a lesion
carries its Tracking ID/UID and pin, ``capture_api.encode.lesion_block``). So the next visit,
on any device and any install in front of the same archive, shows the same lesions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from capture_api.capture.anatomy import Laterality, get_site
from capture_api.capture.lesions import DESCRIPTION_MAX, LesionPin, label_number
from capture_api.capture.patient import check_text
from capture_api.capture.schemas import PatientIn
from capture_api.deliver.archive import Archive
from capture_api.encode.uids import derived_uid
from capture_api.exceptions import InvalidMetadata
from capture_api.review.timeline import TIMELINE_LIMIT, issuer_of
from capture_api.store import lesions
from capture_api.store.db import Database
from capture_api.store.records import LesionRecord


@dataclass(frozen=True)
class PinRequest:
    """A pin the nurse dropped: where on the map, the coded site under it, optional words."""

    pin: LesionPin
    body_site: str | None = None
    laterality: str | None = None
    description: str | None = None


class LesionBook:
    """One patient's lesions, in the database and in the archive."""

    def __init__(
        self, archive: Archive, engine: Database, patient: PatientIn, uid_root: str | None
    ) -> None:
        self.archive = archive
        self.engine = engine
        self.patient = patient
        self.issuer = issuer_of(patient)
        self.uid_root = uid_root

    def known(self) -> list[LesionRecord]:
        """The patient's lesions by number, the archive's own adopted first."""
        self.adopt_from_archive()
        return lesions.for_patient(self.engine, self.patient.id, self.issuer)

    def adopt_from_archive(self) -> int:
        """Record the lesions the archive's photos name that the database does not know."""
        priors = self.archive.find_priors(self.patient.id, self.issuer, None, TIMELINE_LIMIT)
        ours = lesions.lesions_by_sop_uid(self.engine, (p.ref.sop_instance_uid for p in priors))
        foreign = [p for p in priors if p.ref.sop_instance_uid not in ours]
        if not foreign:
            return 0
        marks = self.archive.lesions([p.ref for p in foreign])
        found: dict[str, lesions.NewLesion] = {}
        for prior in reversed(foreign):  # oldest first: the first photo's pin is the lesion's
            mark = marks.get(prior.ref.sop_instance_uid)
            if mark is None or mark.tracking_uid in found:
                continue
            found[mark.tracking_uid] = lesions.NewLesion(
                tracking_uid=mark.tracking_uid,
                description=mark.description,
                view=mark.pin.view if mark.pin else None,
                x=mark.pin.x if mark.pin else None,
                y=mark.pin.y if mark.pin else None,
                body_site_code=prior.body_site_code,
                laterality=prior.laterality if prior.laterality in ("L", "R", "B") else None,
                number=label_number(mark.tracking_id),
                label=mark.tracking_id if label_number(mark.tracking_id) is None else None,
                source="archive",
            )
        return lesions.adopt(self.engine, self.patient.id, self.issuer, found.values())

    def pin(self, request: PinRequest, context_id: str) -> LesionRecord:
        """A new lesion of the patient at the pin: the next number, a new Tracking UID."""
        description = (request.description or "").strip() or None
        if description and len(description) > DESCRIPTION_MAX:
            raise InvalidMetadata(
                f"the lesion's description is longer than {DESCRIPTION_MAX} characters"
            )
        check_text("the lesion's description", description)
        side = None
        if request.body_site:
            site = get_site(request.body_site)
            if request.laterality:
                side = Laterality.parse(request.laterality).value
            if site.paired and side is None:
                raise InvalidMetadata(
                    f"{site.meaning} is on one side of the body: say which side the lesion is on"
                )
        self.adopt_from_archive()  # the archive's numbers first: a new L3 never clashes
        return lesions.add(
            self.engine,
            self.patient.id,
            self.issuer,
            lesions.NewLesion(
                tracking_uid=derived_uid(self.uid_root, "lesion", uuid.uuid4().hex),
                description=description,
                view=request.pin.view,
                x=request.pin.x,
                y=request.pin.y,
                body_site_code=request.body_site,
                laterality=side,
                context_id=context_id,
            ),
        )
