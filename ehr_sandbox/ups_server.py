"""A small but faithful UPS-RS origin server (DICOM PS3.18 chapter 11, Worklist Service).

It serves the sandbox's encounters as an encounter worklist (IHE EBIW "Get Encounter Imaging
Context" over UPS-RS) at ``{base}/dicom-web/workitems`` in ``application/dicom+json``:

- Search (PS3.18 11.9): C-FIND matching (PS3.4 C.2.2.2) on the keys the capture app uses;
  200 with an array, 204 when nothing matches, 400 for a key it does not know.
- Retrieve (11.5): the Transaction UID of an IN PROGRESS item is never returned (11.5.3.3).
- Create (11.4): ``POST /workitems?{workitem}``, so tests can add items.
- Update (11.6): ``POST /workitems/{workitem}?{transaction-uid}``; 400 once COMPLETED/CANCELED.
- Change State (11.7): the PS3.4 Table CC.1.1-2 state machine: 400 for a missing or wrong
  Transaction UID, 409 for a transition the state does not allow (a second claimer of an
  IN PROGRESS item), with the Warning texts of Table 11.7.3-2.

Every Update and Change State request is recorded (``calls``), so tests can count how often a
workitem was completed; ``slow_updates`` makes Updates take a while (a slow worklist).

Synthetic data only. Times are stored with an explicit ``+0000`` offset; a query DT without
an offset is read as UTC (the sandbox's "local" time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydicom.datadict import keyword_for_tag, tag_for_keyword

from ehr_sandbox import data
from ehr_sandbox.state import SandboxState

MEDIA_TYPE = "application/dicom+json"
UPS_PUSH_SOP_CLASS = "1.2.840.10008.5.1.4.34.6.1"
SCHEME = "99SANDBOX"
WORKLIST_LABEL = "Sandbox clinical photography"
_WARN_AGENT = "299 sandbox-ups:"

# Tags (8 hex digits, as in DICOM JSON).
PATIENT_NAME = "00100010"
PATIENT_ID = "00100020"
TRANSACTION_UID = "00081195"
SOP_INSTANCE_UID = "00080018"
STATE = "00741000"
START_DT = "00404005"
STATION_SEQ = "00404025"
CODE_VALUE = "00080100"
WORKLIST_LABEL_TAG = "00741202"
ADMISSION_ID = "00380010"
PERFORMED_SEQ = "00741216"
PROGRESS_SEQ = "00741002"

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
_CONTROL_PARAMS = {
    "includefield",
    "offset",
    "limit",
    "fuzzymatching",
    "emptyvaluematching",
    "multiplevaluematching",
}

_STATIONS = {
    "Dermatology": ("DERM-PHONE-01", "Dermatology clinic photo station"),
    "Emergency": ("DERM-PHONE-01", "Dermatology clinic photo station"),
    "Paediatrics": ("DERM-PHONE-01", "Dermatology clinic photo station"),
    "Wound care": ("WOUND-PHONE-01", "Wound care photo station"),
}

_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_DT = r"\d{4}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?(?:[+-]\d{4})?"
_DT_ONE = re.compile(rf"^{_DT}$")
_DT_RANGE = re.compile(rf"^(?P<low>{_DT})?-(?P<high>{_DT})?$")


# --- the workitems ------------------------------------------------------------------------------


def _el(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _code(value: str, scheme: str, meaning: str) -> dict[str, Any]:
    return {
        CODE_VALUE: _el("SH", value),
        "00080102": _el("SH", scheme),
        "00080104": _el("LO", meaning),
    }


def _oid(system: str) -> str:
    return system.removeprefix("urn:oid:")


def workitem_uid(encounter_id: str) -> str:
    """The deterministic Workitem UID of a sandbox encounter (a 2.25 UID)."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, f'sandbox-ups:{encounter_id}').int}"


def _dicom_dt(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")


def build_workitem(encounter: dict[str, Any], patient: dict[str, Any]) -> dict[str, Any]:
    """One SCHEDULED UPS (PS3.4 Table CC.2.5-3 attributes) for a FHIR Encounter + Patient."""
    uid = workitem_uid(str(encounter["id"]))
    name = (patient.get("name") or [{}])[0]
    mrn = next(
        (i for i in patient.get("identifier", []) if i.get("system") == data.MRN_SYSTEM), None
    )
    service = str(encounter.get("serviceType", {}).get("text", "Clinical photography"))
    station, station_meaning = _STATIONS.get(service, _STATIONS["Dermatology"])
    start = dt.datetime.fromisoformat(encounter["period"]["start"])
    klass = encounter.get("class", {}).get("code")
    item: dict[str, Any] = {
        "00080005": _el("CS", "ISO_IR 192"),
        "00080016": _el("UI", UPS_PUSH_SOP_CLASS),
        SOP_INSTANCE_UID: _el("UI", uid),
        PATIENT_NAME: _el(
            "PN", {"Alphabetic": f"{name.get('family', '')}^{' '.join(name.get('given', []))}"}
        ),
        PATIENT_ID: _el("LO", mrn["value"]) if mrn else _el("LO"),
        "00100021": _el("LO", data.MRN_SYSTEM),
        "00100024": _el(
            "SQ", {"00400032": _el("UT", _oid(data.MRN_SYSTEM)), "00400033": _el("CS", "ISO")}
        ),
        "00100030": _el("DA", patient["birthDate"].replace("-", ""))
        if patient.get("birthDate")
        else _el("DA"),
        "00100040": _el(
            "CS", {"male": "M", "female": "F", "other": "O"}.get(patient.get("gender", ""), "")
        ),
        START_DT: _el("DT", _dicom_dt(start)),
        STATE: _el("CS", "SCHEDULED"),
        STATION_SEQ: _el("SQ", _code(station, SCHEME, station_meaning)),
        WORKLIST_LABEL_TAG: _el("LO", WORKLIST_LABEL),
        "00741200": _el("CS", "HIGH" if klass == "EMER" else "MEDIUM"),
        "00404041": _el("CS", "READY"),
        "00404018": _el("SQ", _code("CLINPHOTO", SCHEME, "Clinical photography")),
        "00741204": _el("LO", f"Clinical photography - {service}"[:64]),
        "0040A370": _el("SQ"),  # Referenced Request Sequence: empty (encounter-based, Type 2)
    }
    visit = next(
        (i for i in encounter.get("identifier", []) if i.get("system") == data.VISIT_SYSTEM), None
    )
    if visit:
        item[ADMISSION_ID] = _el("LO", visit["value"])
        item["00380014"] = _el(
            "SQ", {"00400032": _el("UT", _oid(data.VISIT_SYSTEM)), "00400033": _el("CS", "ISO")}
        )
    return item


def reset_workitems(state: SandboxState) -> dict[str, dict[str, Any]]:
    """(Re)build one SCHEDULED workitem per sandbox encounter; returns them keyed by UID.

    The recorded calls and any ``slow_updates`` are reset too.
    """
    state.extra["ups_calls"] = []
    state.extra.pop("ups_update_delay", None)
    items: dict[str, dict[str, Any]] = {}
    for encounter in state.encounters.values():
        patient_id = str(encounter["subject"]["reference"]).split("/", 1)[1]
        item = build_workitem(encounter, state.patients[patient_id])
        items[item[SOP_INSTANCE_UID]["Value"][0]] = item
    state.extra["workitems"] = items
    state.extra.setdefault("workitems_lock", threading.Lock())
    return items


def workitems(state: SandboxState) -> dict[str, dict[str, Any]]:
    """The sandbox's workitems (built on first use)."""
    if "workitems" not in state.extra:
        reset_workitems(state)
    items: dict[str, dict[str, Any]] = state.extra["workitems"]
    return items


def calls(state: SandboxState) -> list[tuple[str, str, str]]:
    """The Update and Change State requests received: ``(transaction, uid, detail)``.

    ``("update", uid, "")`` per Update, ``("state", uid, wanted state)`` per Change State, in
    the order they arrived, whatever their answer.
    """
    recorded: list[tuple[str, str, str]] = state.extra.setdefault("ups_calls", [])
    return recorded


def slow_updates(state: SandboxState, seconds: float) -> None:
    """Make every Update request wait ``seconds`` before it is applied (0: at once)."""
    state.extra["ups_update_delay"] = seconds


def _lock(state: SandboxState) -> threading.Lock:
    workitems(state)
    lock: threading.Lock = state.extra["workitems_lock"]
    return lock


# --- helpers --------------------------------------------------------------------------------


class _Refused(Exception):
    """An answer other than success: status code and Warning texts."""

    def __init__(self, status: int, *warnings: str) -> None:
        super().__init__(warnings[0] if warnings else str(status))
        self.status = status
        self.warnings = warnings


def _refusal(exc: _Refused) -> Response:
    response = Response(status_code=exc.status)
    for text in exc.warnings:
        response.headers.append("Warning", f"{_WARN_AGENT} {text}")
    return response


def _first(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value") or []
    return values[0] if values else None


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """A workitem as returned: never with its Transaction UID (PS3.18 11.5.3.3)."""
    return {k: v for k, v in item.items() if k != TRANSACTION_UID}


async def _dataset(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise _Refused(400, "The payload is not DICOM JSON.") from exc
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict) or not all(_TAG.match(k) for k in body):
        raise _Refused(400, "The payload is not one DICOM JSON dataset.")
    return {k.upper(): v for k, v in body.items()}


def _attribute_path(key: str) -> str:
    """``ScheduledStationNameCodeSequence.CodeValue`` or ``00404025.00080100`` -> tags."""
    parts = []
    for part in key.split("."):
        if _TAG.match(part):
            tag = part.upper()
            if keyword_for_tag(int(tag, 16)) == "":
                raise _Refused(400, f"{key!r} is not a DICOM attribute.")
        else:
            number = tag_for_keyword(part)
            if number is None:
                raise _Refused(400, f"{key!r} is not a DICOM attribute keyword or tag.")
            tag = f"{number:08X}"
        parts.append(tag)
    path = ".".join(parts)
    if path not in MATCHING_KEYS:
        names = ", ".join(sorted(_path_keyword(p) for p in MATCHING_KEYS))
        raise _Refused(400, f"{key!r} is not a matching key of this worklist (use {names}).")
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


class _Matcher:
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
            raise _Refused(400, f"{value!r} is not a DT value or range (a-b).") from exc

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


def _int_param(name: str, value: str) -> int:
    if not value.isdigit():
        raise _Refused(400, f"{name}={value!r} is not a non-negative integer.")
    return int(value)


def _transaction_of_query(request: Request) -> str | None:
    """The ``{transaction-uid}`` of ``POST /workitems/{workitem}?{transaction-uid}``."""
    query = request.url.query
    if not query:
        return None
    if "=" not in query:
        return query
    for key in ("transaction-uid", "TransactionUID", "00081195"):
        if request.query_params.get(key):
            return request.query_params[key]
    return None


def _final_state_problem(item: dict[str, Any]) -> str | None:
    """What keeps the item from COMPLETED (PS3.4 CC.2.5.1.3, the parts we could confirm)."""
    performed = item.get(PERFORMED_SEQ, {}).get("Value") or []
    if not performed:
        return "Unified Procedure Step Performed Procedure Sequence (0074,1216) is missing."
    for tag, name in (("00404050", "Start"), ("00404051", "End")):
        if not _first(performed[0], tag):
            return f"Performed Procedure Step {name} DateTime ({tag[:4]},{tag[4:]}) is missing."
    return None


# --- the router -----------------------------------------------------------------------------


def router(state: SandboxState) -> APIRouter:
    """The UPS-RS routes at /dicom-web/workitems over ``state.extra["workitems"]``."""
    api = APIRouter(prefix="/dicom-web/workitems", tags=["UPS-RS"])
    workitems(state)

    @api.get("")
    def search(request: Request) -> Response:
        """Search Transaction (PS3.18 11.9): 200 with matches, 204 when none, 400 if garbled."""
        try:
            matchers: list[_Matcher] = []
            offset, limit = 0, None
            for key, value in request.query_params.multi_items():
                if key == "offset":
                    offset = _int_param(key, value)
                elif key == "limit":
                    limit = _int_param(key, value)
                elif key in _CONTROL_PARAMS:
                    continue  # every result carries all its attributes; fuzzy is not needed
                else:
                    matchers.append(_Matcher(_attribute_path(key), value))
        except _Refused as exc:
            return _refusal(exc)
        with _lock(state):
            found = [
                _public(item)
                for item in workitems(state).values()
                if all(m.matches(item) for m in matchers)
            ]
        found.sort(key=lambda i: (str(_first(i, START_DT) or ""), _first(i, SOP_INSTANCE_UID)))
        page = found[offset : None if limit is None else offset + limit]
        if not page:
            return Response(status_code=204)
        return JSONResponse(page, media_type=MEDIA_TYPE)

    @api.post("")
    async def create(request: Request) -> Response:
        """Create Transaction (PS3.18 11.4): ``POST /workitems?{workitem}``; SCHEDULED only."""
        try:
            item = await _dataset(request)
            uid = request.url.query or _first(item, SOP_INSTANCE_UID)
            if not uid:
                raise _Refused(400, "The Workitem UID is missing.")
            if _first(item, STATE) not in (None, "SCHEDULED") or TRANSACTION_UID in item:
                raise _Refused(400, "A new Workitem must be SCHEDULED, with no Transaction UID.")
            item[SOP_INSTANCE_UID] = _el("UI", uid)
            item[STATE] = _el("CS", "SCHEDULED")
            item.setdefault("00080016", _el("UI", UPS_PUSH_SOP_CLASS))
            with _lock(state):
                if uid in workitems(state):
                    raise _Refused(409, "A Workitem with this UID already exists.")
                workitems(state)[uid] = item
        except _Refused as exc:
            return _refusal(exc)
        location = f"{state.base_url}/dicom-web/workitems/{uid}"
        return Response(status_code=201, headers={"Location": location})

    @api.get("/{uid}")
    def retrieve(uid: str) -> Response:
        """Retrieve Transaction (PS3.18 11.5), without the Transaction UID."""
        with _lock(state):
            item = workitems(state).get(uid)
            if item is None:
                return Response(status_code=404)
            return JSONResponse([_public(item)], media_type=MEDIA_TYPE)

    @api.post("/{uid}")
    async def update(uid: str, request: Request) -> Response:
        """Update Transaction (PS3.18 11.6, UPS N-SET): merges top-level attributes."""
        calls(state).append(("update", uid, ""))
        await asyncio.sleep(float(state.extra.get("ups_update_delay", 0)))
        try:
            changes = await _dataset(request)
            transaction = _transaction_of_query(request)
            if STATE in changes or TRANSACTION_UID in changes:
                raise _Refused(
                    400, "Procedure Step State and Transaction UID change only by Change State."
                )
            if changes.get(SOP_INSTANCE_UID, {}).get("Value", [uid])[0] != uid:
                raise _Refused(400, "The SOP Instance UID of a Workitem cannot change.")
            with _lock(state):
                item = workitems(state).get(uid)
                if item is None:
                    raise _Refused(404)
                current = _first(item, STATE)
                if current in ("COMPLETED", "CANCELED"):
                    raise _Refused(
                        400,
                        "The submitted request is inconsistent with the current state of the "
                        f"Workitem. It is {current} and may no longer be updated.",
                    )
                if current == "IN PROGRESS" and transaction != _first(item, TRANSACTION_UID):
                    raise _Refused(400, "The target URI did not reference a claimed Workitem.")
                if current == "SCHEDULED" and transaction:
                    raise _Refused(
                        409,
                        "The submitted request is inconsistent with the current state of the "
                        "Workitem. It is SCHEDULED, not claimed.",
                    )
                item.update(changes)
        except _Refused as exc:
            return _refusal(exc)
        return Response(status_code=200)

    @api.put("/{uid}/state")
    async def change_state(uid: str, request: Request) -> Response:
        """Change Workitem State (PS3.18 11.7; PS3.4 Table CC.1.1-2)."""
        try:
            body = await _dataset(request)
            transaction = _first(body, TRANSACTION_UID)
            wanted = _first(body, STATE)
            calls(state).append(("state", uid, str(wanted)))
            with _lock(state):
                item = workitems(state).get(uid)
                if item is None:
                    raise _Refused(404)
                if not transaction:
                    raise _Refused(400, "The Transaction UID is missing.")
                if wanted not in ("IN PROGRESS", "COMPLETED", "CANCELED"):
                    raise _Refused(400, f"{wanted!r} is not a state a Workitem can be put in.")
                warning = _transition(item, str(transaction), str(wanted))
        except _Refused as exc:
            return _refusal(exc)
        response = Response(status_code=200)
        if warning:
            response.headers["Warning"] = f"{_WARN_AGENT} {warning}"
        return response

    return api


_INCONSISTENT = "The submitted request is inconsistent with the state of the UPS Instance."


def _transition(item: dict[str, Any], transaction: str, wanted: str) -> str | None:
    """Apply one PS3.4 Table CC.1.1-2 transition to ``item``; returns a success Warning."""
    current = _first(item, STATE)
    owner = _first(item, TRANSACTION_UID)
    if current == "SCHEDULED":
        if wanted != "IN PROGRESS":
            raise _Refused(
                409, _INCONSISTENT, f"The Workitem is SCHEDULED: claim it before it is {wanted}."
            )
        item[STATE] = _el("CS", "IN PROGRESS")
        item[TRANSACTION_UID] = _el("UI", transaction)
        return None
    if current == "IN PROGRESS" and wanted == "IN PROGRESS":
        raise _Refused(
            409,
            _INCONSISTENT,
            "The Workitem is already IN PROGRESS: another performer has claimed it.",
        )
    if current in ("COMPLETED", "CANCELED"):
        if wanted == current and transaction == owner:
            return f"The UPS is already in the requested state of {current}."
        raise _Refused(409, _INCONSISTENT, f"The Workitem is already {current}.")
    if transaction != owner:  # IN PROGRESS -> COMPLETED | CANCELED by a non-owner
        raise _Refused(400, "The Transaction UID is incorrect.")
    if wanted == "COMPLETED":
        problem = _final_state_problem(item)
        if problem:
            raise _Refused(409, _INCONSISTENT, problem)
    else:
        progress = (item.get(PROGRESS_SEQ, {}).get("Value") or [{}])[0]
        progress.setdefault("00404052", _el("DT", _dicom_dt(dt.datetime.now(dt.UTC))))
        item[PROGRESS_SEQ] = _el("SQ", progress)
    item[STATE] = _el("CS", wanted)
    return None


__all__ = [
    "MEDIA_TYPE",
    "build_workitem",
    "calls",
    "reset_workitems",
    "router",
    "slow_updates",
    "workitem_uid",
]
