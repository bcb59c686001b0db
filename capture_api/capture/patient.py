"""Who the photo is of, and in which encounter: the context the EHR or worklist gives us.

These are plain values, filled by ``context`` providers (SMART/FHIR, UPS-RS, wristband scan)
or by the CLI. Demographics are never typed by the clinician in the product; the CLI takes them
for batch import of camera cards where the operator copies them from the chart.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from capture_api.exceptions import InvalidMetadata

#: LO (Long String) holds at most 64 characters (PS3.5 Table 6.2-1).
LO_MAX = 64
_PN_GROUP_MAX = 64
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class Sex(StrEnum):
    """Patient's Sex (0010,0040) enumerated values."""

    FEMALE = "F"
    MALE = "M"
    OTHER = "O"


class UniversalIdType(StrEnum):
    """Universal Entity ID Type (0040,0033), the HL7 v2 HD universal ID types we emit."""

    ISO = "ISO"
    URI = "URI"
    DNS = "DNS"
    UUID = "UUID"


def check_lo(name: str, value: str | None) -> str | None:
    """Refuse a value a DICOM LO cannot hold instead of silently truncating it."""
    if value is None:
        return None
    if len(value) > LO_MAX:
        raise InvalidMetadata(f"{name} is {len(value)} characters; DICOM allows at most {LO_MAX}")
    if "\\" in value or _first_control(value) is not None:
        raise InvalidMetadata(f"{name} contains a backslash or control character")
    return value


#: Control characters the free-text VRs ST and LT may hold (PS3.5 6.2; dciodvfy refuses TAB,
#: NUL and DEL). ESC is left out: capture writes UTF-8 (ISO_IR 192), never ISO 2022 escapes.
TEXT_CONTROLS = frozenset("\r\n\f")


def check_text(name: str, value: str | None) -> str | None:
    """Refuse a free-text value (ST, LT) with a control character such as NUL or TAB."""
    bad = _first_control(value or "", TEXT_CONTROLS)
    if bad is not None:
        raise InvalidMetadata(
            f"{name} contains a control character (U+{ord(bad):04X}), which DICOM text cannot "
            "hold; remove it and send again"
        )
    return value


def _first_control(value: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """The first C0 control character or DEL in ``value`` that is not ``allowed``."""
    return next((c for c in value if (ord(c) < 32 or c == "\x7f") and c not in allowed), None)


@dataclass(frozen=True)
class Issuer:
    """An assigning authority (HL7 v2 HD): a local namespace and/or a universal ID.

    Written as Issuer of Patient ID (0010,0021) plus its Qualifiers Sequence, or as an
    Issuer of Admission ID Sequence (0038,0014) item.
    """

    local_namespace: str | None = None
    universal_id: str | None = None
    universal_id_type: UniversalIdType | None = None

    def __post_init__(self) -> None:
        check_lo("issuer namespace", self.local_namespace)
        check_lo("issuer universal id", self.universal_id)
        if self.universal_id and self.universal_id_type is None:
            kind = UniversalIdType.ISO if _OID.match(self.universal_id) else UniversalIdType.URI
            object.__setattr__(self, "universal_id_type", kind)

    @classmethod
    def parse(cls, text: str) -> Issuer:
        """Read an issuer from a CLI/config string: an OID, a URI, or a local name."""
        if _OID.match(text):
            return cls(universal_id=text, universal_id_type=UniversalIdType.ISO)
        if "://" in text or text.startswith("urn:"):
            return cls(universal_id=text, universal_id_type=UniversalIdType.URI)
        return cls(local_namespace=text)


def same_authority(a: Issuer | None, b: Issuer | None) -> bool:
    """Whether two issuers name the same assigning authority, by meaning (HL7 v2 HD).

    An HD names one authority by a local namespace, a universal ID with its type, or both
    (PS3.3 Table 10-18: Issuer of Patient ID (0010,0021) and its Qualifiers Sequence).
    Systems fill it differently for the same authority: the OID alone, the OID with a local
    name such as "EPI", or the OID written into the namespace slot (the form our own DICOM
    carries when only ``issuer_of_patient_id`` is configured). So:

    * a universal ID is the authority itself: when both sides have one, they decide alone
      (``urn:oid:1.2.3``, and ``1.2.3`` of type ISO, are the same universal ID; a namespace
      that is an OID or ``urn:oid:`` is read as that universal ID);
    * otherwise two local namespaces decide (exact text);
    * a universal ID on one side and only a local name on the other cannot be proven equal:
      not the same; no issuer on both sides is the same (the site's one MRN domain); an issuer
      on one side only is not.
    """
    if a is None or b is None:
        return a is None and b is None
    ids_a, ids_b = _universal_ids(a), _universal_ids(b)
    if ids_a and ids_b:
        return bool(ids_a & ids_b)
    names_a, names_b = _local_name(a), _local_name(b)
    return names_a is not None and names_a == names_b


def _universal_ids(issuer: Issuer) -> set[str]:
    """The issuer's universal IDs in one canonical form (``iso:<oid>`` or the URI itself)."""
    found = {_canonical(issuer.universal_id)} if issuer.universal_id else set()
    if issuer.local_namespace and _canonical(issuer.local_namespace) != issuer.local_namespace:
        found.add(_canonical(issuer.local_namespace))  # an OID written as the namespace
    return found


def _local_name(issuer: Issuer) -> str | None:
    name = (issuer.local_namespace or "").strip()
    return name if name and _canonical(name) == name else None


def _canonical(value: str) -> str:
    """``1.2.3`` (ISO) and ``urn:oid:1.2.3`` -> ``iso:1.2.3``; other values unchanged."""
    text = value.strip()
    bare = text[len("urn:oid:") :] if text.lower().startswith("urn:oid:") else text
    return f"iso:{bare}" if _OID.match(bare) else text


@dataclass(frozen=True)
class PersonName:
    """A DICOM PN from family and given names; non-ASCII is fine (ISO_IR 192 is set)."""

    family: str
    given: str = ""
    middle: str = ""
    prefix: str = ""
    suffix: str = ""

    def __post_init__(self) -> None:
        for part in (self.family, self.given, self.middle, self.prefix, self.suffix):
            if any(c in part for c in "^=\\") or any(ord(c) < 32 for c in part):
                raise InvalidMetadata("a name part contains ^, =, \\ or a control character")
        if len(self.dicom()) > _PN_GROUP_MAX:
            raise InvalidMetadata(f"the name is longer than DICOM's {_PN_GROUP_MAX} characters")

    @classmethod
    def parse(cls, text: str) -> PersonName:
        """Parse the DICOM caret form ``Family^Given^Middle^Prefix^Suffix``."""
        parts = [*text.split("^"), "", "", "", ""][:5]
        if text.count("^") > 4:
            raise InvalidMetadata("a DICOM name has at most five ^-separated parts")
        return cls(*parts)

    def dicom(self) -> str:
        """The PN value with trailing empty components removed (PS3.5 6.2.1.1)."""
        parts = [self.family, self.given, self.middle, self.prefix, self.suffix]
        return "^".join(parts).rstrip("^")


@dataclass(frozen=True)
class Patient:
    """The patient as the EHR knows them: ID with its issuer, name, birth date, sex."""

    patient_id: str
    issuer: Issuer | None = None
    name: PersonName | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None

    def __post_init__(self) -> None:
        if not self.patient_id.strip():
            raise InvalidMetadata("a patient ID is required")
        check_lo("patient ID", self.patient_id)


@dataclass(frozen=True)
class Encounter:
    """The visit the photo belongs to (IHE EBIW): Admission ID and what we know of it."""

    admission_id: str | None = None
    issuer: Issuer | None = None
    description: str | None = None
    started_at: dt.datetime | None = None
    accession_number: str | None = None
    referring_physician: PersonName | None = None

    def __post_init__(self) -> None:
        check_lo("admission ID", self.admission_id)
        check_lo("study description", self.description)
        check_lo("accession number", self.accession_number)
        if self.accession_number and len(self.accession_number) > 16:
            raise InvalidMetadata("an accession number has at most 16 characters")
