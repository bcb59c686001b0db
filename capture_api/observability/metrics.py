"""Prometheus metrics: what this process did (counters, STOW latency) and what the outbox holds.

Two kinds of figures, because the service runs as several replicas on one database:

- **Events** (photos received, verified, failed; STOW-RS latency; retries) are counted where
  they happen, in this process, with ``prometheus_client``. Prometheus scrapes every replica
  and sums them (``sum(rate(capture_captures_verified_total[5m]))``).
- **State** (outbox depth per status, age of the oldest undelivered photo, pending EHR
  notifications) is read from the database at scrape time, so every replica reports the same,
  right number however many processes share the outbox. Alert on ``max()`` of it, not ``sum()``.

Label values come from closed sets (failure kinds, outbox states, outcomes): never a patient,
a capture id, a UID or a URL, so nothing here is PHI.

Several processes on one host (e.g. ``capture-api run`` beside ``capture-api worker``): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty folder shared by them (prometheus_client's
multiprocess mode) and ``/metrics`` adds up every process's counters.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from capture_api.store import reports
from capture_api.store.db import Database, on_commit
from capture_api.store.records import PENDING, NotificationStatus, utcnow

__all__ = [
    "CONTENT_TYPE",
    "captured",
    "commits",
    "count_commits",
    "failed",
    "render",
    "retried",
    "verified",
    "woke",
]

log = logging.getLogger("capture.metrics")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: ``failure_kind`` values (capture.service, deliver.outbox); anything else is counted as other.
FAILURE_KINDS = frozenset(
    {
        "unsupported-format",
        "corrupt-image",
        "too-large",
        "invalid-metadata",
        "invalid-input",
        "spool-lost",
        "archive-rejected",
        "archive-auth",
    }
)

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: one line each

#: A 4 MB photo on a LAN takes 50 ms to 2 s; 30 s is the default archive timeout.
_STOW_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

RECEIVED = Counter(
    "capture_captures_received",
    "Photos spooled (fsync'd) and recorded: new captures answered 202 or refused after spooling",
)
VERIFIED = Counter(
    "capture_captures_verified",
    "Captures the archive shows (QIDO-RS) after STOW-RS: delivered and checked",
)
FAILED = Counter(
    "capture_captures_failed",
    "Captures that will not be delivered, by failure kind (the reason is on the capture)",
    ["kind"],
)
STOW_SECONDS = Histogram(
    "capture_stow_seconds",
    "Wall time of one store request to the archive (STOW-RS, or a local archive write)",
    ["outcome"],
    buckets=_STOW_BUCKETS,
)
RETRIES = Counter(
    "capture_delivery_retries",
    "Archive unavailable (down, timeout, 5xx): the step is retried later with backoff",
    ["step"],
)
WAKEUPS = Counter(
    "capture_worker_wakeups",
    "Idle delivery workers woken, by cause: notify (PostgreSQL NOTIFY from any replica), "
    "signal (a commit in this process), poll (the safety poll or a retry's time)",
    ["cause"],
)
for _cause in ("notify", "signal", "poll"):  # exported at 0 before the first wake-up
    WAKEUPS.labels(_cause)
SPOOL_TIDIED = Counter(
    "capture_spool_tidied_total",
    "Spooled files the idle tidy deleted: left by a crash, or of photos another replica delivered",
)
DB_COMMITS = Counter(
    "capture_db_commits",
    "Database transactions this process committed (each is a durable write: an fsync on "
    "SQLite with synchronous=FULL, a WAL flush on PostgreSQL)",
)


# --- events (called by the capture service and the outbox) ----------------------------------


def captured() -> None:
    """A new capture was spooled and committed (the 202 promise)."""
    RECEIVED.inc()


def verified() -> None:
    """The archive shows the capture: it is delivered."""
    VERIFIED.inc()


def failed(kind: str | None) -> None:
    """A capture ended ``failed``; ``kind`` is its ``failure_kind``."""
    FAILED.labels(kind if kind in FAILURE_KINDS else "other").inc()


def retried(step: Literal["stow", "verify"]) -> None:
    """The archive was unavailable for ``step``; the outbox will try again."""
    RETRIES.labels(step).inc()


def spool_tidied(files: int) -> None:
    """The idle tidy deleted ``files`` spooled files nobody needed (``Spool.tidy``)."""
    SPOOL_TIDIED.inc(files)


def woke(cause: str) -> None:
    """An idle delivery worker woke (``capture_api.store.wakeup``)."""
    WAKEUPS.labels(cause if cause in ("notify", "signal", "poll", "stop") else "other").inc()


def count_commits(engine: Database) -> None:
    """Count every commit made through ``engine`` in ``capture_db_commits_total``.

    Commits are what a photo's journey costs the database (issue 13: eleven per photo became
    four); the delivery benchmark and the tests read the counter around a photo.
    """
    on_commit(engine, _committed)


def _committed(_connection: object) -> None:
    DB_COMMITS.inc()


def commits() -> float:
    """This process's commits so far (``capture_db_commits_total``)."""
    return float(DB_COMMITS._value.get())


# --- state (read from the database at scrape time) --------------------------------------------


class OutboxCollector(Collector):
    """Outbox depth, oldest pending photo and EHR notifications, queried on every scrape.

    Cheap on a large table: both queries filter on the indexed ``status`` column and only
    the pending states. If the database does not answer, the scrape still succeeds with
    ``capture_metrics_database_up 0`` (and /readyz says why).
    """

    def __init__(self, engine: Database) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "capture_metrics_database_up", "1 if the outbox figures below could be read"
        )
        try:
            families = self._read()
        except reports.DatabaseUnavailable as exc:
            log.warning("metrics: the database did not answer (%s)", exc)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [*families, up]

    def _read(self) -> list[Metric]:
        pending = [s.value for s in PENDING]
        notify = [NotificationStatus.PENDING.value, NotificationStatus.FAILED.value]
        figures = reports.outbox_figures(self.engine, pending, notify)
        return [
            _by_status("capture_outbox_depth", _DEPTH_HELP, pending, figures.captures),
            _oldest_pending(figures.oldest_pending),
            _by_status("capture_notifications", _NOTIFY_HELP, notify, figures.notifications),
        ]


_DEPTH_HELP = "Captures not yet delivered, by status (received, encoded, stored), from the DB"
_NOTIFY_HELP = "EHR notifications (FHIR Media/DocumentReference) pending or failed, from the DB"


def _by_status(
    name: str, documentation: str, statuses: list[str], counts: dict[str, int]
) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status in statuses:
        family.add_metric([status], counts.get(status, 0))
    return family


def _oldest_pending(oldest: dt.datetime | None) -> Metric:
    """Seconds since the oldest undelivered capture arrived (0 when the outbox is empty)."""
    age = 0.0
    if oldest is not None:
        aware = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
        age = max(0.0, (utcnow() - aware).total_seconds())
    return GaugeMetricFamily(
        "capture_outbox_oldest_pending_seconds",
        "Age of the oldest capture not yet verified (alert when it passes your delivery target)",
        value=age,
    )


# --- exposition -------------------------------------------------------------------------------


def render(engine: Database) -> bytes:
    """The Prometheus text exposition: this process's (or every process's) events + DB state."""
    state = CollectorRegistry(auto_describe=False)
    state.register(OutboxCollector(engine))
    return generate_latest(_event_registry()) + generate_latest(state)


def _event_registry() -> CollectorRegistry:
    """The default registry, or one adding up every process's files in multiprocess mode."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return registry
