"""Server-Sent Events: a context's captures, pushed to the phone as their states change.

The phone used to poll each photo's status URL (every 0.25-3 s, one audited request each).
Now it opens one ``EventSource`` per context: the stream starts with a snapshot of every
capture of the context (so a reconnect needs no ``Last-Event-ID``: it gets the present state
again), then sends a capture again whenever what the phone would see of it changes. The
service reads the context's rows every ``CHECK_SECONDS`` (a read, no commit; one query per
open stream, whatever the number of photos); woken by commits, it reads the stamps of the
photos changed in the last ``RECENT_SECONDS`` and, whole, only those that moved on since it
last read them (a context of many photos is not re-read whole for every change of one:
issue 13), and all of them at least every ``FULL_SECONDS``. It sends a
comment every ``HEARTBEAT_SECONDS`` so
proxies keep the connection, and ends the stream after ``LIFETIME_SECONDS``: the browser
reconnects by itself (``retry``), and the reconnect is checked against the session again.

Wire format (WHATWG HTML, server-sent events)::

    retry: 2000

    id: 1
    event: capture
    data: {"capture_id": ..., "status": "encoded", ...}   (the GET /captures/{id} answer)

    : keep-alive
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from capture_api.store.wakeup import Wakeup

CHECK_SECONDS = 0.25
#: How often a stream that is woken by commits looks anyway (a change no commit rang for).
FALLBACK_SECONDS = 2.0
#: A look after a commit reads the photos changed this recently (a transaction that stamped
#: its rows a little before it committed is still seen)...
RECENT_SECONDS = 5.0
#: ...and every photo of the context is read again at least this often.
FULL_SECONDS = 10.0
HEARTBEAT_SECONDS = 15.0
LIFETIME_SECONDS = 300.0
RETRY_MS = 2000
MEDIA_TYPE = "text/event-stream"
#: No caching, and no buffering by nginx (docs/deployment.md proxies /api).
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def capture_events(
    load: Callable[[bool], list[dict[str, Any]]], changes: Wakeup | None = None
) -> AsyncGenerator[str, None]:
    """The stream: ``load(everything)`` (the context's captures as the API shows them: all,
    or those changed in the last ``RECENT_SECONDS``) until it ends.

    With ``changes`` (the database's ``store.wakeup``, rung after every commit that moves a
    photo on, and on PostgreSQL by the other replicas' NOTIFY) the stream looks again as soon
    as something changed, and otherwise only every ``FALLBACK_SECONDS``; without it, every
    ``CHECK_SECONDS``.
    """
    yield f"retry: {RETRY_MS}\n\n"
    sent: dict[str, str] = {}
    started = time.monotonic()
    changed = asyncio.Event()
    loop = asyncio.get_running_loop()

    def rung() -> None:  # in the thread that committed: hand it to this stream's loop
        loop.call_soon_threadsafe(changed.set)

    unsubscribe = changes.subscribe(rung) if changes else None
    try:
        async for event in _events(load, sent, changed, unsubscribe is not None, started):
            yield event
    finally:
        if unsubscribe is not None:
            unsubscribe()


async def _events(
    load: Callable[[bool], list[dict[str, Any]]],
    sent: dict[str, str],
    changed: asyncio.Event,
    woken: bool,
    started: float,
) -> AsyncIterator[str]:
    number, last_beat, read_all = 0, started, -math.inf
    while True:
        changed.clear()  # before the read: a change during it is seen by the next one
        everything = not woken or time.monotonic() - read_all >= FULL_SECONDS
        if everything:
            read_all = time.monotonic()
        for item in await run_in_threadpool(load, everything):
            text = json.dumps(item, separators=(",", ":"), default=str)
            if sent.get(item["capture_id"]) != text:
                sent[item["capture_id"]] = text
                number += 1
                yield f"id: {number}\nevent: capture\ndata: {text}\n\n"
        now = time.monotonic()
        if now - started >= LIFETIME_SECONDS:
            return
        if now - last_beat >= HEARTBEAT_SECONDS:
            last_beat = now
            yield ": keep-alive\n\n"
        with anyio.move_on_after(FALLBACK_SECONDS if woken else CHECK_SECONDS):
            await changed.wait()
