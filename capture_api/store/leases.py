"""Leased rows: how threads, processes and replicas share one work table safely.

A row is claimed by a conditional UPDATE that succeeds only while no live lease holds it (and
candidates are picked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas do not queue on
each other's rows). A worker that dies leaves a lease that expires; the next one takes over.
Results are written only while the writer still holds the lease. Used by the delivery outbox
and the EHR notification outbox: the tables need ``id``, ``status``, ``next_attempt_at``,
``lease_owner``, ``lease_expires_at`` and ``updated_at`` columns.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Engine, or_, update
from sqlmodel import SQLModel, col, select

from capture_api.store.db import is_postgres, session
from capture_api.store.records import utcnow

Row = TypeVar("Row", bound=SQLModel)
_CANDIDATES = 8


def claim(
    engine: Engine, model: type[Row], states: Sequence[str], owner: str, lease: dt.timedelta
) -> Row | None:
    """Take one due row in one of ``states`` for ``owner``; None when nothing is due."""
    table: Any = model
    now = utcnow()
    free = or_(col(table.lease_expires_at).is_(None), col(table.lease_expires_at) < now)
    due = (
        select(table.id)
        .where(col(table.status).in_(list(states)))
        .where(col(table.next_attempt_at) <= now)
        .where(free)
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


class LeasedWorker:
    """Threads that call ``run_once`` until stopped, idling ``poll`` seconds when it is idle."""

    poll: float = 0.5

    def __init__(self, name: str | None, prefix: str) -> None:
        self.name = name or f"{prefix}-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._log = logging.getLogger(f"capture.{prefix}")

    def start(self, threads: int = 1) -> None:
        """Start ``threads`` daemon threads until ``stop``."""
        for i in range(threads):
            thread = threading.Thread(target=self.run, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def run(self) -> None:
        """Work until stopped; never let one bad row or a database hiccup kill the thread."""
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:
                self._log.exception("%s iteration failed", self.name)
                worked = False
            if not worked:
                self._stop.wait(self.poll)

    def run_once(self) -> bool:
        """Do one unit of work; False when there was nothing to do."""
        raise NotImplementedError

    @property
    def owner(self) -> str:
        """This thread's lease owner name."""
        return f"{self.name}:{threading.get_ident()}"
