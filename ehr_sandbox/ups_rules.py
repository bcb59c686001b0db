"""What a strict UPS-RS origin server refuses, written from the standard's tables.

Each check returns the problem in words (``None`` when there is none), so the server can
put it in a Warning header and a user agent can show it:

* ``json_form_problem``: the DICOM JSON Model (PS3.18 F.2.2): every dataset object, sequence
  items included, has its attributes named by eight uppercase hex digits in ascending order,
  no group length (gggg,0000), a ``vr`` that is the data dictionary's, ``Value`` an array.
* ``output_problem``: an Output Information Sequence (0040,4033) item is a PS3.3 Table 10-3b
  "Referenced Instances and Access Macro": Type of Instances (0040,E020) 1; Study and Series
  Instance UID 1C (DICOM); Referenced SOP Sequence (0008,1199) 1 with both UIDs; and at
  least one retrieval sequence, each item with its Type 1 attribute: DICOM Retrieval
  (0040,E021) > Retrieve AE Title (0008,0054); DICOM Media Retrieval (0040,E022) > Storage
  Media File-Set UID (0088,0140) (File-Set ID (0088,0130) Type 2); WADO Retrieval (0040,E023)
  > Retrieve URI (0040,E010); XDS Retrieval (0040,E024) > Repository Unique ID (0040,E030);
  WADO-RS Retrieval (0040,E025) > Retrieve URL (0008,1190).
* ``final_state_problem``: the Final State column of PS3.4 Table CC.2.5-3 (codes of Table
  CC.2.5-1: R for both final states, P for COMPLETED, X for CANCELED), as the Microsoft
  DICOM service's validator encodes it (``WorkitemFinalStateValidatorExtension``): R SOP Class
  UID, SOP Instance UID, Scheduled Procedure Step Priority, Modification DateTime and Start
  DateTime, Input Readiness State, Procedure Step State; P the Unified Procedure Step
  Performed Procedure Sequence (0074,1216) > Performed Station Name Code Sequence, Performed
  Workitem Code Sequence, Performed Procedure Step Start/End DateTime, Output Information
  Sequence; X the Procedure Step Progress Information Sequence (0074,1002) > Procedure Step
  Cancellation DateTime (0040,4052) and Procedure Step Discontinuation Reason Code Sequence
  (0074,100E).
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag

_TAG = re.compile(r"^[0-9A-F]{8}$")


class Refused(Exception):
    """An answer other than success: its status code and Warning texts."""

    def __init__(self, status: int, *warnings: str) -> None:
        super().__init__(warnings[0] if warnings else str(status))
        self.status = status
        self.warnings = warnings


#: (tag, name) of the retrieval sequences and the Type 1 attribute of their items.
RETRIEVALS = {
    "0040E021": ("DICOM Retrieval Sequence", "00080054"),
    "0040E022": ("DICOM Media Retrieval Sequence", "00880140"),
    "0040E023": ("WADO Retrieval Sequence", "0040E010"),
    "0040E024": ("XDS Retrieval Sequence", "0040E030"),
    "0040E025": ("WADO-RS Retrieval Sequence", "00081190"),
}

_FINAL_R = (
    "00080016",  # SOP Class UID
    "00080018",  # SOP Instance UID
    "00741200",  # Scheduled Procedure Step Priority
    "00404010",  # Scheduled Procedure Step Modification DateTime
    "00404005",  # Scheduled Procedure Step Start DateTime
    "00404041",  # Input Readiness State
    "00741000",  # Procedure Step State
)
_FINAL_P = (
    "00404028",  # Performed Station Name Code Sequence
    "00404050",  # Performed Procedure Step Start DateTime
    "00404019",  # Performed Workitem Code Sequence
    "00404051",  # Performed Procedure Step End DateTime
    "00404033",  # Output Information Sequence
)
_FINAL_X = (
    "00404052",  # Procedure Step Cancellation DateTime
    "0074100E",  # Procedure Step Discontinuation Reason Code Sequence
)


def tag_name(tag: str) -> str:
    """``00404033`` -> ``OutputInformationSequence (0040,4033)``."""
    keyword = keyword_for_tag(int(tag, 16)) or "attribute"
    return f"{keyword} ({tag[:4]},{tag[4:]})"


def values(ds: dict[str, Any], tag: str) -> list[Any]:
    element = ds.get(tag)
    found = element.get("Value") if isinstance(element, dict) else None
    return found if isinstance(found, list) else []


def has_value(ds: dict[str, Any], tag: str) -> bool:
    return any(v not in (None, "", {}) for v in values(ds, tag))


# --- PS3.18 F.2.2 -------------------------------------------------------------------------------


def json_form_problem(ds: Any, where: str = "the dataset") -> str | None:
    """What is not DICOM JSON Model form in ``ds`` (recursively), else None."""
    if not isinstance(ds, dict):
        return f"{where} is not a JSON object"
    keys = list(ds)
    for key in keys:
        if not _TAG.match(key):
            return f"{where}: {key!r} is not a tag of eight uppercase hex digits (F.2.2)"
        if key.endswith("0000"):
            return f"{where}: group length {key} is not allowed (F.2.2)"
    if keys != sorted(keys):
        first = next(a for a, b in zip(keys, sorted(keys), strict=True) if a != b)
        return (
            f"{where}: attributes are not in ascending tag order ({first} is out of place; "
            "PS3.18 F.2.2)"
        )
    for key in keys:
        problem = _element_problem(key, ds[key], where)
        if problem:
            return problem
    return None


def _element_problem(tag: str, element: Any, where: str) -> str | None:
    if not isinstance(element, dict) or not isinstance(element.get("vr"), str):
        return f"{where}: {tag_name(tag)} has no vr (F.2.2)"
    vr = element["vr"]
    known = _dictionary_vr(tag)
    if known and vr not in known:
        return f"{where}: {tag_name(tag)} has vr {vr}, not {' or '.join(known)}"
    if "Value" not in element:
        return None
    if not isinstance(element["Value"], list):
        return f"{where}: the Value of {tag_name(tag)} is not an array (F.2.2)"
    if vr == "SQ":
        for n, item in enumerate(element["Value"], 1):
            problem = json_form_problem(item, f"{tag_name(tag)} item {n}")
            if problem:
                return problem
    return None


def _dictionary_vr(tag: str) -> list[str]:
    try:
        return [v.strip() for v in dictionary_VR(int(tag, 16)).split(" or ")]
    except KeyError:
        return []  # private or unknown: any VR


# --- PS3.3 Table 10-3b --------------------------------------------------------------------------


def output_problem(performed: dict[str, Any]) -> str | None:
    """What keeps the Output Information Sequence items of one performed item conformant."""
    for n, item in enumerate(values(performed, "00404033"), 1):
        problem = _output_item_problem(item)
        if problem:
            return f"Output Information Sequence item {n}: {problem} (PS3.3 Table 10-3b)"
    return None


def _output_item_problem(item: dict[str, Any]) -> str | None:
    if not has_value(item, "0040E020"):
        return "Type of Instances (0040,E020) is missing"
    if values(item, "0040E020")[0] == "DICOM":
        for tag in ("0020000D", "0020000E"):
            if not has_value(item, tag):
                return f"{tag_name(tag)} is missing"
    refs = values(item, "00081199")
    if not refs:
        return "Referenced SOP Sequence (0008,1199) is missing or empty"
    for ref in refs:
        if not (has_value(ref, "00081150") and has_value(ref, "00081155")):
            return "a Referenced SOP Sequence item lacks its SOP Class or Instance UID"
    present = [tag for tag in RETRIEVALS if values(item, tag)]
    if not present:
        return "none of the retrieval sequences (0040,E021)-(0040,E025) is present (Type 1C)"
    for tag in present:
        name, required = RETRIEVALS[tag]
        for retrieval in values(item, tag):
            if not has_value(retrieval, required):
                return f"an item of {name} has no {tag_name(required)}"
    return None


# --- PS3.4 Table CC.2.5-3, Final State ---------------------------------------------------------


def final_state_problem(item: dict[str, Any], wanted: str) -> str | None:
    """What keeps ``item`` from the final state ``wanted`` (COMPLETED or CANCELED)."""
    for tag in _FINAL_R:
        if not has_value(item, tag):
            return f"{tag_name(tag)} has no value (Final State R)"
    if wanted == "COMPLETED":
        return _nested_problem(item, "00741216", _FINAL_P, "P")
    return _nested_problem(item, "00741002", _FINAL_X, "X")


def _nested_problem(
    item: dict[str, Any], sequence: str, required: tuple[str, ...], code: str
) -> str | None:
    found = values(item, sequence)
    if not found:
        return f"{tag_name(sequence)} has no item (Final State {code})"
    for tag in required:
        if not has_value(found[0], tag):
            return f"{tag_name(sequence)} > {tag_name(tag)} has no value (Final State {code})"
    return None
