"""Which audit record repository (syslog collector) a database's audit rows are forwarded to,
and the queue of rows not yet sent, kept in the database so that it survives a restart.

The API registers its collector when it starts (``attach``, from the audit middleware) and
stops it at shutdown (``detach``, which sends what is queued first). ``trail.append`` asks
``sender_for`` before every insert (a forwarded row is also queued in ``audit_forward``, in
the row's own transaction) and calls ``forward`` after it. Keyed by database URL, because the
rows are written through whichever engine the caller holds (API, outbox worker, notifier).

**The queue is the table.** The sender keeps rows in memory and sends them in order; each
row the collector took leaves ``audit_forward`` (in batches: at most ``ACK_BATCH`` rows or
``ACK_SECONDS`` late, and whenever the queue runs empty). What is still there at a start
(``replay``, from ``Runtime.start`` and ``capture-api worker``) was queued but never sent, by
this process before it stopped or died, and is sent again, oldest first; so is what the
in-memory queue had to drop when it was full, once it drains. Rows younger than
``REPLAY_AFTER`` are left to the process that wrote them. Delivery is therefore at least
once: after a crash, a message the collector took just before may come again.

A process that never attached (``capture-api worker``) forwards with its own settings
(``CAPTURE_AUDIT_SYSLOG_URL`` from the environment), so worker-side events such as STOW and
verification reach the collector too.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import threading
import time
from typing import TYPE_CHECKING

from capture_api.audit.dicom_audit import audit_message
from capture_api.audit.source import AuditSource, this_host
from capture_api.audit.syslog import SyslogSender, frame, syslog_message
from capture_api.config.syslog import SyslogTarget
from capture_api.store import audit_rows
from capture_api.store.audit_rows import database_key
from capture_api.store.db import Database
from capture_api.store.leases import owner_name

if TYPE_CHECKING:
    from capture_api.config import Settings
    from capture_api.store.records import AuditEventRecord

log = logging.getLogger("capture.audit")

#: Rows queued more recently than this are left to the process that wrote them (it is about
#: to send them); older ones are replayed.
REPLAY_AFTER = dt.timedelta(seconds=30)
ACK_BATCH = 200
ACK_SECONDS = 1.0

#: One queued message: the row, and the database it is stored in (where it leaves the queue).
Queued = tuple[Database, "AuditEventRecord"]
AuditSender = SyslogSender[Queued]

_lock = threading.Lock()
_senders: dict[str, AuditSender | None] = {}  # None: this database is not forwarded
_fallback: list[AuditSender | None] = []  # [] until computed once for this process


def sender_from_settings(settings: Settings) -> AuditSender | None:
    """A sender for ``CAPTURE_AUDIT_SYSLOG_URL`` (None when forwarding is not configured)."""
    if not settings.audit_syslog_url:
        return None
    target = SyslogTarget.parse(settings.audit_syslog_url)
    source = AuditSource.from_settings(settings)
    hostname = this_host()

    def render(item: Queued) -> bytes:
        row = item[1]
        body = audit_message(row, source)
        message = syslog_message(body, app_name=source.app_name, hostname=hostname, at=row.at)
        return frame(message, target.transport)

    acks = _Acknowledgements()
    sender = SyslogSender(
        target,
        render,
        tls=tls_context(settings) if target.transport == "tls" else None,
        queue_size=settings.audit_queue_size,
        on_sent=acks.sent,
    )

    def idle() -> None:
        acks.flush()
        if sender.overflowed:  # rows were dropped from memory: they are still in the table
            sender.refilled()
            for engine in acks.engines():
                if replay(engine, sender) >= sender.queue_size:
                    sender.overflow()  # more than fits: fetch the rest when this drained

    sender.on_idle = idle
    return sender


class _Acknowledgements:
    """The rows the collector took, removed from ``audit_forward`` in batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, tuple[Database, list[int]]] = {}
        self._known: dict[str, Database] = {}
        self._since = time.monotonic()

    def sent(self, item: Queued) -> None:
        engine, row = item
        if row.id is None:
            return
        key = database_key(engine)
        with self._lock:
            self._known[key] = engine
            self._ids.setdefault(key, (engine, []))[1].append(row.id)
            due = sum(len(ids) for _, ids in self._ids.values()) >= ACK_BATCH
            due = due or time.monotonic() - self._since >= ACK_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batches, self._ids = list(self._ids.values()), {}
            self._since = time.monotonic()
        for engine, ids in batches:
            audit_rows.forwarded(engine, ids)

    def engines(self) -> list[Database]:
        with self._lock:
            return list(self._known.values())


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Server authentication against the configured CA (else the system's), and our client
    certificate when one is configured (ATNA node authentication is mutual TLS)."""
    ca_file = settings.audit_syslog_ca_file
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if settings.audit_syslog_cert_file:
        key = settings.audit_syslog_key_file
        context.load_cert_chain(settings.audit_syslog_cert_file, str(key) if key else None)
    return context


def attach(settings: Settings) -> AuditSender | None:
    """Forward the rows of ``settings``' database with ``settings``' collector."""
    sender = sender_from_settings(settings)
    key = database_key(settings.sqlalchemy_url)
    with _lock:
        previous = _senders.pop(key, None)
        _senders[key] = sender
    if previous is not None:
        previous.stop(flush_seconds=0)
    return sender


def detach(settings: Settings, flush_seconds: float = 2.0) -> None:
    """Stop forwarding for ``settings``' database, after sending what is queued."""
    with _lock:
        sender = _senders.pop(database_key(settings.sqlalchemy_url), None)
    if sender is not None:
        sender.stop(flush_seconds)


def is_attached(settings: Settings) -> bool:
    """Whether ``settings``' database was attached in this process (with or without collector)."""
    with _lock:
        return database_key(settings.sqlalchemy_url) in _senders


def sender_for(engine: Database) -> AuditSender | None:
    """The sender the rows written through ``engine`` go to (None: not forwarded)."""
    key = database_key(engine)
    with _lock:
        if key in _senders:
            return _senders[key]
    return _process_sender()


def forward(engine: Database, row: AuditEventRecord) -> None:
    """Queue ``row`` for the collector, if there is one (never blocks, never raises)."""
    try:
        sender = sender_for(engine)
        if sender is not None:
            sender.submit((engine, row))
    except Exception as exc:
        log.error("audit event not forwarded (%s)", type(exc).__name__)


def queue_owner() -> str:
    """Who queues this process's rows in ``audit_forward`` (a lease owner name)."""
    return owner_name("audit")


def replay(engine: Database, sender: AuditSender | None = None) -> int:
    """Queue the rows of ``engine``'s database that were never sent (queued more than
    ``REPLAY_AFTER`` ago), oldest first; returns how many. Never raises."""
    sender = sender or sender_for(engine)
    if sender is None:
        return 0
    try:
        before = dt.datetime.now(dt.UTC) - REPLAY_AFTER
        rows = audit_rows.pending_forwards(engine, queued_before=before, limit=sender.queue_size)
    except Exception as exc:
        log.error("audit forwarding queue not read (%s)", type(exc).__name__)
        return 0
    for row in rows:
        sender.submit((engine, row))
    if rows:
        log.info("audit forwarding: %d unsent events queued again", len(rows))
    return len(rows)


def _process_sender() -> AuditSender | None:
    """The collector of this process's own settings, for processes that never attached."""
    with _lock:
        if not _fallback:
            _fallback.append(_sender_from_environment())
        return _fallback[0]


def _sender_from_environment() -> AuditSender | None:
    from capture_api.config import get_settings

    try:
        return sender_from_settings(get_settings())
    except Exception as exc:  # settings invalid here: the API refuses them at start-up anyway
        log.warning("audit forwarding from the environment not set up (%s)", type(exc).__name__)
        return None
