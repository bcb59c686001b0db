"""FHIR R4 Patient/Encounter -> our context (``PatientIn``/``EncounterIn``): who and which visit.

This is the safety-critical step of an EHR launch: a wrong Patient ID or issuer files a photo
in another person's chart. The rules are therefore exact, and every doubt is a refusal
(``InvalidMetadata``) with a message, never a guess:

Patient (DICOM Patient Module, PS3.3 C.7.1.1):

* Patient ID (0010,0020) is the medical record number: the ``Patient.identifier`` whose
  ``system`` is the configured ``mrn_system`` when one is configured (no fallback: the setting
  exists because the type alone is ambiguous at that site), else the identifier typed ``MR``
  in ``http://terminology.hl7.org/CodeSystem/v2-0203`` (R4 patient.html, identifier; HL7 v2
  table 0203). Identifiers with ``use = old`` are ignored. Two different candidate values are
  ambiguous and refused. The FHIR logical id is never used: it is a server's storage key, not
  an identifier other systems (PACS, MPI) know.
* Issuer of Patient ID (0010,0021) with its Qualifiers Sequence (0010,0024), the HL7 v2 HD
  triplet (PS3.3 Table 10-18): the configured ``issuer`` if set, else the MRN's ``system``: an
  ``urn:oid:`` system gives the bare OID (Universal Entity ID Type ISO), any other URI is kept
  as the Universal Entity ID (type URI). ``identifier.assigner.display`` becomes the local
  namespace when it fits LO (64). A system too long for LO is refused, not truncated: a cut
  issuer names a different authority. Set ``issuer_of_patient_id`` for such sites.
* Patient's Name (0010,0010) from the ``official`` HumanName, else the first: family, and the
  given names joined by spaces; without a family the ``text`` goes into the family component.
  Non-ASCII is kept exactly (the encoder writes Specific Character Set ISO_IR 192).
* Patient's Birth Date (0010,0030): only a full date. FHIR allows ``1950`` or ``1950-03``;
  DICOM DA cannot hold a partial date, and inventing a day would be false, so it is empty.
* Patient's Sex (0010,0040): FHIR AdministrativeGender male/female/other -> M/F/O;
  unknown or absent -> empty (Type 2).
* A Patient with ``link.type = replaced-by`` was merged into another record: refused, since
  photos must go to the surviving record (R4 patient.html#links).

Encounter (Patient Study Module C.7.2.2 and General Study C.7.2.1; IHE EBIW, STANDARDS.md 2.1):

* Admission ID (0038,0010) with Issuer of Admission ID Sequence (0038,0014) from
  ``Encounter.identifier``: the one typed ``VN`` (visit number, v2-0203), else ``use =
  official``, else the first; the HL7 v2 mapping PV1-19 -> Admission ID is the same concept.
  An encounter without any identifier has no Admission ID (None): the photos are still filed
  under the patient, and the study date and description still say which visit.
* Study Description (0008,1030, LO 64): "service type, class, location", e.g.
  "Dermatology, ambulatory, Derm clinic", cut at a word boundary to 64.
* Study Date/Time from ``period.start`` when it is a full date-time.
* Encounters ``entered-in-error`` or ``cancelled`` are refused.

Study rule: one DICOM study per encounter and body-site session. A context (one per launch or
worklist claim) owns one Study Instance UID (0020,000D); every photo captured in it belongs to
that study; photos of one body site and side share a series, whose UID is derived from the
study UID, site and side (``capture_api.encode.vl_photo._add_general_series``). A new launch
for the same encounter starts a new context and so a new study; the Admission ID links them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.patient import Patient

from capture_api.capture.patient import LO_MAX, Issuer, PersonName, Sex, check_lo
from capture_api.capture.schemas import EncounterIn, IssuerIn, NameIn, PatientIn
from capture_api.exceptions import InvalidMetadata

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_SEX = {"male": Sex.MALE, "female": Sex.FEMALE, "other": Sex.OTHER}
_SEX_TEXT = {Sex.MALE: "male", Sex.FEMALE: "female", Sex.OTHER: "other"}
_REFUSED_ENCOUNTER_STATUS = frozenset({"entered-in-error", "cancelled"})
#: An OID as DICOM UIDs write it (PS3.5 9.1), the form ``urn:oid:`` URIs carry (RFC 3001).
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


# --- Patient ---------------------------------------------------------------------------------


def patient_in(patient: Patient, *, mrn_system: str | None, issuer: str | None) -> PatientIn:
    """The DICOM patient of a FHIR Patient; ``InvalidMetadata`` when it cannot be exact.

    ``mrn_system`` and ``issuer`` are ``EhrRegistration.mrn_system`` and
    ``.issuer_of_patient_id`` of the EHR the launch came from.
    """
    for link in patient.link or []:
        if link.type == "replaced-by":
            raise InvalidMetadata(
                "the EHR record was merged into another patient record; open the surviving "
                "record in the EHR and launch capture again"
            )
    mrn = _mrn_identifier(patient, mrn_system)
    mrn_value = (mrn.value or "").strip()
    check_lo("the medical record number", mrn_value)
    return PatientIn(
        id=mrn_value,
        issuer=_issuer_from_setting(issuer) if issuer else _issuer_of(mrn, "medical record"),
        name=_name(patient.name or []),
        birth_date=_full_date(patient.birthDate),
        sex=_SEX.get(patient.gender or ""),
    )


def _mrn_identifier(patient: Patient, mrn_system: str | None) -> Identifier:
    current = [i for i in patient.identifier or [] if i.use != "old" and (i.value or "").strip()]
    if mrn_system:
        candidates = [i for i in current if i.system == mrn_system]
        where = f"with system {mrn_system}"
    else:
        candidates = [i for i in current if _typed(i, "MR")]
        where = "of type MR (v2-0203)"
    if not candidates:
        raise InvalidMetadata(
            f"the EHR record has no medical record number (an identifier {where}); capture "
            "cannot file the photos without it: ask the EHR administrator to check the record "
            "or the capture EHR registration (mrn_system)"
        )
    if len({(i.system, (i.value or "").strip()) for i in candidates}) > 1:
        raise InvalidMetadata(
            f"the EHR record has more than one medical record number ({where}); capture cannot "
            "tell which one the archive uses: set mrn_system in the EHR registration"
        )
    return candidates[0]


def _typed(identifier: Identifier, code: str) -> bool:
    codings = identifier.type.coding if identifier.type and identifier.type.coding else []
    return any(c.system == V2_0203 and c.code == code for c in codings)


def _issuer_of(identifier: Identifier, what: str) -> IssuerIn | None:
    """The HD triplet of an identifier: system -> universal id, assigner display -> namespace."""
    universal = _universal_id((identifier.system or "").strip())
    if universal and len(universal) > LO_MAX:
        raise InvalidMetadata(
            f"the {what} issuer {universal!r} is longer than DICOM's {LO_MAX} characters; "
            "configure an issuer_of_patient_id for this EHR"
        )
    display = identifier.assigner.display if identifier.assigner else None
    namespace = display.strip() if display else None
    if namespace and not _fits_lo(namespace):
        namespace = None  # a cut name would be a different namespace; the universal id remains
    if not universal and not namespace:
        return None
    return IssuerIn(namespace=namespace, universal_id=_lo(f"the {what} issuer", universal))


def _universal_id(system: str) -> str | None:
    """``urn:oid:1.2.3`` -> ``1.2.3`` (Issuer infers type ISO); other URIs kept (type URI)."""
    if not system:
        return None
    bare = system.removeprefix("urn:oid:")
    return bare if bare != system and _OID.match(bare) else system


def _issuer_from_setting(text: str) -> IssuerIn:
    """``issuer_of_patient_id``: an OID (bare or ``urn:oid:``), a URI, or a local name."""
    text = text.strip()
    parsed = Issuer.parse(_universal_id(text) or text)  # checks LO 64 as well
    return IssuerIn(namespace=parsed.local_namespace, universal_id=parsed.universal_id)


def _name(names: Sequence[HumanName]) -> NameIn | None:
    if not names:
        return None
    chosen = next((n for n in names if n.use == "official"), names[0])
    family = (chosen.family or "").strip()
    given = " ".join(g.strip() for g in chosen.given or [] if g and g.strip())
    if not family:
        family, given = (chosen.text or "").strip(), ""
    if not family:
        return None
    try:
        PersonName(family, given)  # PN rules: no ^ = \ or control characters, 64 in all
        return NameIn(family=family, given=given)
    except (InvalidMetadata, ValueError) as exc:
        raise InvalidMetadata(
            f"the patient's name in the EHR cannot be written to DICOM as it is: {exc}"
        ) from None


def _full_date(value: object) -> dt.date | None:
    """A full date only; fhir.resources gives partial dates (``1950``) as strings."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


# --- Encounter -------------------------------------------------------------------------------


def encounter_in(encounter: Encounter, *, patient_id: str | None = None) -> EncounterIn:
    """The DICOM visit of a FHIR Encounter.

    ``patient_id`` (the FHIR logical id of the launched Patient), when given, must be the
    Encounter's subject: photos of one patient must never carry another patient's visit.
    """
    if encounter.status in _REFUSED_ENCOUNTER_STATUS:
        raise InvalidMetadata(
            f"the EHR encounter is {encounter.status}; choose the current encounter in the EHR"
        )
    if patient_id is not None:
        subject = encounter.subject.reference if encounter.subject else None
        if subject not in {f"Patient/{patient_id}"} and not (
            subject and subject.endswith(f"/Patient/{patient_id}")
        ):
            raise InvalidMetadata(
                "the EHR encounter belongs to a different patient than the one launched"
            )
    visit = _visit_identifier(encounter.identifier or [])
    admission = _lo("the visit number", (visit.value or "").strip()) if visit else None
    return EncounterIn(
        admission_id=admission or None,
        issuer=_issuer_of(visit, "visit number") if visit and admission else None,
        description=_description(encounter),
        started_at=_full_datetime(encounter.period.start if encounter.period else None),
        unit=_unit(encounter),
    )


def _visit_identifier(identifiers: Sequence[Identifier]) -> Identifier | None:
    current = [i for i in identifiers if i.use != "old" and (i.value or "").strip()]
    return (
        next((i for i in current if _typed(i, "VN")), None)
        or next((i for i in current if i.use == "official"), None)
        or next(iter(current), None)
    )


def _description(encounter: Encounter) -> str | None:
    klass = encounter.class_fhir
    class_text = (klass.display or klass.code) if klass else None
    parts = (_service(encounter), class_text, _location(encounter))
    return word_truncate(_clean(p) for p in parts if p)


def _service(encounter: Encounter) -> str | None:
    service = encounter.serviceType
    if service is None:
        return None
    return service.text or next((c.display for c in service.coding or [] if c.display), None)


def _location(encounter: Encounter) -> str | None:
    return next(
        (
            loc.location.display
            for loc in encounter.location or []
            if loc.location and loc.location.display
        ),
        None,
    )


def _unit(encounter: Encounter) -> str | None:
    """The ward or clinic: the encounter's location, else its service (audit reports)."""
    return word_truncate(
        [_clean(text)] if (text := _location(encounter) or _service(encounter)) else []
    )


def word_truncate(parts: Iterable[str], limit: int = LO_MAX) -> str | None:
    """Join with ", " and cut at the last word boundary that fits ``limit`` (LO, 64)."""
    text = ", ".join(p for p in parts if p)
    if not text:
        return None
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    boundary = max(cut.rfind(" "), cut.rfind(","))
    cut = cut[:boundary] if boundary > 0 else text[:limit]
    return cut.rstrip(" ,;-") or text[:limit]


def _clean(text: str) -> str:
    """LO cannot hold a backslash or control characters (PS3.5 6.2): replace with spaces."""
    return " ".join("".join(" " if c == "\\" or ord(c) < 32 else c for c in text).split())


def _full_datetime(value: object) -> dt.datetime | None:
    """A date-time only: a bare or partial date has no time to put in Study Time."""
    return value if isinstance(value, dt.datetime) else None


# --- helpers ---------------------------------------------------------------------------------


def _fits_lo(value: str) -> bool:
    return len(value) <= LO_MAX and "\\" not in value and all(ord(c) >= 32 for c in value)


def _lo(what: str, value: str | None) -> str | None:
    """Refuse (never cut) an identifier DICOM LO cannot hold."""
    return check_lo(what, value) if value else value


# --- banner ----------------------------------------------------------------------------------


def banner(patient: PatientIn, *, today: dt.date | None = None) -> dict[str, str]:
    """What the patient banner shows, so the clinician confirms the right patient.

    SMART ``need_patient_banner`` (App Launch 2, scopes-and-launch-context) asks the app to
    show one when the EHR does not. Two patients may share a name (the sandbox has two John
    Smiths): the banner therefore always shows birth date and MRN beside the name.
    """
    name = patient.name
    birth = patient.birth_date
    age = ""
    if birth:
        on = today or dt.date.today()
        years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
        age = f"{years} y"
    return {
        "name": f"{name.family}, {name.given}"
        if name and name.given
        else (name.family if name else "(no name)"),
        "birth_date": birth.isoformat() if birth else "unknown",
        "age": age or "unknown",
        "mrn": patient.id,
        "mrn_issuer": (
            (patient.issuer.namespace or patient.issuer.universal_id or "")
            if patient.issuer
            else ""
        ),
        "sex": _SEX_TEXT.get(patient.sex, "unknown") if patient.sex else "unknown",
    }
