"""Rewrites the DICOMDIR after changes: at once when idle, at most once per interval when busy.

A store only indexes its instance and calls ``changed``. A background thread then writes
the DICOMDIR from the index: immediately when the last write was more than an interval ago
(a clinic's occasional photo is in the DICOMDIR within milliseconds), otherwise at the end
of the interval, once for all the changes made meanwhile (a burst of uploads costs one
rewrite per interval, not one per photo). A failed write (full disk) is retried after the
interval and its error is kept for ``error``.

The interval adapts to what a rewrite costs: ``BUSY_FACTOR`` times the last rewrite's wall
time, between ``MIN_INTERVAL`` and ``MAX_INTERVAL``. A rewrite of 10,000 instances takes
about 45 ms here, so while photos keep arriving the DICOMDIR is rewritten about once a
second (at most 1/``BUSY_FACTOR`` of a core); a small archive's takes a few ms, so its
DICOMDIR follows within a few tens of ms and the outbox verifies a burst of photos without
waiting. A fixed ``interval`` (tests) replaces the rule.

``close`` (and, at interpreter exit, ``atexit``) writes what is still pending, so a process
that stops cleanly leaves the DICOMDIR up to date; one that is killed leaves it behind the
index, and the next writer in any process (or ``capture-api archive rebuild``) catches up.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable

from capture_api.exceptions import ArchiveUnavailable
from capture_api.os_threads import NamedThread

log = logging.getLogger(__name__)

#: Writes the DICOMDIR if it is behind the index; returns the generation it now shows.
WriteFunction = Callable[[], int]

_LIVE: weakref.WeakSet[DicomdirWriter] = weakref.WeakSet()

BUSY_FACTOR = 20.0
MIN_INTERVAL = 0.05
MAX_INTERVAL = 2.0
IDLE_EXIT = 30.0


class DicomdirWriter:
    """The debounced DICOMDIR writer of one ``LocalArchive``."""

    def __init__(
        self, write: WriteFunction, interval: float | None = None, name: str = "dicomdir"
    ) -> None:
        self._write = write
        self._fixed = interval
        self._took = 0.0  # wall seconds of the last attempt
        self._attempts = 0
        self._news = 0  # the newest generation announced while a write runs
        self._name = name
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()  # one write at a time in this process
        self._wanted = 0  # the newest generation this process knows of
        self._written = 0  # the newest generation known to be in the DICOMDIR
        self._last = -math.inf  # monotonic end of the last attempt
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None
        _LIVE.add(self)

    def changed(self, generation: int) -> None:
        """The index reached ``generation``: have it written."""
        with self._cond:
            if generation <= max(self._wanted, self._written):
                return
            self._wanted = generation
            self._news = max(self._news, generation)
            self._closed = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = NamedThread(
                    target=self._run, name=f"{self._name}-writer", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait(self, generation: int, timeout: float) -> bool:
        """Whether ``generation`` is written, waiting at most ``timeout`` seconds, and only
        while a write that would include it is running or due within that time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            attempts = self._attempts
            while self._written < generation:
                if self._attempts > attempts and self.error is not None:
                    return False  # the write that ran meanwhile failed: do not wait for more
                remaining = deadline - time.monotonic()
                due_in = self._last + self.interval - time.monotonic()
                soon = self._busy or (self._wanted >= generation and due_in < remaining)
                if remaining <= 0 or not soon:
                    return False
                self._cond.wait(remaining)
            return True

    def reset(self) -> None:
        """Forget the generations seen: the index was made anew (a rebuild)."""
        with self._cond:
            self._wanted = self._written = self._news = 0

    def flush(self) -> int:
        """Write now, in this thread, if the DICOMDIR is behind; errors are raised."""
        return self._attempt(raise_errors=True)

    def close(self) -> None:
        """Write what is pending, then stop the thread (a later ``changed`` restarts it)."""
        with self._cond:
            self._closed = True
            pending = self._wanted > self._written
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
        if pending:
            self._attempt(raise_errors=False)

    @property
    def interval(self) -> float:
        """Seconds between two rewrites while changes keep coming (see the module docstring)."""
        if self._fixed is not None:
            return self._fixed
        return min(MAX_INTERVAL, max(MIN_INTERVAL, BUSY_FACTOR * self._took))

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        """Write when due; end when closed or idle for ``IDLE_EXIT`` s (``changed`` restarts
        it), so an archive nobody closes is not kept alive by its thread."""
        while True:
            with self._cond:
                idle_since = time.monotonic()
                while not self._closed and not self._due():
                    sleep = self._sleep()
                    if sleep is None and time.monotonic() - idle_since >= IDLE_EXIT:
                        self._thread = None
                        return
                    self._cond.wait(IDLE_EXIT if sleep is None else sleep)
                    if self._sleep() is not None:
                        idle_since = time.monotonic()
                if self._closed:
                    return
            self._attempt(raise_errors=False)

    def _due(self) -> bool:
        return self._wanted > self._written and time.monotonic() >= self._last + self.interval

    def _sleep(self) -> float | None:
        if self._wanted <= self._written:
            return None  # nothing to do until ``changed``
        return max(0.0, self._last + self.interval - time.monotonic())

    def _attempt(self, *, raise_errors: bool) -> int:
        with self._write_lock:
            with self._cond:
                self._busy = True
                wanted, self._news = self._wanted, 0
            written: int | None = None
            error: Exception | None = None
            started = time.monotonic()
            try:
                written = self._write()
            except (OSError, ArchiveUnavailable) as exc:
                error = exc
            finally:
                with self._cond:
                    self._busy = False
                    self._last = time.monotonic()
                    self._took = self._last - started
                    self._attempts += 1
                    self.error = error
                    if written is not None:
                        self._written = max(self._written, written)
                        if written < wanted:  # announced before the snapshot, yet not in it:
                            self._wanted = max(written, self._news)  # a new index; forget it
                    self._cond.notify_all()
        if error is not None:
            if raise_errors:
                raise error
            log.warning("the DICOMDIR could not be written, will retry: %s", error)
            return self._written
        return self._written


@atexit.register
def _flush_all() -> None:
    """At interpreter exit: write every archive's pending DICOMDIR changes."""
    for writer in list(_LIVE):
        writer.close()
