"""Which audit record repository (syslog collector) a database's audit rows are forwarded to.

The API registers its collector when it starts (``attach``, from the audit middleware) and
stops it at shutdown (``detach``, which sends what is queued first). ``trail.append`` calls
``forward`` after every insert. Keyed by database URL, because the rows are written through
whichever engine the caller holds (API, outbox worker, notification worker).

A process that never attached (``capture-api worker``) forwards with its own settings
(``CAPTURE_AUDIT_SYSLOG_URL`` from the environment), so worker-side events such as STOW and
verification reach the collector too.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import TYPE_CHECKING

from capture_api.audit.dicom_audit import audit_message
from capture_api.audit.source import AuditSource, this_host
from capture_api.audit.syslog import SyslogSender, frame, syslog_message
from capture_api.config.syslog import SyslogTarget
from capture_api.store.audit_rows import database_key
from capture_api.store.db import Database

if TYPE_CHECKING:
    from capture_api.config import Settings
    from capture_api.store.records import AuditEventRecord

log = logging.getLogger("capture.audit")

AuditSender = SyslogSender["AuditEventRecord"]

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

    def render(row: AuditEventRecord) -> bytes:
        body = audit_message(row, source)
        message = syslog_message(body, app_name=source.app_name, hostname=hostname, at=row.at)
        return frame(message, target.transport)

    return SyslogSender(
        target,
        render,
        tls=tls_context(settings) if target.transport == "tls" else None,
        queue_size=settings.audit_queue_size,
    )


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
            sender.submit(row)
    except Exception as exc:
        log.error("audit event not forwarded (%s)", type(exc).__name__)


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
