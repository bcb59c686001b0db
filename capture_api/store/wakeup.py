"""Waking the workers when work becomes due, instead of polling for it (issue 13).

A commit that makes outbox work due (an upload's encode, a queued SR/KOS document, a re-queue,
a verification the EHR notifier follows up) calls ``due_in`` inside its transaction:

* on PostgreSQL it sends ``NOTIFY capture_outbox`` in that transaction, which PostgreSQL
  delivers at commit (never for a rollback) to every listening connection: each process runs
  one ``Listener`` thread with its own connection, so a worker of replica B wakes on a commit
  of replica A;
* in every database, once the transaction has committed, this process's ``Wakeup`` for that
  engine is rung (SQLite has no notifications: a separate worker process on the same SQLite
  file is woken by its safety poll, ``CAPTURE_POLL_SECONDS``).

Workers wait on the ``Wakeup`` with the safety poll (or the next retry's time) as timeout, and
``Wakeup.wait`` says why they woke: ``notify``, ``signal``, ``poll``, so tests and
``capture_worker_wakeups_total{cause}`` can tell a pushed wake from a polled one.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import psycopg
from sqlalchemy import Engine, text

from capture_api.os_threads import NamedThread
from capture_api.store.db import Transaction, is_postgres

log = logging.getLogger("capture.wakeup")

CHANNEL = "capture_outbox"
#: The payload of a NOTIFY that makes only a verification's follow-up due (``due_in``).
FOLLOW_UP = "follow-up"
Cause = Literal["notify", "signal", "poll", "stop"]


class Wakeup:
    """Threads wait here until work may be due; ``ring`` wakes them all with its cause."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._cause: Cause = "signal"
        #: How many times ``ring`` was called, by cause (tests, metrics).
        self.rung: Counter[str] = Counter()
        self._listeners: list[Callable[[], None]] = []
        #: Whether threads of this process follow verifications up (the EHR notifier, the
        #: worklist completer): set by the runtime that starts them.
        self.followed = False

    @property
    def generation(self) -> int:
        """Read before looking for work; pass to ``wait`` so a ring in between is not lost."""
        with self._cond:
            return self._generation

    def ring(
        self, cause: Cause = "signal", *, listeners: bool = True, follow_up: bool = False
    ) -> None:
        """Wake every waiting thread (and, unless ``listeners`` is False, every subscriber:
        a worker passing the look on changed nothing the phones' streams would show).

        ``follow_up``: the only work is a verification's follow-up; unless ``followed``, it
        tells the subscribers only (the delivery threads would look and find nothing).
        """
        with self._cond:
            if self.followed or not follow_up:
                self._generation += 1
                self._cause = cause
                self.rung[cause] += 1
                self._cond.notify_all()
            called = list(self._listeners) if listeners else []
        for listener in called:
            try:
                listener()
            except RuntimeError:  # its event loop closed before it unsubscribed
                log.debug("a wakeup listener's loop is gone")

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` (from the ringing thread: keep it short) at every ring, until the
        returned function is called. For waiters that are not threads: the phones' event
        streams (``api.capture_events``) hand the ring to their event loop."""
        with self._cond:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._cond:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def wait(self, seen: int, timeout: float) -> Cause:
        """Wait until rung after generation ``seen``, or ``timeout`` seconds; say why."""
        with self._cond:
            if self._cond.wait_for(lambda: self._generation != seen, timeout):
                return self._cause
            return "poll"


_wakeups: weakref.WeakKeyDictionary[Engine, Wakeup] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def wakeup_for(engine: Engine) -> Wakeup:
    """This process's ``Wakeup`` for work in ``engine``'s database (one per engine)."""
    with _lock:
        found = _wakeups.get(engine)
        if found is None:
            found = _wakeups[engine] = Wakeup()
        return found


def due_in(tx: Transaction, *, follow_up: bool = False) -> None:
    """Outbox work becomes due when ``tx`` commits: tell the other replicas and this one.

    ``follow_up``: the work is only the follow-up of a verification (the EHR notifier's, the
    worklist completer's). In this process it wakes threads only if such followers run here
    (``Wakeup.followed``); the delivery threads would look for work and find none (issue 13:
    an empty claim per photo). The phones' streams are told in any case.
    """
    notify_on(tx.connection, tx.engine, FOLLOW_UP if follow_up else "")
    wakeup = wakeup_for(tx.engine)
    tx.after_commit(lambda: wakeup.ring("signal", follow_up=follow_up))


def notify_on(connection: Any, engine: Engine, payload: str = "") -> None:
    """``NOTIFY capture_outbox`` in the open transaction of ``connection`` (a SQLAlchemy
    Connection or Session), on PostgreSQL; nothing on SQLite. Ring ``wakeup_for(engine)``
    yourself after the commit. ``payload``: ``FOLLOW_UP`` or nothing."""
    if is_postgres(engine):
        connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )


class Listener:
    """One thread per process: ``LISTEN capture_outbox`` on its own PostgreSQL connection,
    ringing ``wakeup`` (cause ``notify``) for every notification (its subscribers only, for a
    ``FOLLOW_UP`` where no follower runs). Reconnects after an error;
    the safety poll covers the gap."""

    def __init__(self, engine: Engine, wakeup: Wakeup, reconnect: float = 1.0) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._wakeup = wakeup
        self._reconnect = reconnect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    def start(self) -> None:
        if self._thread is None:
            self._thread = NamedThread(target=self._run, name="outbox-listener", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # the database went away: listen again after a pause
                self.listening.clear()
                log.warning("outbox listener lost its connection (%s)", type(exc).__name__)
                self._stop.wait(self._reconnect)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            while not self._stop.is_set():
                for note in connection.notifies(timeout=0.5, stop_after=1):
                    self._wakeup.ring("notify", follow_up=note.payload == FOLLOW_UP)
