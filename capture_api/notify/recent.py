"""What the notifier's look for missing chart rows reads: what became ready recently.

Why (issue 13: volume is correctness): the look runs at every pass of every notifier thread
(after each verification and at every poll). Read whole, it was an anti-join over every photo
ever verified: 2 million SQLite VM steps per look, and several looks per pass, with 100,000
photos held. A look inserts a row for each photo it finds, so once a look has run to the end
every photo verified before it began has its rows; the next look needs only the photos
verified since then, less ``MARGIN``: for a transaction that stamped ``verified_at`` before it
committed, and for replicas whose clocks differ. A look over everything still runs first
and then every ``FULL_LOOK``: the backstop for what no window sees (a clock far off, a row
deleted by hand, a registration whose notify list grew at a restart: the first look).

A wound SR's Observation is ready when the SR is verified and its photo's resource was sent,
whichever comes last: its look reads the SRs verified and the photo resources sent in the
same window (``measurements.observations_missing``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from capture_api.store.records import utcnow

FULL_LOOK = dt.timedelta(hours=1)
MARGIN = dt.timedelta(minutes=10)


class RecentWindow:
    """The ``verified_since`` of each look; shared by a worker's threads."""

    def __init__(self, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._complete: dt.datetime | None = None  # when the last complete look began
        self._full: dt.datetime | None = None  # when the last complete full look began

    def begin(self) -> tuple[dt.datetime, dt.datetime | None]:
        """(when this look begins, the ``verified_at`` it reads from; None: every photo)."""
        now = self._clock()
        with self._lock:
            if self._complete is None or self._full is None or now - self._full >= FULL_LOOK:
                return now, None
            return now, self._complete - MARGIN

    def end(self, began: dt.datetime, since: dt.datetime | None, *, complete: bool) -> None:
        """A look that found fewer photos than its limit saw all it read; one that hit the
        limit did not, and the next look reads the same window again."""
        if not complete:
            return
        with self._lock:
            self._complete = max(began, self._complete or began)
            if since is None:
                self._full = max(began, self._full or began)
