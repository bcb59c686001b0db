"""The worklist kept fresh by UPS events where the server offers them, searched otherwise.

Phones poll capture's ``GET /api/v1/worklist`` every few seconds while the list is on
screen. Without help each poll would be a UPS-RS Search; with a Worklist Subscription the
service searches only when the worklist changed:

* ``WorklistEvents`` subscribes our AE title to the whole worklist (PS3.18 11.10, Worklist
  Subscription ``/workitems/1.2.840.10008.5.1.4.34.5/subscribers/{aetitle}``), opens the
  WebSocket the answer's Content-Location names (8.10.4 Open Notification Connection; dcm4chee
  sends it as Location) and reads the Event Reports (8.10.5, 11.13: DICOM JSON text frames,
  PS3.4 Table CC.2.4-1: Affected SOP Instance UID (0000,1000), Event Type ID (0000,1002),
  Procedure Step State (0074,1000)). Every report, and every (re)connection, bumps
  ``version``. A lost connection is opened again with backoff (8.10.4.2); meanwhile, and when
  the server offers no subscription (any 4xx), ``live`` is False.
* ``LiveWorklist`` answers today's list from its copy while the events are live and no
  event came since the copy was made (at most ``max_age`` old), else it searches.

The subscription is left in place when the process stops: without a Deletion Lock it holds
nothing back, the server sends nothing while no connection is open (6.9.10.2 of PS3.18 2019a),
and another replica with the same AE title may still be listening.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from capture_api.context.ups_dataset import Workitem
from capture_api.os_threads import NamedThread

log = logging.getLogger("capture.worklist")

#: The Worklist Subscription's well-known UID (PS3.18 Table 11.1.1-1; PS3.4 CC.3.1).
WORKLIST_SUBSCRIPTION = "1.2.840.10008.5.1.4.34.5"
#: Event Type ID (0000,1002) values (PS3.4 Table CC.2.4-1).
EVENT_TYPES = {1: "state report", 2: "cancel requested", 3: "progress", 4: "status", 5: "assigned"}


@dataclass(frozen=True)
class UpsEvent:
    """One Event Report as received (the parts capture reads)."""

    workitem_uid: str | None
    event_type: int | None
    state: str | None


class WorklistEvents:
    """A Worklist Subscription and its WebSocket, read in a thread (``start``/``stop``)."""

    def __init__(
        self,
        base_url: str,
        aet: str,
        *,
        client: httpx.Client | None = None,
        backoff: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.aet = aet
        self.version = 0
        self.live = False
        #: None until the server answered the Subscribe; then whether it offers events.
        self.offered: bool | None = None
        self.received: list[UpsEvent] = []
        self._http = client or httpx.Client(timeout=10)
        self._own = client is None
        self._backoff = backoff
        self._stop = threading.Event()
        self._ws: ClientConnection | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = NamedThread(target=self._run, name="worklist-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            ws.close()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._own:
            self._http.close()

    # --- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                url = self._subscribe()
                if url is not None:
                    self._listen(url)
                    delay = self._backoff[0]  # it was open: start again quickly
            except (httpx.HTTPError, OSError, WebSocketException, ValueError) as exc:
                log.info("worklist events: %s (%s); polling meanwhile", type(exc).__name__, exc)
            self._set_live(False)
            wait = delay if self.offered is not False else self._backoff[1]
            self._stop.wait(wait)
            delay = min(delay * 2, self._backoff[1])

    def _subscribe(self) -> str | None:
        """Subscribe Transaction (11.10): the WebSocket URL, or None when not offered."""
        url = f"{self.base_url}/workitems/{WORKLIST_SUBSCRIPTION}/subscribers/{self.aet}"
        response = self._http.post(url, params={"deletionlock": "false"})
        if response.status_code >= 500:
            response.raise_for_status()
        headers = response.headers
        location = str(headers.get("Content-Location") or headers.get("Location") or "")
        if response.status_code not in (200, 201) or not location:
            if self.offered is not False:
                log.info(
                    "the worklist offers no event subscription (HTTP %d): polling",
                    response.status_code,
                )
            self.offered = False
            return None
        self.offered = True
        return location

    def _listen(self, url: str) -> None:
        """Open Notification Connection (8.10.4) and read Event Reports until it closes."""
        parts = urlsplit(self.base_url)
        origin = Origin(f"{parts.scheme}://{parts.netloc}")
        with connect(url, origin=origin, open_timeout=10, close_timeout=2) as ws:
            self._ws = ws
            try:
                self._set_live(True)  # a fresh connection: what happened before is unknown
                for message in ws:
                    self._handle(message)
            finally:
                self._ws = None

    def _handle(self, message: str | bytes) -> None:
        try:
            body = json.loads(message)
        except ValueError:
            log.info("worklist events: a frame that is not DICOM JSON was ignored")
            return
        uid, kind, state = (_value(body, t) for t in ("00001000", "00001002", "00741000"))
        event = UpsEvent(
            workitem_uid=str(uid) if uid is not None else None,
            event_type=kind if isinstance(kind, int) else None,
            state=str(state) if state is not None else None,
        )
        with self._lock:
            self.received.append(event)
            del self.received[:-100]
            self.version += 1

    def _set_live(self, live: bool) -> None:
        with self._lock:
            self.live = live
            self.version += 1


class LiveWorklist:
    """Today's worklist: a copy while UPS events say nothing changed, else a search."""

    def __init__(self, events: WorklistEvents | None, max_age: float = 60.0) -> None:
        self.events = events
        self.max_age = max_age
        self._lock = threading.Lock()
        self._copy: tuple[int, dt.date, float, list[Workitem]] | None = None

    @property
    def mode(self) -> str:
        """``events`` while the subscription's WebSocket is open, else ``polling``."""
        return "events" if self.events is not None and self.events.live else "polling"

    def today(self, search: Callable[[], list[Workitem]]) -> list[Workitem]:
        """The copy when it is still good, else ``search()`` (kept for the next caller)."""
        version = self.events.version if self.events is not None else -1
        day = dt.date.today()
        with self._lock:
            copy = self._copy
        if (
            copy is not None
            and self.mode == "events"
            and copy[0] == version
            and copy[1] == day
            and time.monotonic() - copy[2] < self.max_age
        ):
            return list(copy[3])
        items = search()
        with self._lock:
            self._copy = (version, day, time.monotonic(), list(items))
        return items

    def changed(self) -> None:
        """Our own claim or release changed the list: the next caller searches."""
        with self._lock:
            self._copy = None


def _value(body: object, tag: str) -> object:
    element = body.get(tag) if isinstance(body, dict) else None
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if isinstance(values, list) and values else None
