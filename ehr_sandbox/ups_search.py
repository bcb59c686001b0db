"""Search (PS3.18 11.9) for the sandbox's UPS-RS server: C-FIND matching (PS3.4 C.2.2.2) on
the keys the capture app uses: single values with ``*``/``?`` wildcards, UID lists, and DT
ranges with time zone offsets (C.2.2.2.5); a query DT without an offset is read as UTC."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from ehr_sandbox.ups_rules import Refused

PATIENT_ID = "00100020"
SOP_INSTANCE_UID = "00080018"
STATE = "00741000"
START_DT = "00404005"
STATION_SEQ = "00404025"
CODE_VALUE = "00080100"
WORKLIST_LABEL_TAG = "00741202"
ADMISSION_ID = "00380010"

#: Matching keys this server supports (PS3.18 11.9.1.2; attribute paths as tags).
MATCHING_KEYS = {
    START_DT,
    STATE,
    f"{STATION_SEQ}.{CODE_VALUE}",
    WORKLIST_LABEL_TAG,
    PATIENT_ID,
    ADMISSION_ID,
    SOP_INSTANCE_UID,
}
CONTROL_PARAMS = {
    "includefield",
    "offset",
    "limit",
    "fuzzymatching",
    "emptyvaluematching",
    "multiplevaluematching",
}

_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_DT = r"\d{4}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?(?:[+-]\d{4})?"
_DT_ONE = re.compile(rf"^{_DT}$")
_DT_RANGE = re.compile(rf"^(?P<low>{_DT})?-(?P<high>{_DT})?$")


def attribute_path(key: str) -> str:
    """``ScheduledStationNameCodeSequence.CodeValue`` or ``00404025.00080100`` -> tags."""
    parts = []
    for part in key.split("."):
        if _TAG.match(part):
            tag = part.upper()
            if keyword_for_tag(int(tag, 16)) == "":
                raise Refused(400, f"{key!r} is not a DICOM attribute.")
        else:
            number = tag_for_keyword(part)
            if number is None:
                raise Refused(400, f"{key!r} is not a DICOM attribute keyword or tag.")
            tag = f"{number:08X}"
        parts.append(tag)
    path = ".".join(parts)
    if path not in MATCHING_KEYS:
        names = ", ".join(sorted(_path_keyword(p) for p in MATCHING_KEYS))
        raise Refused(400, f"{key!r} is not a matching key of this worklist (use {names}).")
    return path


def _path_keyword(path: str) -> str:
    return ".".join(keyword_for_tag(int(tag, 16)) for tag in path.split("."))


def _dt_bounds(value: str) -> tuple[dt.datetime, dt.datetime]:
    """The first and last instant a (partial) DT value stands for (PS3.5 6.2, PS3.4 C.2.2.2.5)."""
    match = re.match(r"^(\d{4,14})(\.\d{1,6})?([+-]\d{4})?$", value)
    if match is None or len(match.group(1)) % 2:
        raise ValueError(value)
    digits, fraction, offset = match.groups()
    tz = dt.UTC
    if offset:
        sign = -1 if offset[0] == "-" else 1
        tz = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    low_digits = digits + "0101000000"[len(digits) - 4 :] if len(digits) < 14 else digits
    low = dt.datetime.strptime(low_digits, "%Y%m%d%H%M%S").replace(tzinfo=tz)
    if fraction:
        low = low.replace(microsecond=int(fraction[1:].ljust(6, "0")))
    step = {4: "years", 6: "months", 8: "days", 10: "hours", 12: "minutes", 14: "seconds"}
    if fraction:
        high = low.replace(microsecond=int(fraction[1:].ljust(6, "9")))
    elif step[len(digits)] == "years":
        high = low.replace(year=low.year + 1) - dt.timedelta(microseconds=1)
    elif step[len(digits)] == "months":
        nxt = low.replace(year=low.year + low.month // 12, month=low.month % 12 + 1)
        high = nxt - dt.timedelta(microseconds=1)
    else:
        high = low + dt.timedelta(**{step[len(digits)]: 1}) - dt.timedelta(microseconds=1)
    return low, high


class Matcher:
    """One matching key and its value (C-FIND semantics, PS3.4 C.2.2.2)."""

    def __init__(self, path: str, value: str) -> None:
        self.path = path
        self.value = value
        self.range: tuple[dt.datetime | None, dt.datetime | None] | None = None
        if path == START_DT and value:
            self.range = self._parse_dt(value)

    def _parse_dt(self, value: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        try:
            if _DT_ONE.match(value):
                return _dt_bounds(value)
            found = _DT_RANGE.match(value)
            if found is None or not (found["low"] or found["high"]):
                raise ValueError(value)
            low = _dt_bounds(found["low"])[0] if found["low"] else None
            high = _dt_bounds(found["high"])[1] if found["high"] else None
            return low, high
        except (ValueError, KeyError) as exc:
            raise Refused(400, f"{value!r} is not a DT value or range (a-b).") from exc

    def matches(self, item: dict[str, Any]) -> bool:
        if self.value == "":  # universal matching
            return True
        values = self._values(item)
        if self.range is not None:
            low, high = self.range
            for value in values:
                try:
                    start, _ = _dt_bounds(str(value))
                except ValueError:
                    continue
                if (low is None or start >= low) and (high is None or start <= high):
                    return True
            return False
        if self.path == SOP_INSTANCE_UID:  # list of UID matching
            return any(v in self.value.split(",") for v in values)
        pattern = re.compile(
            "^" + re.escape(self.value).replace(r"\*", ".*").replace(r"\?", ".") + "$"
        )
        return any(pattern.match(str(v)) for v in values)

    def _values(self, item: dict[str, Any]) -> list[Any]:
        datasets = [item]
        tags = self.path.split(".")
        for tag in tags[:-1]:
            datasets = [child for ds in datasets for child in ds.get(tag, {}).get("Value") or []]
        return [v for ds in datasets for v in ds.get(tags[-1], {}).get("Value") or []]


def int_param(name: str, value: str) -> int:
    if not value.isdigit():
        raise Refused(400, f"{name}={value!r} is not a non-negative integer.")
    return int(value)
