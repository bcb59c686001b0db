"""Counting fsyncs, database commits and SQL statements for ``make bench`` (off unless
asked for).

``CAPTURE_BENCH_COUNTERS=true`` wraps ``os.fsync``/``os.fdatasync`` in this process and
listens to the engine's ``commit`` event (every transaction that commits, the ORM's and
Core's alike) and to each statement it sends (``store.db.on_statement``), and shows the
totals in ``/metrics`` as ``capture_bench_fsyncs_total``, ``capture_bench_commits_total``
and ``capture_bench_statements_total``. The benchmark divides their growth by the photos it
sent. Statements count because each one is Python work and, on SQLite, GIL hand-overs
between the service's threads (issue 13). Never on in production: the wrappers are one more
Python call on every fsync and every statement.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import Counter

from capture_api.store.db import Database, on_commit, on_statement

_installed: dict[str, Counter] = {}


def install(engine: Database) -> None:
    """Start counting (once per process; a second engine is listened to as well)."""
    if not _installed:
        _installed["fsyncs"] = Counter("capture_bench_fsyncs", "fsync/fdatasync calls")
        _installed["commits"] = Counter("capture_bench_commits", "database commits")
        _installed["statements"] = Counter("capture_bench_statements", "SQL statements sent")
        _wrap("fsync")
        _wrap("fdatasync")
    on_commit(engine, _count_commit)
    on_statement(engine, _count_statement)


def _count_commit(_connection: object) -> None:
    _installed["commits"].inc()


def _count_statement(*_event: object) -> None:
    _installed["statements"].inc()


def _wrap(name: str) -> None:
    original = getattr(os, name)
    fsyncs = _installed["fsyncs"]

    def counted(fd: Any) -> None:
        fsyncs.inc()
        original(fd)

    setattr(os, name, counted)
