"""Background loops that fail must say so: in the capture, in /readyz, in /metrics, in the log.

The delivery, verification, notification and worklist-completion loops run in threads nobody
watches. Before this module, an unexpected exception in one of them (a relative archive path
that cannot become a ``file://`` URI, seen on the very first ``make run``) printed a traceback
every lease period while the capture said ``encoded`` and /readyz said ``ready``.

Now every loop reports each unit of work here:

* ``failed(loop, exc)`` counts ``capture_loop_failures_total{loop}``, writes **one** log line
  with the reason (a traceback only the first time a given failure is seen in this process,
  so an operator gets the frames once, not every few seconds), and returns the reason in words
  for the row the loop was working on (the capture's ``retrying``);
* ``succeeded(loop)`` resets the loop's run of consecutive failures;
* ``problems()`` lists the loops that failed ``UNREADY_AFTER`` times in a row: /readyz turns
  unready and names them, with the last reason.

Reasons never quote an exception's message (it may hold patient data, see
``capture_api.logging_config``): they name the exception type and where it was raised, and
for an ``OSError`` its errno text, which is what an administrator needs to find the cause.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from dataclasses import dataclass

from prometheus_client import Counter

from capture_api.exceptions import CaptureError

log = logging.getLogger("capture.loops")

#: Consecutive failures of one loop after which /readyz reports it.
UNREADY_AFTER = 3

#: The loops a process runs (closed set: they are metric labels).
LOOPS = ("delivery", "verification", "notification", "worklist-completion")

FAILURES = Counter(
    "capture_loop_failures_total",
    "Units of work a background loop could not finish (the row is retried later)",
    ["loop"],
)


@dataclass
class _State:
    consecutive: int = 0
    reason: str | None = None


class LoopHealth:
    """The consecutive failures of each loop of this process (one per ``Runtime``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states = {loop: _State() for loop in LOOPS}
        self._seen: set[tuple[str, str]] = set()

    def failed(self, loop: str, exc: BaseException, *, subject: str = "") -> str:
        """Record one failure of ``loop``; return the reason in words (no patient data)."""
        reason = describe(exc)
        with self._lock:
            state = self._states.setdefault(loop, _State())
            state.consecutive += 1
            state.reason = reason
            first = (loop, reason) not in self._seen
            self._seen.add((loop, reason))
            count = state.consecutive
        FAILURES.labels(loop if loop in LOOPS else "other").inc()
        where = f" for {subject}" if subject else ""
        log.error(
            "%s loop failed%s (%d in a row): %s",
            loop,
            where,
            count,
            reason,
            exc_info=exc if first else None,
        )
        return reason

    def succeeded(self, loop: str) -> None:
        """One unit of work of ``loop`` finished (whatever its outcome for the photo)."""
        with self._lock:
            state = self._states.setdefault(loop, _State())
            state.consecutive, state.reason = 0, None

    def problems(self) -> dict[str, str]:
        """Loops failing ``UNREADY_AFTER`` times in a row, with their last reason."""
        with self._lock:
            return {
                loop: f"{state.consecutive} failures in a row, the last: {state.reason}"
                for loop, state in self._states.items()
                if state.consecutive >= UNREADY_AFTER
            }


def describe(exc: BaseException) -> str:
    """An exception in words an operator can act on, without its (maybe PHI-bearing) text.

    Our own errors (``CaptureError``) are written for people and never quote patient data, so
    their message is kept; an ``OSError`` gives its errno text; anything else is a bug, named
    by type and the place it was raised.
    """
    if isinstance(exc, CaptureError):
        return str(exc)
    kind = type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    place = ""
    if frames:
        last = frames[-1]
        place = f" at {_short(last.filename)}:{last.lineno} in {last.name}()"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{kind}{place}: {exc.strerror}"
    return f"internal error {kind}{place}"


def _short(filename: str) -> str:
    """``.../capture_api/deliver/local_archive.py`` -> ``capture_api/deliver/local_archive.py``."""
    parts = filename.replace(os.sep, "/").split("/")
    for marker in ("capture_api", "site-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + (marker == "site-packages") :])
    return parts[-1]
