"""Encounter worklist over UPS-RS (DICOM PS3.18 chapter 11; UPS behaviour in PS3.4 Annex CC).

The IHE Encounter-Based Imaging Workflow lets a lightweight modality (this service) find the
patient and visit to photograph on a worklist instead of having them typed in:

1. ``today()`` runs the Search Transaction (PS3.18 11.9) for today's SCHEDULED workitems of
   our station: ``ScheduledProcedureStepStartDateTime`` range (C-FIND range matching, PS3.4
   C.2.2.2.5), ``ProcedureStepState=SCHEDULED``, ``ScheduledStationNameCodeSequence.CodeValue``
   and/or ``WorklistLabel``; 204 means an empty worklist.
2. ``claim()`` takes ownership with Change Workitem State (PS3.18 11.7) to IN PROGRESS and a
   new Transaction UID (0008,1195) that only we know (PS3.4 CC.1.1). It first looks at the
   state the Retrieve showed: an item IN PROGRESS, COMPLETED or CANCELED is refused here
   (``WorkitemTaken``, ``WorkitemCompleted``, ``WorkitemCanceled``) without a request the
   server would refuse. If another device is faster between the two, the server answers 409
   (dcm4chee) or 400 "The Transaction UID is incorrect." (PS3.4 Table CC.1.1-2, C301;
   PS3.18 Table 11.7.3-1): either way the item is read again and the refusal says why.
3. ``complete()`` meets the Final State requirements with Update Workitem (PS3.18 11.6, N-SET,
   ``ups_dataset.completion_update``), then Change State to COMPLETED. A server that refuses
   either (400 "the dataset did not conform", PS3.18 11.6.3.1; 409 final state not met,
   Table CC.1.1-2 C304) raises ``WorklistRefused`` with its Warning texts: the completion
   queue retries it once the cause is fixed.
4. ``release()`` gives a claimed item back: Update with the CANCELED final state attributes
   (Procedure Step Discontinuation Reason Code Sequence etc.), then Change State to CANCELED
   (PS3.4 CC.2.1: an owner cancels its own item; an item cannot go back to SCHEDULED, C303).

Bodies are DICOM JSON (PS3.18 F.2, ``application/dicom+json``), attributes in tag order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import httpx
from pydicom import Dataset
from pydicom.uid import generate_uid

from capture_api.capture.retrieval import Retrieval
from capture_api.context.ups_dataset import (
    CANCELED,
    COMPLETED,
    IN_PROGRESS,
    MEDIA_TYPE,
    RELEASED,
    SCHEDULED,
    VL_PHOTOGRAPHIC_IMAGE,
    ProducedInstance,
    Workitem,
    WorklistError,
    cancel_update,
    completion_update,
    dicom_dt,
    from_json,
    to_json,
)

__all__ = [
    "CANCELED",
    "COMPLETED",
    "IN_PROGRESS",
    "MEDIA_TYPE",
    "SCHEDULED",
    "TAKEN_MESSAGE",
    "VL_PHOTOGRAPHIC_IMAGE",
    "ProducedInstance",
    "Workitem",
    "WorkitemCanceled",
    "WorkitemClosed",
    "WorkitemCompleted",
    "WorkitemNotFound",
    "WorkitemTaken",
    "WorklistClient",
    "WorklistError",
    "WorklistRefused",
    "WorklistUnavailable",
]

#: Attributes we ask for on top of the UPS return keys (PS3.18 11.9.1.2 includefield):
#: Admission ID and Issuer of Admission ID Sequence (Visit Identification, IHE EBIW).
_INCLUDE_FIELDS = "00380010,00380014,00741204,00404018"

TAKEN_MESSAGE = (
    "this encounter is already being photographed on another device "
    "(the worklist item is in progress)"
)
COMPLETED_MESSAGE = "this encounter is already completed on the worklist: nothing is left to do"
CANCELED_MESSAGE = (
    "this encounter was canceled on the worklist: it is no longer scheduled for photos"
)


class WorklistUnavailable(WorklistError):
    """The worklist could not be reached or failed (5xx, timeout, network): try again later."""


class WorkitemNotFound(WorklistError):
    """The worklist has no workitem with that UID (it may have been removed)."""


class WorkitemClosed(WorklistError):
    """The workitem is not open to this device: claimed elsewhere, completed or canceled."""

    #: What the phone names the case by (the API's ``code``; web_client/i18n/en.js).
    code: ClassVar[str] = "workitem-closed"


class WorkitemTaken(WorkitemClosed):
    """Another performer has claimed the workitem (it is IN PROGRESS)."""

    code: ClassVar[str] = "workitem-taken"


class WorkitemCompleted(WorkitemClosed):
    """The workitem is already COMPLETED."""

    code: ClassVar[str] = "workitem-completed"


class WorkitemCanceled(WorkitemClosed):
    """The workitem was CANCELED (released, or canceled by the scheduler)."""

    code: ClassVar[str] = "workitem-canceled"


class WorklistRefused(WorklistError):
    """The worklist server refused an Update or a state change (4xx): its reason is kept."""

    code: ClassVar[str] = "worklist-refused"

    def __init__(self, message: str, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class WorklistClient:
    """A UPS-RS user agent for one station's encounter worklist (PS3.18 chapter 11).

    ``base_url`` is the DICOMweb base (``.../dicom-web``); the client adds ``/workitems``.
    ``aet`` is our AE title, sent in the User-Agent and used to subscribe (11.10).
    """

    def __init__(
        self,
        base_url: str,
        *,
        station_code: str | None = None,
        label: str | None = None,
        aet: str = "CAPTURE",
        client: httpx.Client | None = None,
        timeout: float = 15,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.station_code = station_code
        self.label = label
        self.aet = aet
        self._own = client is None
        self._http = client or httpx.Client(timeout=timeout)
        self._headers = {"Accept": MEDIA_TYPE, "User-Agent": f"capture-api (AE {aet})"}

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> WorklistClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transactions -----------------------------------------------------------------------

    def search(self, params: Sequence[tuple[str, str]]) -> list[Workitem]:
        """Search Transaction (PS3.18 11.9): the matching workitems; 204 means none."""
        response = self._send("GET", "/workitems", params=list(params))
        if response.status_code == 204:
            return []
        self._check(response, "search the worklist")
        return [Workitem.from_dataset(ds) for ds in _datasets(response)]

    def today(self, now: dt.datetime | None = None) -> list[Workitem]:
        """Today's SCHEDULED workitems of our station (and label), earliest first.

        "Today" is the calendar day of ``now`` (default: the local time), sent as a DT range
        with its UTC offset (PS3.4 C.2.2.2.5) so the worklist does not guess our time zone.
        """
        if now is None or now.tzinfo is None:
            now = (now or dt.datetime.now()).astimezone()
        start = dt.datetime.combine(now.date(), dt.time.min, tzinfo=now.tzinfo)
        end = dt.datetime.combine(now.date(), dt.time.max, tzinfo=now.tzinfo)
        params = [
            ("ScheduledProcedureStepStartDateTime", f"{dicom_dt(start)}-{dicom_dt(end)}"),
            ("ProcedureStepState", SCHEDULED),
        ]
        if self.station_code:
            params.append(("ScheduledStationNameCodeSequence.CodeValue", self.station_code))
        if self.label:
            params.append(("WorklistLabel", self.label))
        params.append(("includefield", _INCLUDE_FIELDS))
        items = self.search(params)
        return sorted(items, key=lambda w: (w.scheduled_start or end, w.uid))

    def get(self, uid: str) -> Workitem:
        """Retrieve Transaction (PS3.18 11.5)."""
        return Workitem.from_dataset(self._retrieve(uid))

    def claim(self, uid: str, current: Workitem | None = None) -> str:
        """Take the workitem (SCHEDULED -> IN PROGRESS); returns our new Transaction UID.

        ``current`` is the item as just retrieved (else it is retrieved here). Keep the
        Transaction UID: it is the only proof of ownership (PS3.4 CC.1.1), needed to complete
        or release. Raises a ``WorkitemClosed`` when the item is not SCHEDULED.
        """
        _must_be_scheduled(current or self.get(uid))
        transaction_uid = str(generate_uid())
        try:
            self._change_state(uid, transaction_uid, IN_PROGRESS)
        except WorklistRefused:
            _must_be_scheduled(self.get(uid))  # someone was faster: say who (usually taken)
            raise
        return transaction_uid

    def complete(
        self,
        uid: str,
        transaction_uid: str,
        instances: Iterable[ProducedInstance],
        retrieval: Retrieval,
        *,
        started_at: dt.datetime | None = None,
    ) -> None:
        """Record the produced instances (Update, PS3.18 11.6), then COMPLETED (11.7).

        Completing an item that is already COMPLETED is a no-op (a retry after a lost
        answer); one that was CANCELED meanwhile raises ``WorkitemCanceled``.
        """
        current = self._retrieve(uid)
        if _state(current) == COMPLETED:
            return
        _must_be_open(current)
        update = completion_update(current, list(instances), retrieval, started_at)
        try:
            self._update(uid, transaction_uid, update)
            self._change_state(uid, transaction_uid, COMPLETED)
        except WorklistRefused as exc:
            after = self._retrieve(uid)
            if _state(after) == COMPLETED:
                return
            _must_be_open(after)
            raise WorklistRefused(
                f"the worklist server refused the completion: {exc.reason}", exc.status, exc.reason
            ) from exc

    def release(
        self,
        uid: str,
        transaction_uid: str,
        *,
        reason: Any = RELEASED,
        text: str = "discontinued: released from capture, the photos are still to be taken",
        instances: Sequence[ProducedInstance] = (),
        retrieval: Retrieval | None = None,
    ) -> None:
        """Give a claimed workitem back: the CANCELED final state, then CANCELED (11.7).

        ``reason`` is a CID 9300 code (default: rescheduling recommended). An item already
        CANCELED is a no-op; one COMPLETED raises ``WorkitemCompleted``.
        """
        current = self._retrieve(uid)
        state = _state(current)
        if state == CANCELED:
            return
        if state == COMPLETED:
            raise WorkitemCompleted(COMPLETED_MESSAGE)
        update = cancel_update(current, reason, text[:10240], instances, retrieval)
        try:
            self._update(uid, transaction_uid, update)
            self._change_state(uid, transaction_uid, CANCELED)
        except WorklistRefused as exc:
            if _state(self._retrieve(uid)) == CANCELED:
                return
            raise WorklistRefused(
                f"the worklist server refused to release the item: {exc.reason}",
                exc.status,
                exc.reason,
            ) from exc

    # --- plumbing ---------------------------------------------------------------------------

    def _retrieve(self, uid: str) -> Dataset:
        response = self._send("GET", f"/workitems/{uid}")
        if response.status_code in (404, 410):
            raise WorkitemNotFound(f"the worklist has no item {uid}")
        self._check(response, "read the worklist item")
        found = _datasets(response)
        if not found:
            raise WorklistError(f"the worklist answered an empty body for item {uid}")
        return found[0]

    def _update(self, uid: str, transaction_uid: str, ds: Dataset) -> None:
        response = self._send("POST", f"/workitems/{uid}?{transaction_uid}", content=to_json(ds))
        if response.status_code in (404, 410):
            raise WorkitemNotFound(f"the worklist has no item {uid}")
        self._check(response, "record the photos on the worklist item")

    def _change_state(self, uid: str, transaction_uid: str, state: str) -> None:
        ds = Dataset()
        ds.TransactionUID = transaction_uid
        ds.ProcedureStepState = state
        response = self._send("PUT", f"/workitems/{uid}/state", content=to_json(ds))
        if response.status_code in (404, 410):
            raise WorkitemNotFound(f"the worklist has no item {uid}")
        self._check(response, f"set the worklist item {state}")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(self._headers)
        if "content" in kwargs:
            headers["Content-Type"] = MEDIA_TYPE
        try:
            response = self._http.request(
                method, f"{self.base_url}{path}", headers=headers, **kwargs
            )
        except httpx.TransportError as exc:
            raise WorklistUnavailable(
                f"the worklist at {self.base_url} cannot be reached ({type(exc).__name__}); "
                "try again in a moment"
            ) from exc
        if response.status_code >= 500:
            raise WorklistUnavailable(
                f"the worklist failed (HTTP {response.status_code}); try again in a moment"
            )
        return response

    @staticmethod
    def _check(response: httpx.Response, doing: str) -> None:
        if response.is_success:
            return
        reason = warnings_of(response) or response.reason_phrase or "no reason given"
        raise WorklistRefused(
            f"could not {doing}: the worklist answered {response.status_code} ({reason})",
            response.status_code,
            f"{response.status_code} {reason}",
        )


# --- helpers ------------------------------------------------------------------------------------


def warnings_of(response: httpx.Response) -> str:
    """The response's Warning texts, joined (PS3.18 8.4: ``299 <service>: <text>``)."""
    return "; ".join(_warning_text(w) for w in response.headers.get_list("Warning"))


def _warning_text(value: str) -> str:
    """``299 agent: text`` -> ``text`` (the agent is one token, then the text)."""
    parts = value.split(" ", 2)
    return parts[2] if len(parts) == 3 and parts[0].isdigit() else value


def _datasets(response: httpx.Response) -> list[Dataset]:
    try:
        body = response.json()
    except ValueError as exc:
        raise WorklistError("the worklist answered something that is not DICOM JSON") from exc
    return from_json(body)


def _state(ds: Dataset) -> str:
    return str(ds.get("ProcedureStepState", ""))


def _must_be_scheduled(item: Workitem) -> None:
    """Refuse a claim of an item that is not SCHEDULED, saying which state it is in."""
    if item.state == IN_PROGRESS:
        raise WorkitemTaken(TAKEN_MESSAGE)
    if item.state == COMPLETED:
        raise WorkitemCompleted(COMPLETED_MESSAGE)
    if item.state == CANCELED:
        raise WorkitemCanceled(CANCELED_MESSAGE)


def _must_be_open(ds: Dataset) -> None:
    """Refuse to complete an item that is CANCELED (or was never claimed)."""
    state = _state(ds)
    if state == CANCELED:
        raise WorkitemCanceled(CANCELED_MESSAGE)
    if state == SCHEDULED:
        raise WorklistError(
            "the worklist item is SCHEDULED again, not claimed by us: it cannot be completed"
        )
