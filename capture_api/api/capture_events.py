"""Server-Sent Events: a context's captures, pushed to the phone as their states change.

The phone used to poll each photo's status URL (every 0.25-3 s, one audited request each).
Now it opens one ``EventSource`` per context: the stream starts with a snapshot of every
capture of the context (so a reconnect needs no ``Last-Event-ID``: it gets the present state
again), then sends a capture again whenever what the phone would see of it changes. The
service reads the context's rows every ``CHECK_SECONDS`` (a read, no commit; one query per
open stream, whatever the number of photos), sends a comment every ``HEARTBEAT_SECONDS`` so
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

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

CHECK_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
LIFETIME_SECONDS = 300.0
RETRY_MS = 2000
MEDIA_TYPE = "text/event-stream"
#: No caching, and no buffering by nginx (docs/deployment.md proxies /api).
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def capture_events(load: Callable[[], list[dict[str, Any]]]) -> AsyncIterator[str]:
    """The stream: ``load()`` (the context's captures as the API shows them) until it ends."""
    yield f"retry: {RETRY_MS}\n\n"
    sent: dict[str, str] = {}
    number = 0
    started = last_beat = time.monotonic()
    while True:
        for item in await run_in_threadpool(load):
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
        await anyio.sleep(CHECK_SECONDS)
