"""UPS event subscriptions and their WebSocket channel, for the sandbox's UPS-RS server.

* Subscribe (PS3.18 11.10): ``POST /workitems/{workitem}/subscribers/{aetitle}``, the Worklist
  (``1.2.840.10008.5.1.4.34.5``) or Filtered Worklist (``...34.5.1``, answered 403 "Filtered
  Worklist Subscriptions are not supported.", Table 11.10.3-2) instead of a workitem; 201 with
  Content-Location naming the WebSocket (``ws://.../dicom-web/ws/subscribers/{aetitle}``).
  A Worklist Subscription covers every current and future workitem (PS3.4 CC.2.3).
* Unsubscribe (11.11): ``DELETE`` of the same resource, 200 (404 when there was none);
  Suspend (11.12): ``POST .../subscribers/{aetitle}/suspend`` stops the automatic subscription
  of new workitems.
* Open Notification Connection (8.10.4): a WebSocket per AE title (several connections of one
  AE title each get every report); Send Event Report (8.10.5, 11.13): text frames holding a
  DICOM JSON dataset: Affected SOP Class UID (0000,0002), Message ID (0000,0110), Affected SOP
  Instance UID (0000,1000), Event Type ID (0000,1002) and the event's attributes (PS3.4 Table
  CC.2.4-1: 1 UPS State Report with Procedure Step State and Input Readiness State, plus the
  Reason For Cancellation and Discontinuation Reason Code Sequence when CANCELED; 5 UPS
  Assigned with the Scheduled Station Name Code Sequence). Nothing is queued for an AE title
  without an open connection (PS3.18 2019a 6.9.10.2).

``offer_events(state, False)`` makes the server one without the UPS Watch/Event SOP Classes:
Subscribe answers 404 and no WebSocket is served.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from ehr_sandbox.state import SandboxState

WORKLIST = "1.2.840.10008.5.1.4.34.5"
FILTERED_WORKLIST = "1.2.840.10008.5.1.4.34.5.1"
#: Affected SOP Class UID of the reports: the UPS Event SOP Class (PS3.18 11.13 example).
UPS_EVENT_SOP_CLASS = "1.2.840.10008.5.1.4.34.6.4"
STATE_REPORT, ASSIGNED = 1, 5


@dataclass
class Subscriptions:
    """Who is subscribed to what, and the open channels (one lock for all)."""

    worklist: set[str] = field(default_factory=set)  # AE titles with a Worklist Subscription
    workitems: dict[str, set[str]] = field(default_factory=dict)  # workitem UID -> AE titles
    channels: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]]] = field(
        default_factory=dict
    )
    message_id: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def subscriptions(state: SandboxState) -> Subscriptions:
    found: Subscriptions = state.extra.setdefault("ups_subscriptions", Subscriptions())
    return found


def offer_events(state: SandboxState, offered: bool) -> None:
    """Serve the subscription resources and the WebSocket (default) or not."""
    state.extra["ups_events_offered"] = offered


def offered(state: SandboxState) -> bool:
    return bool(state.extra.get("ups_events_offered", True))


def reset(state: SandboxState) -> None:
    """Forget every subscription (open channels stay open and get nothing until resubscribed)."""
    subs = subscriptions(state)
    with subs.lock:
        subs.worklist.clear()
        subs.workitems.clear()
    offer_events(state, True)


def subscribe(state: SandboxState, resource: str, aet: str, existing: list[str]) -> None:
    """A Worklist Subscription also subscribes ``aet`` to every ``existing`` workitem."""
    subs = subscriptions(state)
    with subs.lock:
        if resource == WORKLIST:
            subs.worklist.add(aet)
            for uid in existing:
                subs.workitems.setdefault(uid, set()).add(aet)
        else:
            subs.workitems.setdefault(resource, set()).add(aet)


def unsubscribe(state: SandboxState, resource: str, aet: str) -> bool:
    """Remove a subscription; a Worklist one removes ``aet`` from every workitem too."""
    subs = subscriptions(state)
    with subs.lock:
        if resource == WORKLIST:
            found = aet in subs.worklist
            subs.worklist.discard(aet)
            for aets in subs.workitems.values():
                found = found or aet in aets
                aets.discard(aet)
            return found
        aets = subs.workitems.get(resource, set())
        found = aet in aets
        aets.discard(aet)
        return found


def suspend(state: SandboxState, aet: str) -> bool:
    subs = subscriptions(state)
    with subs.lock:
        found = aet in subs.worklist
        subs.worklist.discard(aet)
        return found


def subscribe_new(state: SandboxState, uid: str) -> None:
    """A new workitem: every Worklist subscriber is subscribed to it (PS3.4 CC.2.3)."""
    subs = subscriptions(state)
    with subs.lock:
        subs.workitems[uid] = set(subs.worklist)


def created(state: SandboxState, item: dict[str, Any]) -> None:
    """A new workitem's UPS State Report, then its UPS Assigned report."""
    uid = _first(item, "00080018")
    state_changed(state, item)
    report(state, uid, ASSIGNED, {k: item[k] for k in ("00404025",) if k in item})


def state_changed(state: SandboxState, item: dict[str, Any]) -> None:
    """A UPS State Report of ``item`` (Table CC.2.4-1, Event Type ID 1)."""
    info: dict[str, Any] = {k: item[k] for k in ("00404041", "00741000") if k in item}
    if _first(item, "00741000") == "CANCELED":
        progress = (item.get("00741002", {}).get("Value") or [{}])[0]
        info |= {k: progress[k] for k in ("0074100E", "00741238") if k in progress}
    report(state, _first(item, "00080018"), STATE_REPORT, info)


def report(state: SandboxState, uid: str, event_type: int, info: dict[str, Any]) -> None:
    """Send one Event Report to every open channel of the workitem's subscribers."""
    subs = subscriptions(state)
    with subs.lock:
        subs.message_id = subs.message_id % 65535 + 1
        body = {
            "00000002": {"vr": "UI", "Value": [UPS_EVENT_SOP_CLASS]},
            "00000110": {"vr": "US", "Value": [subs.message_id]},
            "00001000": {"vr": "UI", "Value": [uid]},
            "00001002": {"vr": "US", "Value": [event_type]},
            **info,
        }
        text = json.dumps(body, sort_keys=True)  # F.2.2: attributes in tag order
        targets = [
            channel
            for aet in subs.workitems.get(uid, set())
            for channel in subs.channels.get(aet, [])
        ]
    for loop, queue in targets:
        loop.call_soon_threadsafe(queue.put_nowait, text)


def open_channel(
    state: SandboxState, aet: str
) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]:
    channel = (asyncio.get_running_loop(), asyncio.Queue[str]())
    subs = subscriptions(state)
    with subs.lock:
        subs.channels.setdefault(aet, []).append(channel)
    return channel


def close_channel(
    state: SandboxState, aet: str, channel: tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]
) -> None:
    subs = subscriptions(state)
    with subs.lock:
        open_ones = subs.channels.get(aet, [])
        if channel in open_ones:
            open_ones.remove(channel)


def channels(state: SandboxState, aet: str) -> int:
    """How many WebSockets ``aet`` has open (tests wait for a subscriber to listen)."""
    subs = subscriptions(state)
    with subs.lock:
        return len(subs.channels.get(aet, []))


def _first(item: dict[str, Any], tag: str) -> str:
    found = item.get(tag, {}).get("Value") or [""]
    return str(found[0])
