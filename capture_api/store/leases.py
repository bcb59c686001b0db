"""Leased rows: how threads, processes and replicas share one work table safely.

A row is claimed by a conditional UPDATE that succeeds only while no live lease holds it (and
candidates are picked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas do not queue on
each other's rows). Results are written only while the writer still holds the lease. Used by
the delivery outbox, the EHR notification outbox and the worklist completion queue: the tables
need ``id``, ``status``, ``next_attempt_at``, ``lease_owner``, ``lease_expires_at`` and
``updated_at`` columns.

Leases are short (``CAPTURE_LEASE_SECONDS``, 15 s) and kept alive by a heartbeat
(``LeaseKeeper``) while the work runs, however long a 48 MP encode or a slow archive takes. So
a worker that dies leaves a claim that expires within seconds, not minutes (issue 12: a photo
safe on disk waited two minutes after a SIGKILL). A process that starts also frees at once the
claims of dead processes of its own machine (``release_dead_local``): every owner name says
which machine (host + boot + PID namespace) and process (pid) holds it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, func, or_, update
from sqlmodel import SQLModel, col, select

from capture_api.os_threads import NamedThread
from capture_api.store.db import Transaction, is_postgres, session
from capture_api.store.records import utcnow
from capture_api.store.wakeup import Cause, Wakeup

Row = TypeVar("Row", bound=SQLModel)
_CANDIDATES = 8
_OWNER_MAX = 64  # the lease_owner columns are String(64)

log = logging.getLogger("capture.leases")


# --- who holds a lease ---------------------------------------------------------------------------


@cache
def node_id() -> str:
    """Where this process's id means something: the host name, the kernel's boot id and the
    PID namespace (Linux).

    A process id is only meaningful on the machine, the boot and the PID namespace that issued
    it. Two containers on the host's network share its host name and boot, not their process
    ids: without the namespace, one starting took the other's live process 2 for a dead one of
    its own (it has no process 2) and freed its claims (a second STOW of a photo in flight),
    and took what the other's process 1 queued for its own previous life's. The price: a
    container restarted in a new namespace waits out its previous life's claims
    (``CAPTURE_LEASE_SECONDS``) as another machine's, instead of taking them at once.
    """
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip().replace("-", "")[:8]
    except OSError:
        boot = "noboot"
    try:
        namespace = format(os.stat("/proc/self/ns/pid").st_ino, "x")
    except OSError:
        namespace = "nons"
    return f"{socket.gethostname()[:16]}.{boot}.{namespace}"


def owner_name(role: str) -> str:
    """A lease owner: ``<node>/<pid>/<role>``, unique per process and role, at most 64 chars."""
    return f"{node_id()}/{os.getpid()}/{role}"[:_OWNER_MAX]


def _holder_pid(owner: str) -> int | None:
    """The pid of an owner name of this node, else None (another machine, an old format)."""
    node, _, rest = owner.partition("/")
    pid = rest.partition("/")[0]
    return int(pid) if node == node_id() and pid.isdigit() else None


def local_owner_gone(owner: str | None) -> bool:
    """Whether ``owner`` was a process of this machine that is gone, or is this very process
    (asked at start-up: what "we" queued then was queued by our previous life)."""
    pid = _holder_pid(owner) if owner else None
    return pid is not None and (pid == os.getpid() or not _alive(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def release_dead_local(engine: Engine, models: Sequence[type[SQLModel]]) -> int:
    """Free the leases held by dead processes of this machine; returns how many rows.

    Run at start-up: a photo claimed by the process that was just killed is taken up now, not
    when its lease runs out. Leases of other machines, and of live processes here, are kept.
    """
    freed = 0
    prefix = f"{node_id()}/"
    for model in models:
        table: Any = model
        with session(engine) as s:
            owners = s.exec(
                select(table.lease_owner)
                .where(col(table.lease_owner).startswith(prefix))
                .distinct()
            ).all()
            for owner in owners:
                pid = _holder_pid(owner)
                if pid is None or pid == os.getpid() or _alive(pid):
                    continue
                result = s.exec(
                    update(table)
                    .where(col(table.lease_owner) == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )
                freed += int(result.rowcount)
            s.commit()
    if freed:
        log.info("took over %d unfinished rows of a process that died on this machine", freed)
    return freed


# --- claiming and saving -------------------------------------------------------------------------


def claim(
    engine: Engine,
    model: type[Row],
    states: Sequence[str],
    owner: str,
    lease: dt.timedelta,
    *,
    ready: Sequence[ColumnElement[bool]] = (),
) -> Row | None:
    """Take one due row in one of ``states`` for ``owner``; None when nothing is due.

    ``ready``: further conditions a candidate must meet (the worklist completion queue only
    takes contexts whose photos are all verified), so rows that cannot be worked on yet are
    never claimed and released again.
    """
    table: Any = model
    now = utcnow()
    free = or_(col(table.lease_expires_at).is_(None), col(table.lease_expires_at) < now)
    due = (
        select(table.id)
        .where(col(table.status).in_(list(states)))
        .where(col(table.next_attempt_at) <= now)
        .where(free)
        .where(*ready)
        .order_by(col(table.next_attempt_at))
        .limit(_CANDIDATES)
    )
    if is_postgres(engine):
        due = due.with_for_update(skip_locked=True)
    with session(engine) as s:
        for row_id in s.exec(due).all():
            taken = s.exec(
                update(table)
                .where(col(table.id) == row_id)
                .where(col(table.status).in_(list(states)))
                .where(free)
                .values(lease_owner=owner, lease_expires_at=now + lease)
            )
            if taken.rowcount == 1:
                s.commit()
                row: Row | None = s.get(model, row_id)
                return row
        s.rollback()
    return None


def claim_row(
    engine: Engine,
    model: type[Row],
    row_id: object,
    states: Sequence[str],
    owner: str,
    lease: dt.timedelta,
) -> Row | None:
    """Take one given row (in one of ``states``, no live lease) for ``owner``, else None.

    For work that should not wait for its turn: a re-sent upload of a photo a crash left
    ``received`` is encoded at once by the request that re-sent it.
    """
    table: Any = model
    now = utcnow()
    free = or_(col(table.lease_expires_at).is_(None), col(table.lease_expires_at) < now)
    with session(engine) as s:
        taken = s.exec(
            update(table)
            .where(col(table.id) == row_id)
            .where(col(table.status).in_(list(states)))
            .where(free)
            .values(lease_owner=owner, lease_expires_at=now + lease)
        )
        s.commit()
        if taken.rowcount != 1:
            return None
        row: Row | None = s.get(model, row_id)
        return row


def save(
    engine: Engine, model: type[SQLModel], row_id: object, owner: str, **values: object
) -> None:
    """Write the outcome and release the lease, only if ``owner`` still holds it."""
    table: Any = model
    values |= {"lease_owner": None, "lease_expires_at": None, "updated_at": utcnow()}
    with session(engine) as s:
        s.exec(
            update(table)
            .where(col(table.id) == row_id)
            .where(col(table.lease_owner) == owner)
            .values(**values)
        )
        s.commit()


def save_in(
    tx: Transaction, model: type[SQLModel], row_id: object, owner: str, **values: object
) -> bool:
    """``save`` inside the caller's transaction; True when ``owner`` still held the row."""
    table: Any = model
    values |= {"lease_owner": None, "lease_expires_at": None, "updated_at": utcnow()}
    result = tx.connection.execute(
        update(table)
        .where(col(table.id) == row_id)
        .where(col(table.lease_owner) == owner)
        .values(**values)
    )
    return bool(result.rowcount == 1)


class Handoff:
    """Rows handed from the request that finished them to this process's workers, with the
    lease already taken in the commit that finished them: no second claim, no second commit.

    An upload's encode commits its row ``encoded`` with the lease held by ``owner`` (the
    workers' hand-off name), then ``give``s it: the heartbeat keeps that lease alive while the
    row waits, so no other thread or replica claims it, and a worker thread ``take``s it from
    here instead of claiming (issue 13: one commit less per photo, and the claim's queries).
    If the process dies, the lease runs out (or ``release_dead_local`` frees it at the next
    start) and any worker claims the row as before. A row is handed over only while a worker
    thread here waits for work (``ready``): one stuck behind a slow archive stays claimable
    by the other replicas. Only ``open`` while workers run here.
    """

    def __init__(self, keeper: LeaseKeeper, model: type[SQLModel], owner: str) -> None:
        self.keeper = keeper
        self.model = model
        self.owner = owner
        self.open = False
        self._rows: deque[object] = deque()
        self._lock = threading.Lock()
        self._waiting = 0  # worker threads idle, waiting for work
        self.wakeup: Wakeup | None = None

    def ready(self) -> bool:
        """Whether a row handed over now would be taken at once (a worker thread is idle)."""
        with self._lock:
            return self.open and len(self._rows) < self._waiting

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """A worker thread waits for work during the block."""
        with self._lock:
            self._waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1

    def lease(self) -> dict[str, object]:
        """The lease columns for the commit that finishes a row (the hand-off name holds it)."""
        return {"lease_owner": self.owner, "lease_expires_at": utcnow() + self.keeper.lease}

    def give(self, row_id: object) -> None:
        """After that commit: keep the lease alive, queue the row, wake a worker."""
        self.keeper.acquire(self.model, row_id, self.owner)
        self._rows.append(row_id)
        if self.wakeup is not None:
            self.wakeup.ring()

    def take(self) -> object | None:
        """The next handed row (its lease still held by ``owner`` until ``done``), or None."""
        try:
            return self._rows.popleft()
        except IndexError:
            return None

    def done(self, row_id: object) -> None:
        """The worker is through with the row: stop keeping its lease alive."""
        self.keeper.release(self.model, row_id, self.owner)

    def __len__(self) -> int:
        return len(self._rows)


class LeaseKeeper:
    """The heartbeat: renews the leases this process holds while their work runs.

    One daemon thread for the whole process renews every held lease each third of the lease
    (one UPDATE per table), so a held row never expires under a slow encode or archive, and a
    dead process's rows come free one lease after its last beat. ``hold`` is re-entrant per row.
    """

    def __init__(self, engine: Engine, lease: dt.timedelta) -> None:
        self.engine = engine
        self.lease = lease
        self._lock = threading.Lock()
        self._held: dict[tuple[type[SQLModel], object, str], int] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def hold(self, model: type[SQLModel], row_id: object, owner: str) -> Iterator[None]:
        """Keep ``owner``'s lease on the row alive until the block ends."""
        self.acquire(model, row_id, owner)
        try:
            yield
        finally:
            self.release(model, row_id, owner)

    def acquire(self, model: type[SQLModel], row_id: object, owner: str) -> None:
        """Start keeping ``owner``'s lease on the row alive (until the matching ``release``)."""
        key = (model, row_id, owner)
        with self._lock:
            self._held[key] = self._held.get(key, 0) + 1
            self._start_locked()

    def release(self, model: type[SQLModel], row_id: object, owner: str) -> None:
        key = (model, row_id, owner)
        with self._lock:
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]

    def renew(self) -> int:
        """Extend every held lease now (the heartbeat's one step); returns rows renewed."""
        with self._lock:
            held = list(self._held)
        renewed = 0
        until = utcnow() + self.lease
        for model in {m for m, _, _ in held}:
            table: Any = model
            with session(self.engine) as s:
                for owner in {o for m, _, o in held if m is model}:
                    ids = [i for m, i, o in held if m is model and o == owner]
                    result = s.exec(
                        update(table)
                        .where(col(table.id).in_(ids))
                        .where(col(table.lease_owner) == owner)
                        .values(lease_expires_at=until)
                    )
                    renewed += int(result.rowcount)
                s.commit()
        return renewed

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _start_locked(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = NamedThread(target=self._beat, name="lease-heartbeat", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while not self._wake.wait(interval):
            try:
                self.renew()
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("lease heartbeat failed (%s); retrying", type(exc).__name__)


class LeasedWorker:
    """Threads that call ``run_once`` until stopped, and wait when it is idle.

    Idle, a worker waits for its ``wakeup`` (``capture_api.store.wakeup``: rung by the commits
    that make work due, on PostgreSQL across replicas) with ``idle_timeout`` seconds (the
    safety poll, ``poll``) as its limit; without one it sleeps ``poll`` seconds. ``wakeups``
    counts why it woke: ``notify``, ``signal`` or ``poll``.

    A failure that escapes ``run_once`` (the database is down while claiming) is reported to
    ``on_loop_error`` once per iteration; per-row failures are the subclass's to record on the
    row (see ``OutboxWorker``), so nothing waits silently for its lease to run out.

    One thread at a time looks for work. A ring wakes every waiting thread, and each used to
    query for work (a claim, then the next due time) even when one row was due: with 16
    delivery threads that cost 45 ms of CPU per photo (issue 13, the delivery benchmark at
    concurrency 16). A woken thread that finds another one looking waits again at once; the
    looker that ``found`` work hands the look on (rings) before it starts working, so rows due
    together are still taken up by as many threads; unless the row was the only one it knew
    of and no ring came while it looked (``found(more=False)``).
    """

    poll: float = 0.5
    wakeup: Wakeup | None = None

    def __init__(self, name: str | None, prefix: str) -> None:
        self.name = name or f"{prefix}-{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._log = logging.getLogger(f"capture.{prefix}")
        self.wakeups: Counter[str] = Counter()
        self.woken: deque[str] = deque(maxlen=100)  # the latest causes, oldest first
        self._look = threading.Lock()  # held by the one thread looking for work
        self._looker: int | None = None
        self._looked = -1  # the wakeup generation the latest look started after

    def start(self, threads: int = 1) -> None:
        """Start ``threads`` daemon threads until ``stop``."""
        for i in range(threads):
            thread = NamedThread(target=self.run, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.wakeup is not None:
            self.wakeup.ring("stop")
        for thread in self._threads:
            thread.join(timeout)

    def run(self) -> None:
        """Work until stopped; never let one bad row or a database hiccup kill the thread."""
        must_look = True  # at start, after work, and after a safety poll: look in any case
        while not self._stop.is_set():
            seen = self.wakeup.generation if self.wakeup is not None else 0
            if (not must_look and seen <= self._looked) or not self._look.acquire(
                blocking=False
            ):  # another thread looked after that ring, or is looking
                must_look = self._wait(seen, self.poll) == "poll"
                continue
            self._looked, self._looker = seen, threading.get_ident()
            try:
                worked = self.run_once()
            except Exception as exc:
                self.on_loop_error(exc)
                worked = False
            finally:
                self._stop_looking()
            must_look = worked or self.idle(seen) == "poll"

    def found(self, *, more: bool = True) -> None:
        """Called by ``run_once`` once it has taken a row: another thread may look for more
        while this one works (it is rung, so rows that became due together are not left to
        the safety poll).

        ``more=False``: the look took the last row it knew of (an upload's hand-over, none
        left), so the look is handed on only if a ring came while it looked. Handing it on
        regardless woke a thread per photo to query for work that every commit making work
        due rings for anyway (issue 13: an empty claim and next-due query per photo).
        """
        looked = self._looked
        if not self._stop_looking() or self.wakeup is None:
            return
        # Read after letting go of the look: a ring from here on wakes a waiting thread,
        # which finds the look free; a ring during the look moved the generation past it.
        if more or self.wakeup.generation != looked:
            self.wakeup.ring("signal", listeners=False)

    def _stop_looking(self) -> bool:
        if self._looker != threading.get_ident():
            return False
        self._looker = None
        self._look.release()
        return True

    def idle(self, seen: int) -> Cause:
        """Wait for work: a wake-up after generation ``seen``, or the timeout; say why."""
        if self.wakeup is None:
            return self._wait(seen, self.poll)
        try:
            timeout = self.idle_timeout()
        except Exception:  # the database is away: the safety poll
            timeout = self.poll
        return self._wait(seen, timeout)

    def _wait(self, seen: int, timeout: float) -> Cause:
        if self.wakeup is None:
            self._stop.wait(timeout)
            return "poll"
        with self.waiting():
            cause = self.wakeup.wait(seen, timeout)
        self.wakeups[cause] += 1
        self.woken.append(cause)
        self.woke(cause)
        return cause

    def waiting(self) -> AbstractContextManager[object]:
        """Entered while a thread waits for work (``OutboxWorker``: uploads hand rows to it)."""
        return nullcontext()

    def idle_timeout(self) -> float:
        """How long to wait when idle (subclasses shorten it to their next retry)."""
        return self.poll

    def woke(self, cause: str) -> None:
        """Called after each idle wait with its cause (subclasses count it)."""

    def run_once(self) -> bool:
        """Do one unit of work; False when there was nothing to do."""
        raise NotImplementedError

    def on_loop_error(self, exc: Exception) -> None:
        """An iteration failed outside any row's handling (subclasses report it)."""
        self._log.exception("%s iteration failed", self.name)

    @property
    def owner(self) -> str:
        """This thread's lease owner name (``<node>/<pid>/<worker>:<thread id>``)."""
        return owner_name(f"{self.name}:{threading.get_native_id()}")


def next_due(engine: Engine, model: type[SQLModel], states: Sequence[str]) -> dt.datetime | None:
    """When the soonest unleased row in ``states`` is due (None: nothing pending)."""
    table: Any = model
    now = utcnow()
    free = or_(col(table.lease_expires_at).is_(None), col(table.lease_expires_at) < now)
    with session(engine) as s:
        found: dt.datetime | None = s.exec(
            select(func.min(table.next_attempt_at))
            .where(col(table.status).in_(list(states)))
            .where(free)
        ).one()
    if found is not None and found.tzinfo is None:
        found = found.replace(tzinfo=dt.UTC)
    return found
