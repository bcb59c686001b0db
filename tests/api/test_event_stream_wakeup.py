"""The phones' event streams look again when a commit rings the database's wakeup, not on a
timer (issue 13): with the fallback set to a minute, a change still arrives at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from capture_api.api import capture_events as events
from capture_api.store.wakeup import Wakeup


def test_a_ring_wakes_the_stream_long_before_its_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "FALLBACK_SECONDS", 60.0)
    state = {"status": "encoded"}
    loads = 0

    def load() -> list[dict[str, Any]]:
        nonlocal loads
        loads += 1
        return [{"capture_id": "c1", "status": state["status"]}]

    wakeup = Wakeup()

    async def follow() -> list[str]:
        stream = events.capture_events(load, wakeup)
        got = [await anext(stream), await anext(stream)]  # retry: ..., the snapshot
        state["status"] = "verified"
        threading.Timer(0.1, wakeup.ring).start()  # a worker's commit, from another thread
        got.append(await asyncio.wait_for(anext(stream), timeout=10))
        await stream.aclose()
        return got

    retry, snapshot, change = asyncio.run(follow())
    assert retry.startswith("retry:")
    assert '"encoded"' in snapshot and '"verified"' in change
    assert loads == 2  # no timer-driven reads in between


def test_a_listener_whose_loop_is_gone_does_not_break_the_ring() -> None:
    wakeup = Wakeup()
    calls: list[str] = []

    def gone() -> None:
        raise RuntimeError("Event loop is closed")

    wakeup.subscribe(gone)
    unsubscribe = wakeup.subscribe(lambda: calls.append("rung"))
    seen = wakeup.generation
    wakeup.ring()
    assert calls == ["rung"] and wakeup.generation == seen + 1
    unsubscribe()
    wakeup.ring()
    assert calls == ["rung"]
