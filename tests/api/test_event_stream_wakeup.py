"""The phones' event streams look again when a commit rings the database's wakeup, not on a
timer (issue 13): with the fallback set to a minute, a change still arrives at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from capture_api.api import capture_events as events
from capture_api.store.wakeup import Wakeup

T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: a browser test run before this one in the same
    session (Playwright's sync API) can leave an event loop running in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_ring_wakes_the_stream_long_before_its_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "FALLBACK_SECONDS", 60.0)
    state = {"status": "encoded"}
    loads: list[bool] = []

    def load(everything: bool) -> list[dict[str, Any]]:
        loads.append(everything)
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

    retry, snapshot, change = _run(follow())
    assert retry.startswith("retry:")
    assert '"encoded"' in snapshot and '"verified"' in change
    # no timer-driven reads in between; the look after the ring reads only recent changes
    assert loads == [True, False]


def test_a_woken_stream_reads_only_recent_changes_and_everything_now_and_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A context of many photos is not re-read whole for each commit (issue 13), but whole
    again every ``FULL_SECONDS`` (a change that did not stamp ``updated_at`` still shows)."""
    monkeypatch.setattr(events, "FALLBACK_SECONDS", 60.0)
    monkeypatch.setattr(events, "FULL_SECONDS", 0.5)
    loads: list[bool] = []
    wakeup = Wakeup()

    def load(everything: bool) -> list[dict[str, Any]]:
        loads.append(everything)
        return [{"capture_id": "c1", "status": f"read {len(loads)}"}]

    async def follow() -> None:
        stream = events.capture_events(load, wakeup)
        await anext(stream), await anext(stream)  # retry, the snapshot (read whole)
        for delay in (0.05, 0.05, 0.6):
            threading.Timer(delay, wakeup.ring).start()
            await asyncio.wait_for(anext(stream), timeout=10)
        await stream.aclose()

    _run(follow())
    assert loads == [True, False, False, True]


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
