"""The browser's processes, so that "the browser is closed" means all of them have ended.

WebKitGTK runs a page in helper processes (WebKitWebProcess, WebKitNetworkProcess) that
outlive the WebDriver session by a moment (measured: the storage process still ran right
after ``quit`` every time, and ended 57-71 ms later on an idle machine), still holding the
profile's IndexedDB and cookie files. A test that starts the same phone's browser again at
once (``webkit_browser(..., keep_profile=True)``) raced that process for those files: the
likeliest cause we found of the CI run killed at its time limit inside such a test (it did
not happen again in 9 runs here). Waiting for every process of the closed browser makes the
restart what it is on a phone: a browser starting on files nothing else has open.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from pathlib import Path

#: A process: its pid and its start time (clock ticks after boot), so that a pid the kernel
#: gives to a new process is not taken for the old one.
Process = tuple[int, int]


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid``, or None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")": split after it.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def process_tree(root: int) -> set[Process]:
    """Every process below ``root`` (not ``root`` itself), read from /proc."""
    parents: dict[int, list[Process]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents.setdefault(stat[0], []).append((int(entry), stat[2]))
    found: set[Process] = set()
    below = [root]
    while below:
        for child in parents.get(below.pop(), []):
            if child not in found:
                found.add(child)
                below.append(child[0])
    return found


def names(processes: set[Process]) -> dict[Process, str]:
    """Each running process's command name (``/proc/<pid>/comm``, e.g. WebKitNetworkProcess)."""
    found = {}
    for process in processes:
        with suppress(OSError):
            found[process] = Path(f"/proc/{process[0]}/comm").read_text().strip()
    return found


def _running(process: Process) -> bool:
    stat = _stat(process[0])
    return stat is not None and stat[2] == process[1] and stat[1] not in ("Z", "X")


def wait_gone(processes: set[Process], timeout: float = 20.0) -> list[Process]:
    """Wait until every one of ``processes`` has ended; kill (SIGKILL) those still running
    after ``timeout`` seconds, and return them (so a test can say the browser hung)."""
    deadline = time.monotonic() + timeout
    while running := [p for p in processes if _running(p)]:
        if time.monotonic() > deadline:
            for pid, _ in running:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 5
            while any(_running(p) for p in running) and time.monotonic() < end:
                time.sleep(0.05)
            return running
        time.sleep(0.05)
    return []
