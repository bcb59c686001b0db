"""A patient's skin lesions (L1, L2, ...) and how a photo of one is taken (dermoscopy).

Dermatology follows one lesion for years: the nurse drops a pin on the body map, the pin
becomes lesion ``L<n>`` of that patient, and every later photo of it carries the lesion's
identity. In DICOM that identity is the pair Tracking ID (0062,0020, the label "L3") and
Tracking UID (0062,0021, unique and stable for ever), the attributes PS3.3 gives the
Dermoscopic Image Module (C.8.12.13) to "follow one lesion over time"; the pin (map view and
position) has no standard attribute and goes in a documented private block
(``capture_api.encode.lesion_block``). docs/conformance.md has the mapping.

Pure values here: the database keeps lesions (``capture_api.store.lesions``), the review
package finds them again in the archive (``capture_api.review.lesions``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from capture_api.exceptions import InvalidMetadata

__all__ = [
    "DESCRIPTION_MAX",
    "MAP_VIEWS",
    "ContactMethod",
    "Dermoscopy",
    "ImageReference",
    "LesionMark",
    "LesionPin",
    "Polarization",
    "lesion_label",
]

#: The body map's views (web_client/js/regions.js): a pin is a position on one of them.
MAP_VIEWS: frozenset[str] = frozenset(
    {"front", "back", "head", "hand-palmar", "hand-dorsal", "foot-dorsal", "foot-plantar"}
)
#: A lesion's description is a Long String in DICOM (LO, 64 characters).
DESCRIPTION_MAX = 64
_LABEL = re.compile(r"^L([1-9][0-9]{0,4})$")


def lesion_label(number: int) -> str:
    """The label a nurse reads and says: ``L1``, ``L2``, ... (Tracking ID)."""
    if number < 1:
        raise InvalidMetadata("a lesion number starts at 1")
    return f"L{number}"


def label_number(label: str) -> int | None:
    """The number of an ``L<n>`` label, or None for any other tracking identifier."""
    match = _LABEL.match(label.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class LesionPin:
    """Where the pin was dropped: a map view and a position on it, 0..1 from its top left.

    Relative to the view's drawing (its viewBox), so the pin lands on the same spot whatever
    the screen's size.
    """

    view: str
    x: float
    y: float

    def __post_init__(self) -> None:
        if self.view not in MAP_VIEWS:
            views = ", ".join(sorted(MAP_VIEWS))
            raise InvalidMetadata(f"map view {self.view!r} is not one of: {views}")
        for name, value in (("x", self.x), ("y", self.y)):
            if not 0.0 <= value <= 1.0:
                raise InvalidMetadata(f"the pin's {name} must be between 0 and 1, not {value}")


@dataclass(frozen=True)
class LesionMark:
    """A lesion as a photo carries it: its identity, its words, and its pin on the map."""

    tracking_uid: str
    tracking_id: str  # "L3"
    description: str | None = None
    pin: LesionPin | None = None

    def __post_init__(self) -> None:
        if not self.tracking_uid or len(self.tracking_uid) > 64:
            raise InvalidMetadata("a lesion needs a tracking UID of 1 to 64 characters")
        if not self.tracking_id or len(self.tracking_id) > DESCRIPTION_MAX:
            raise InvalidMetadata("a lesion needs a label of 1 to 64 characters")
        if self.description and len(self.description) > DESCRIPTION_MAX:
            raise InvalidMetadata(
                f"the lesion's description is longer than {DESCRIPTION_MAX} characters"
            )


class Polarization(StrEnum):
    """Light Source Polarization (0016,1001), PS3.3 C.8.12.13."""

    POLARIZED = "POLARIZED"
    NON_POLARIZED = "NON_POLARIZED"


class ContactMethod(StrEnum):
    """Contact Method (0016,1003), PS3.3 C.8.12.13."""

    CONTACT = "CONTACT"
    NON_CONTACT = "NON_CONTACT"


@dataclass(frozen=True)
class Dermoscopy:
    """A photo taken through a dermatoscope: what the Dermoscopic Image Module records.

    Each value is optional for the nurse: Type 2 attributes are sent empty when unknown.
    ``immersion`` (Immersion Media, 0016,1004) is asked only for contact dermoscopy.
    """

    polarization: Polarization | None = None
    contact: ContactMethod | None = None
    immersion: str | None = None

    _IMMERSION = frozenset({"ULTRASOUND_GEL", "ALCOHOL", "WATER", "MINERAL_OIL", "PLASTIC_CAP"})

    def __post_init__(self) -> None:
        if self.immersion is not None and self.immersion not in self._IMMERSION:
            media = ", ".join(sorted(self._IMMERSION))
            raise InvalidMetadata(f"immersion medium {self.immersion!r} is not one of: {media}")
        if self.immersion is not None and self.contact is not ContactMethod.CONTACT:
            raise InvalidMetadata("an immersion medium is only for contact dermoscopy")


@dataclass(frozen=True)
class ImageReference:
    """An earlier photo of the same lesion a new one points to (Referenced Image Sequence)."""

    sop_class_uid: str
    sop_instance_uid: str
    purpose: str = "close-up"  # "overview" (Localizer) or "close-up" (Other partial views)
