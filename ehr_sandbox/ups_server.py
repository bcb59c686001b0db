"""A small but faithful UPS-RS origin server (DICOM PS3.18 chapter 11, Worklist Service).

It serves the sandbox's encounters as an encounter worklist (IHE EBIW "Get Encounter Imaging
Context" over UPS-RS) at ``{base}/dicom-web/workitems`` in ``application/dicom+json``, and it
refuses what a strict server refuses, so that tests fail where a real one would refuse us:

- Every body is DICOM JSON Model (PS3.18 F.2.2): requests whose attributes (sequence items
  included) are not in ascending tag order, lack a ``vr`` or carry the wrong one are refused
  (400); answers are written in tag order too (``ups_rules.json_form_problem``).
- Search (11.9): C-FIND matching (PS3.4 C.2.2.2) on the keys the capture app uses; 200 with
  an array, 204 when nothing matches, 400 for a key it does not know (``ups_search``).
- Retrieve (11.5): the Transaction UID of an IN PROGRESS item is never returned (11.5.3.3).
- Create (11.4): ``POST /workitems?{workitem}``, SCHEDULED only; the Scheduled Procedure Step
  Modification DateTime (0040,4010) is the server's.
- Update (11.6): ``POST /workitems/{workitem}?{transaction-uid}``; 400 once COMPLETED or
  CANCELED or with a wrong or missing Transaction UID (11.6.3.1), 409 for an item not claimed;
  400 when an Output Information Sequence item is not a PS3.3 Table 10-3b item (no retrieval
  sequence (0040,E021)-(0040,E025), "the dataset did not conform", 11.6.3.1).
- Change State (11.7): the PS3.4 Table CC.1.1-2 state machine with the Warning texts of
  Table 11.7.3-2. A missing or wrong Transaction UID is 400 "The Transaction UID is missing."
  / "...is incorrect." (C301) -- also for a second claimer of an IN PROGRESS item, whose new
  Transaction UID is not the owner's; a transition the state does not allow is 409 "The
  submitted request is inconsistent with the state of the UPS Instance." (C300, C302, C310);
  COMPLETED or CANCELED without the Final State attributes of Table CC.2.5-3 is 409 (C304),
  the missing attribute named in a second Warning (``ups_rules.final_state_problem``).
- Subscribe/Unsubscribe/Suspend (11.10-11.12) and the Event Reports over a WebSocket
  (8.10.4-5, 11.13): ``ups_events``.

Every Update, Change State and Search request is recorded (``calls``), so tests can count how
often a workitem was completed or the worklist searched; ``slow_updates`` makes Updates take a
while (a slow worklist).

Synthetic data only. Times are stored with an explicit ``+0000`` offset; a query DT without
an offset is read as UTC (the sandbox's "local" time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect

from ehr_sandbox import data
from ehr_sandbox import ups_events as events
from ehr_sandbox.state import SandboxState
from ehr_sandbox.ups_rules import Refused, final_state_problem, json_form_problem, output_problem
from ehr_sandbox.ups_search import (
    ADMISSION_ID,
    CODE_VALUE,
    CONTROL_PARAMS,
    PATIENT_ID,
    SOP_INSTANCE_UID,
    START_DT,
    STATE,
    STATION_SEQ,
    WORKLIST_LABEL_TAG,
    Matcher,
    attribute_path,
    int_param,
)

MEDIA_TYPE = "application/dicom+json"
UPS_PUSH_SOP_CLASS = "1.2.840.10008.5.1.4.34.6.1"
SCHEME = "99SANDBOX"
WORKLIST_LABEL = "Sandbox clinical photography"
_WARN_AGENT = "299 sandbox-ups:"

# Tags (8 hex digits, as in DICOM JSON).
PATIENT_NAME = "00100010"
TRANSACTION_UID = "00081195"
MODIFIED_DT = "00404010"
PERFORMED_SEQ = "00741216"
PROGRESS_SEQ = "00741002"
#: Attributes only the server sets (PS3.4 Table CC.2.5-3: not N-SET by the performer).
_SERVER_ONLY = {STATE, TRANSACTION_UID, MODIFIED_DT, "00080016"}

_STATIONS = {
    "Dermatology": ("DERM-PHONE-01", "Dermatology clinic photo station"),
    "Emergency": ("DERM-PHONE-01", "Dermatology clinic photo station"),
    "Paediatrics": ("DERM-PHONE-01", "Dermatology clinic photo station"),
    "Wound care": ("WOUND-PHONE-01", "Wound care photo station"),
}

# Warning texts of PS3.18 Table 11.7.3-2 (Change State) and 11.6.3-2 (Update).
TXN_MISSING = "The Transaction UID is missing."
TXN_INCORRECT = "The Transaction UID is incorrect."
INCONSISTENT = "The submitted request is inconsistent with the state of the UPS Instance."
UPDATE_INCONSISTENT = (
    "The submitted request is inconsistent with the current state of the Workitem."
)
NOT_CLAIMED = "The target URI did not reference a claimed Workitem."


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
        PATIENT_NAME: _el("PN", {"Alphabetic": _person_name(name)}),
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
        MODIFIED_DT: _el("DT", _dicom_dt(dt.datetime.now(dt.UTC))),
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


def _person_name(name: dict[str, Any]) -> str:
    """FHIR HumanName -> PN: family, first given name, the other given names as middle."""
    given = [str(g) for g in name.get("given", [])]
    parts = [str(name.get("family", "")), given[0] if given else "", " ".join(given[1:])]
    return "^".join(parts).rstrip("^")


def reset_workitems(state: SandboxState) -> dict[str, dict[str, Any]]:
    """(Re)build one SCHEDULED workitem per sandbox encounter; returns them keyed by UID.

    The recorded calls and any ``slow_updates`` are reset too; Worklist subscribers stay
    subscribed (to the new workitems), and subscriptions are offered again.
    """
    state.extra["ups_calls"] = []
    state.extra.pop("ups_update_delay", None)
    events.offer_events(state, True)
    follow_the_calendar(state)
    items: dict[str, dict[str, Any]] = {}
    for encounter in state.encounters.values():
        patient_id = str(encounter["subject"]["reference"]).split("/", 1)[1]
        item = build_workitem(encounter, state.patients[patient_id])
        items[item[SOP_INSTANCE_UID]["Value"][0]] = item
    state.extra["workitems"] = items
    state.extra["daily_workitems"] = set(items)
    state.extra.setdefault("workitems_lock", threading.Lock())
    for uid in items:
        events.subscribe_new(state, uid)
    return items


def workitems(state: SandboxState) -> dict[str, dict[str, Any]]:
    """The sandbox's workitems (built on first use), scheduled today."""
    if "workitems" not in state.extra:
        reset_workitems(state)
    follow_the_calendar(state)
    items: dict[str, dict[str, Any]] = state.extra["workitems"]
    return items


def follow_the_calendar(state: SandboxState, today: dt.date | None = None) -> None:
    """The sandbox's clinic is scheduled for today, every day: once the local date is past
    ``state.schedule_day``, its encounters and the workitems built from them move to the same
    hours of ``today`` (items created by a request keep their dates).

    A sandbox left running overnight (``make run``), or a test session that crosses midnight,
    otherwise shows capture an empty worklist: capture asks for today's items.
    """
    today = today or dt.date.today()
    if state.schedule_day == today:
        return
    days = today - state.schedule_day
    for encounter in state.encounters.values():
        period = encounter.get("period", {})
        if "start" not in period:  # one a test made without a time: nothing to move
            continue
        start = dt.datetime.fromisoformat(period["start"]).astimezone()
        period["start"] = data.at_hour(start.date() + days, start.time()).isoformat()
    items = state.extra.get("workitems", {})
    for uid in state.extra.get("daily_workitems", ()):
        element = items.get(uid, {}).get(START_DT, {})
        if not element.get("Value"):
            continue
        start = dt.datetime.strptime(element["Value"][0], "%Y%m%d%H%M%S%z").astimezone()
        element["Value"] = [_dicom_dt(data.at_hour(start.date() + days, start.time()))]
    state.schedule_day = today


def calls(state: SandboxState) -> list[tuple[str, str, str]]:
    """The requests received: ``(transaction, uid, detail)``.

    ``("update", uid, "")`` per Update, ``("state", uid, wanted state)`` per Change State,
    ``("search", "", query)`` per Search, in the order they arrived, whatever their answer.
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


def _refusal(exc: Refused) -> Response:
    response = Response(status_code=exc.status)
    for text in exc.warnings:
        response.headers.append("Warning", f"{_WARN_AGENT} {text}")
    return response


def _dicom_json(body: Any, status: int = 200) -> Response:
    """An answer in DICOM JSON with every dataset's attributes in tag order (F.2.2)."""
    return Response(json.dumps(body, sort_keys=True), status, media_type=MEDIA_TYPE)


def _first(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value") or []
    return values[0] if values else None


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """A workitem as returned: never with its Transaction UID (PS3.18 11.5.3.3)."""
    return {k: v for k, v in item.items() if k != TRANSACTION_UID}


async def _dataset(request: Request) -> dict[str, Any]:
    """The one DICOM JSON dataset of a request, refused unless in F.2.2 form."""
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise Refused(400, "The payload is not DICOM JSON.") from exc
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        raise Refused(400, "The payload is not one DICOM JSON dataset.")
    problem = json_form_problem(body)
    if problem:
        raise Refused(400, f"The payload is not in DICOM JSON form: {problem}.")
    return body


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


def _now() -> dict[str, Any]:
    return _el("DT", _dicom_dt(dt.datetime.now(dt.UTC)))


# --- the router -----------------------------------------------------------------------------


def router(state: SandboxState) -> APIRouter:
    """The UPS-RS routes at /dicom-web over ``state.extra["workitems"]``."""
    api = APIRouter(prefix="/dicom-web", tags=["UPS-RS"])
    workitems(state)

    @api.get("/workitems")
    def search(request: Request) -> Response:
        """Search Transaction (PS3.18 11.9): 200 with matches, 204 when none, 400 if garbled."""
        calls(state).append(("search", "", request.url.query))
        try:
            matchers: list[Matcher] = []
            offset, limit = 0, None
            for key, value in request.query_params.multi_items():
                if key == "offset":
                    offset = int_param(key, value)
                elif key == "limit":
                    limit = int_param(key, value)
                elif key in CONTROL_PARAMS:
                    continue  # every result carries all its attributes; fuzzy is not needed
                else:
                    matchers.append(Matcher(attribute_path(key), value))
        except Refused as exc:
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
        return _dicom_json(page)

    @api.post("/workitems")
    async def create(request: Request) -> Response:
        """Create Transaction (PS3.18 11.4): ``POST /workitems?{workitem}``; SCHEDULED only."""
        try:
            item = await _dataset(request)
            uid = request.url.query or _first(item, SOP_INSTANCE_UID)
            if not uid:
                raise Refused(400, "The Workitem UID is missing.")
            if _first(item, STATE) not in (None, "SCHEDULED") or TRANSACTION_UID in item:
                raise Refused(400, "A new Workitem must be SCHEDULED, with no Transaction UID.")
            item[SOP_INSTANCE_UID] = _el("UI", uid)
            item[STATE] = _el("CS", "SCHEDULED")
            item[MODIFIED_DT] = _now()
            item.setdefault("00080016", _el("UI", UPS_PUSH_SOP_CLASS))
            item.setdefault("00741200", _el("CS", "MEDIUM"))
            item.setdefault("00404041", _el("CS", "READY"))
            with _lock(state):
                if uid in workitems(state):
                    raise Refused(409, "A Workitem with this UID already exists.")
                workitems(state)[uid] = item
        except Refused as exc:
            return _refusal(exc)
        events.subscribe_new(state, uid)
        events.created(state, item)
        location = f"{state.base_url}/dicom-web/workitems/{uid}"
        return Response(status_code=201, headers={"Location": location})

    @api.get("/workitems/{uid}")
    def retrieve(uid: str) -> Response:
        """Retrieve Transaction (PS3.18 11.5), without the Transaction UID."""
        with _lock(state):
            item = workitems(state).get(uid)
            if item is None:
                return Response(status_code=404)
            return _dicom_json([_public(item)])

    @api.post("/workitems/{uid}")
    async def update(uid: str, request: Request) -> Response:
        """Update Transaction (PS3.18 11.6, UPS N-SET): merges top-level attributes."""
        calls(state).append(("update", uid, ""))
        await asyncio.sleep(float(state.extra.get("ups_update_delay", 0)))
        try:
            changes = await _dataset(request)
            with _lock(state):
                item = workitems(state).get(uid)
                if item is None:
                    raise Refused(404)
                _check_update(item, changes, uid, _transaction_of_query(request))
                item.update(changes)
        except Refused as exc:
            return _refusal(exc)
        return Response(status_code=200)

    @api.put("/workitems/{uid}/state")
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
                    raise Refused(404)
                if wanted not in ("IN PROGRESS", "COMPLETED", "CANCELED"):
                    raise Refused(400, f"{wanted!r} is not a state a Workitem can be put in.")
                if not transaction:
                    raise Refused(400, TXN_MISSING)
                before = _first(item, STATE)
                warning = _transition(item, str(transaction), str(wanted))
                changed = _first(item, STATE) != before
        except Refused as exc:
            return _refusal(exc)
        if changed:
            events.state_changed(state, item)
        response = Response(status_code=200)
        if warning:
            response.headers["Warning"] = f"{_WARN_AGENT} {warning}"
        return response

    _subscription_routes(api, state)
    return api


def _check_update(
    item: dict[str, Any], changes: dict[str, Any], uid: str, transaction: str | None
) -> None:
    """Refuse an Update PS3.18 11.6 / PS3.4 CC.2.6 would refuse."""
    if set(changes) & _SERVER_ONLY:
        names = ", ".join(sorted(set(changes) & _SERVER_ONLY))
        raise Refused(400, f"{names} cannot be set by an Update (Change State sets the state).")
    if changes.get(SOP_INSTANCE_UID, {}).get("Value", [uid])[0] != uid:
        raise Refused(400, "The SOP Instance UID of a Workitem cannot change.")
    current = _first(item, STATE)
    if current in ("COMPLETED", "CANCELED"):  # 11.6.2: 400
        raise Refused(400, UPDATE_INCONSISTENT, f"It is {current} and may no longer be updated.")
    if current == "SCHEDULED" and transaction:
        raise Refused(409, NOT_CLAIMED, "It is SCHEDULED: claim it first.")
    if current == "IN PROGRESS" and transaction != _first(item, TRANSACTION_UID):
        raise Refused(400, NOT_CLAIMED, TXN_INCORRECT if transaction else TXN_MISSING)
    for performed in changes.get(PERFORMED_SEQ, {}).get("Value") or []:
        problem = output_problem(performed)
        if problem:  # 11.6.3.1: 400 "the dataset did not conform to the requirements"
            raise Refused(400, f"The dataset does not conform: {problem}.")


def _transition(item: dict[str, Any], transaction: str, wanted: str) -> str | None:
    """Apply one PS3.4 Table CC.1.1-2 transition to ``item``; returns a success Warning."""
    current = _first(item, STATE)
    owner = _first(item, TRANSACTION_UID)
    if current == "SCHEDULED":
        if wanted != "IN PROGRESS":  # C310: not yet IN PROGRESS
            raise Refused(409, INCONSISTENT, f"The Workitem is SCHEDULED, not {wanted}.")
        item[STATE] = _el("CS", "IN PROGRESS")
        item[TRANSACTION_UID] = _el("UI", transaction)
        return None
    if current in ("COMPLETED", "CANCELED"):
        if wanted == current:  # B304 / B306: a warning, not a failure
            return f"The UPS is already in the requested state of {current}."
        raise Refused(409, INCONSISTENT, f"The Workitem is already {current}.")  # C300
    if transaction != owner:  # C301: only the owner's Transaction UID changes its state
        raise Refused(400, TXN_INCORRECT)
    if wanted == "IN PROGRESS":  # C302: the owner claims it again
        raise Refused(409, INCONSISTENT, "The Workitem is already IN PROGRESS.")
    problem = final_state_problem(item, wanted)
    if problem:  # C304: the Final State requirements are not met
        raise Refused(409, INCONSISTENT, f"{problem} (PS3.4 Table CC.2.5-3).")
    item[STATE] = _el("CS", wanted)
    item.pop(TRANSACTION_UID, None)
    return None


# --- subscriptions (PS3.18 11.10-11.12, 8.10.4) --------------------------------------------------


def _subscription_routes(api: APIRouter, state: SandboxState) -> None:
    @api.post("/workitems/{resource}/subscribers/{aet}")
    def subscribe(resource: str, aet: str) -> Response:
        """Subscribe Transaction (11.10): 201 and the WebSocket's URL in Content-Location."""
        if not events.offered(state):
            return Response(status_code=404)
        if resource == events.FILTERED_WORKLIST:
            return _refusal(Refused(403, "Filtered Worklist Subscriptions are not supported."))
        with _lock(state):
            existing = list(workitems(state))
            if resource != events.WORKLIST and resource not in existing:
                return Response(status_code=404)
        events.subscribe(state, resource, aet, existing)
        ws = state.base_url.replace("http", "ws", 1) + f"/dicom-web/ws/subscribers/{aet}"
        return Response(status_code=201, headers={"Content-Location": ws})

    @api.delete("/workitems/{resource}/subscribers/{aet}")
    def unsubscribe(resource: str, aet: str) -> Response:
        """Unsubscribe Transaction (11.11): 200, or 404 when there was no such subscription."""
        return Response(status_code=200 if events.unsubscribe(state, resource, aet) else 404)

    @api.post("/workitems/{resource}/subscribers/{aet}/suspend")
    def suspend(resource: str, aet: str) -> Response:
        """Suspend Global Subscription (11.12)."""
        found = resource == events.WORKLIST and events.suspend(state, aet)
        return Response(status_code=200 if found else 404)

    @api.websocket("/ws/subscribers/{aet}")
    async def channel(websocket: WebSocket, aet: str) -> None:
        """Open Notification Connection (8.10.4): Event Reports as text frames (8.10.5)."""
        if not events.offered(state):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        opened = events.open_channel(state, aet)
        sender = asyncio.create_task(_send_reports(websocket, opened[1]))
        try:
            while True:  # the user agent sends nothing; this notices it leaving
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()
            events.close_channel(state, aet, opened)


async def _send_reports(websocket: WebSocket, queue: asyncio.Queue[str]) -> None:
    while True:
        await websocket.send_text(await queue.get())


__all__ = [
    "MEDIA_TYPE",
    "PATIENT_ID",
    "STATE",
    "build_workitem",
    "calls",
    "reset_workitems",
    "router",
    "slow_updates",
    "workitem_uid",
    "workitems",
]
