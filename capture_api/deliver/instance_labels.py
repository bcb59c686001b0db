"""What an archive says about an instance's sensitivity and encounter (``Archive.labels``).

The timeline needs, for photos this service did not capture, the sensitivity private block
(group 0011, creator ``CAPTURE SENSITIVITY 1``, see ``capture_api.encode.vl_photo``), the
Admission ID (0038,0010) and the Study Description (0008,1030). Every archive answers for
many instances at once: ``LocalArchive`` from its index (kept when each instance was
stored), ``DicomWebArchive`` from the series' WADO-RS metadata, read here from DICOM JSON
(PS3.18 Annex F), where a private tag is ``gggg00xx`` for its creator and ``ggggxxee`` for
its elements. What the labels *mean* (which code is restricted) is the timeline's business
(``capture_api.review.timeline``): here they stay text, as the header holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from capture_api.encode.vl_photo import (
    CONFIDENTIALITY_ELEMENT,
    LEVEL_ELEMENT,
    SENSITIVITY_CREATOR,
    SENSITIVITY_GROUP,
)

_ADMISSION_ID = "00380010"
_STUDY_DESCRIPTION = "00081030"
#: Private creator slots (PS3.5 7.8.1): ``gggg0010`` to ``gggg00FF``.
_CREATOR_SLOTS = range(0x10, 0x100)


@dataclass(frozen=True)
class InstanceLabels:
    """An instance's sensitivity block and encounter, as text from its header."""

    marked: bool  # the instance carries the sensitivity block (else nobody marked it)
    confidentiality: str | None  # HL7 v3 Confidentiality code in the block (N, R, V, ...)
    level: str | None  # the block's level text (normal, restricted, very-restricted)
    admission_id: str | None
    study_description: str | None


def labels_from_json(attrs: Mapping[str, Any]) -> InstanceLabels:
    """The labels of one DICOM JSON object (PS3.18 F.2), e.g. a WADO-RS metadata item.

    The block is found by its creator, in whichever slot the writer reserved; the first
    slot holding capture's creator wins, as pydicom's ``private_block`` would choose.
    """
    marked, code, level = False, None, None
    for slot in _CREATOR_SLOTS:
        if json_text(attrs, f"{SENSITIVITY_GROUP:04X}{slot:04X}") != SENSITIVITY_CREATOR:
            continue
        prefix = f"{SENSITIVITY_GROUP:04X}{slot:02X}"
        marked = True
        code = json_text(attrs, f"{prefix}{CONFIDENTIALITY_ELEMENT:02X}")
        level = json_text(attrs, f"{prefix}{LEVEL_ELEMENT:02X}")
        break
    return InstanceLabels(
        marked=marked,
        confidentiality=code,
        level=level,
        admission_id=json_text(attrs, _ADMISSION_ID),
        study_description=json_text(attrs, _STUDY_DESCRIPTION),
    )


def json_text(attrs: Mapping[str, Any], tag: str) -> str | None:
    """The first value of a DICOM JSON attribute as trimmed text (a PN's Alphabetic group)."""
    element = attrs.get(tag)
    values = element.get("Value") if isinstance(element, Mapping) else None
    if not isinstance(values, list) or not values or values[0] is None:
        return None
    first = values[0]
    if isinstance(first, Mapping):
        return str(first.get("Alphabetic", "")) or None
    return str(first).strip() or None
