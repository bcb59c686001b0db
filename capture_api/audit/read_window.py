"""Status reads are audited once per user, photo and window, not once per poll.

A phone following its photos read each one's status every few hundred milliseconds, and
every read wrote (and committed) one more row of the hash-chained trail: hundreds of rows
per photo, each saying the same thing. What the trail must show is *who saw what*: that this
session read this capture's (or this context's) status, from this address, with this answer.
So the first such read writes its row as before, and identical reads within the next
``window`` seconds add nothing; the first read after the window writes a new row. An auditor
therefore sees every reader of every photo, at least once for every window in which they
read it (one row per minute of following, not one per poll).

Only the routes in ``STATUS_READS`` and only successful GETs are folded: a refusal (a probe of
another capture) is always written, and so is every other PHI request. The memory is per
process (several processes each write their own first row) and bounded (expired keys are
dropped when it grows). Nothing is removed from the trail, so its hash chain is untouched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

#: The routes whose reads are folded (route templates, as the trail records them).
STATUS_READS = frozenset(
    {
        "/api/v1/captures/{capture_id}",
        "/api/v1/captures",
        "/api/v1/captures/events",
    }
)
_KEY = (
    "route",
    "actor",
    "session_id",
    "patient",
    "patient_issuer",
    "context_id",
    "capture_id",
    "http_status",
    "client_ip",
)
_PRUNE_AT = 10_000


class ReadWindow:
    """Remembers which status reads were written in the last ``window`` seconds."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._written: dict[tuple[Any, ...], float] = {}
        self._lock = threading.Lock()

    def folds(self, values: Mapping[str, Any]) -> bool:
        """True when this row repeats one written within the window (do not write it)."""
        if self.window <= 0 or values.get("method") != "GET":
            return False
        if values.get("route") not in STATUS_READS or not 200 <= values.get("http_status", 0) < 300:
            return False
        key = tuple(values.get(name) for name in _KEY)
        now = time.monotonic()
        with self._lock:
            written = self._written.get(key)
            if written is not None and now - written < self.window:
                return True
            self._written[key] = now
            if len(self._written) > _PRUNE_AT:
                self._prune(now)
        return False

    def _prune(self, now: float) -> None:
        self._written = {k: t for k, t in self._written.items() if now - t < self.window}
