"""Read a STOW-RS Store Instances Response and put its reason codes into words.

The archive answers a store with the Store Instances Response Module (PS3.18 Annex I,
Table I.1-1) in DICOM JSON (PS3.18 Annex F): Referenced SOP Sequence (0008,1199) for what it
stored, with an optional Warning Reason (0008,1196) per instance; Failed SOP Sequence
(0008,1198) with a Failure Reason (0008,1197) per instance it refused; and Other Failures
Sequence (0008,119A). The HTTP status alone (PS3.18 10.5.3) does not say which instance of a
request failed or why, so the delivery code reads this body.

Parsing is tolerant on purpose: an empty body, XML, or JSON in an unexpected shape gives an
empty ``StoreResponse`` (the caller then decides from the status code and a QIDO-RS check),
never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DUPLICATE_SOP_INSTANCE",
    "FailedInstance",
    "ReferencedInstance",
    "StoreResponse",
    "failure_reason_text",
    "format_code",
    "is_duplicate",
    "parse_store_response",
    "warning_reason_text",
]

# Tags of the Store Instances Response Module (PS3.18 Table I.1-1) and the SOP Instance
# Reference Macro (PS3.3), as DICOM JSON keys.
_RETRIEVE_URL = "00081190"
_FAILED_SOP_SEQUENCE = "00081198"
_REFERENCED_SOP_SEQUENCE = "00081199"
_OTHER_FAILURES_SEQUENCE = "0008119A"
_REFERENCED_SOP_CLASS_UID = "00081150"
_REFERENCED_SOP_INSTANCE_UID = "00081155"
_FAILURE_REASON = "00081197"
_WARNING_REASON = "00081196"

#: PS3.7 Annex C (C-STORE status 0111H): "Duplicate SOP Instance". Not in PS3.18's table, but
#: archives that reuse their DIMSE status codes answer a re-sent instance with it.
DUPLICATE_SOP_INSTANCE = 0x0111

# Warning Reason and Failure Reason values of PS3.18 Annex I (STANDARDS.md 3.1).
_WARNINGS: dict[int, str] = {
    0xB000: "coercion of data elements (the archive changed some values)",
    0xB006: "elements discarded (the archive dropped some attributes)",
    0xB007: "data set does not match SOP class",
}
_FAILURES: dict[int, str] = {
    0x0110: "processing failure",
    DUPLICATE_SOP_INSTANCE: "duplicate SOP instance",
    0x0122: "referenced SOP class not supported",
    0xC122: "referenced transfer syntax not supported",
}
# Ranges: (first, last, words). Checked after the exact codes above.
_FAILURE_RANGES: tuple[tuple[int, int, str], ...] = (
    (0xA700, 0xA7FF, "refused: out of resources"),
    (0xA900, 0xA9FF, "data set does not match SOP class"),
    (0xC000, 0xCFFF, "cannot understand"),
)


@dataclass(frozen=True)
class ReferencedInstance:
    """An item of Referenced SOP Sequence: the archive stored this instance."""

    sop_instance_uid: str
    sop_class_uid: str | None = None
    retrieve_url: str | None = None
    warning_reason: int | None = None


@dataclass(frozen=True)
class FailedInstance:
    """An item of Failed SOP Sequence: the archive did not store this instance."""

    sop_instance_uid: str | None
    failure_reason: int | None
    sop_class_uid: str | None = None


@dataclass(frozen=True)
class StoreResponse:
    """What the Store Instances Response says, per instance."""

    referenced: tuple[ReferencedInstance, ...] = ()
    failed: tuple[FailedInstance, ...] = ()
    other_failures: tuple[int, ...] = ()
    retrieve_url: str | None = None

    def referenced_for(self, sop_instance_uid: str) -> ReferencedInstance | None:
        return next((i for i in self.referenced if i.sop_instance_uid == sop_instance_uid), None)

    def failed_for(self, sop_instance_uid: str) -> FailedInstance | None:
        return next((i for i in self.failed if i.sop_instance_uid == sop_instance_uid), None)


def parse_store_response(body: bytes | str) -> StoreResponse:
    """Parse a DICOM JSON Store Instances Response; anything unreadable gives an empty one."""
    try:
        document = json.loads(body) if body and body.strip() else None
    except ValueError:  # XML, HTML error page, truncated JSON
        return StoreResponse()
    if isinstance(document, list) and len(document) == 1:  # some servers wrap it in an array
        document = document[0]
    if not isinstance(document, Mapping):
        return StoreResponse()
    return StoreResponse(
        referenced=tuple(_referenced(item) for item in _items(document, _REFERENCED_SOP_SEQUENCE)),
        failed=tuple(_failed(item) for item in _items(document, _FAILED_SOP_SEQUENCE)),
        other_failures=tuple(
            code
            for item in _items(document, _OTHER_FAILURES_SEQUENCE)
            if (code := _int(item, _FAILURE_REASON)) is not None
        ),
        retrieve_url=_str(document, _RETRIEVE_URL),
    )


def _referenced(item: Mapping[str, Any]) -> ReferencedInstance:
    return ReferencedInstance(
        sop_instance_uid=_str(item, _REFERENCED_SOP_INSTANCE_UID) or "",
        sop_class_uid=_str(item, _REFERENCED_SOP_CLASS_UID),
        retrieve_url=_str(item, _RETRIEVE_URL),
        warning_reason=_int(item, _WARNING_REASON),
    )


def _failed(item: Mapping[str, Any]) -> FailedInstance:
    return FailedInstance(
        sop_instance_uid=_str(item, _REFERENCED_SOP_INSTANCE_UID),
        failure_reason=_int(item, _FAILURE_REASON),
        sop_class_uid=_str(item, _REFERENCED_SOP_CLASS_UID),
    )


def _items(document: Mapping[str, Any], tag: str) -> list[Mapping[str, Any]]:
    """The items of a sequence attribute (PS3.18 Annex F: ``{"vr": "SQ", "Value": [...]}``)."""
    return [item for item in _values(document, tag) if isinstance(item, Mapping)]


def _values(document: Mapping[str, Any], tag: str) -> list[Any]:
    element = document.get(tag)
    if not isinstance(element, Mapping):
        return []
    values = element.get("Value")
    return values if isinstance(values, list) else []


def _str(document: Mapping[str, Any], tag: str) -> str | None:
    values = _values(document, tag)
    return str(values[0]) if values and values[0] is not None else None


def _int(document: Mapping[str, Any], tag: str) -> int | None:
    values = _values(document, tag)
    if not values:
        return None
    try:
        return int(values[0])  # US is a JSON number (PS3.18 Annex F); tolerate a digit string
    except (TypeError, ValueError):
        return None


# --- reason codes in words --------------------------------------------------------------------


def format_code(code: int) -> str:
    """A reason code the way the standard writes it: ``0xA900``."""
    return f"0x{code:04X}"


def warning_reason_text(code: int) -> str:
    """Words for a Warning Reason (0008,1196), PS3.18 Annex I."""
    return f"{format_code(code)} {_WARNINGS.get(code, 'warning')}"


def failure_reason_text(code: int) -> str:
    """Words for a Failure Reason (0008,1197), PS3.18 Annex I (and 0111H of PS3.7 Annex C)."""
    words = _FAILURES.get(code)
    if words is None:
        words = next((w for low, high, w in _FAILURE_RANGES if low <= code <= high), None)
    return f"{format_code(code)} {words or 'failure'}"


def is_duplicate(code: int | None) -> bool:
    """Whether a Failure Reason means the archive already holds this SOP Instance UID."""
    return code == DUPLICATE_SOP_INSTANCE
