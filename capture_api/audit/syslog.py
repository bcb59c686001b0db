"""Forward audit messages to an audit record repository: syslog (IHE ATNA, ITI-20).

Framing is written here rather than taken from a logging handler because the handlers on PyPI
drop what they cannot send, and the audit trail must not: a handler is fire-and-forget, this
sender keeps each message until the collector took it. The format itself is small:

* RFC 5424 SYSLOG-MSG: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM MSG``, with
  PRI = facility 10 (security/authorization) * 8 + severity 5 (notice), MSGID
  ``IHE+RFC-3881`` and MSG the DICOM audit message XML in UTF-8 (ITI TF-2 3.20.4.1.2);
* RFC 5426 over UDP: one message per datagram (lost when the collector is down: UDP says so);
* RFC 5425 over TLS, and the same octet counting over plain TCP (RFC 6587 3.4.1):
  ``MSG-LEN SP SYSLOG-MSG``.

``SyslogSender`` never blocks a request: ``submit`` appends to a bounded in-memory queue and
one background thread sends, reconnecting with exponential backoff while the collector is
down (the database row, written before, is the record that is never lost; when the queue is
full the oldest queued message is dropped and counted). ``on_sent`` hears of every message
the collector took and ``on_idle`` of every time the queue ran empty (the audit forwarder
uses them to keep its queue in the database, ``capture_api.audit.forwarding``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from capture_api.config.syslog import SyslogTarget, Transport
from capture_api.os_threads import NamedThread

log = logging.getLogger("capture.audit.syslog")


#: ITI TF-2 3.20.4.1.2: facility 10 (security/authorization), severity 5 (notice).
FACILITY_AUTHPRIV = 10
SEVERITY_NOTICE = 5
MSGID = "IHE+RFC-3881"
BOM = b"\xef\xbb\xbf"
#: RFC 5426 3.2: a datagram larger than this may not arrive; IPv4 UDP payload limit.
MAX_DATAGRAM = 65_507


def syslog_message(
    body: bytes,
    *,
    app_name: str,
    hostname: str,
    at: dt.datetime,
    procid: int | None = None,
    severity: int = SEVERITY_NOTICE,
) -> bytes:
    """One RFC 5424 SYSLOG-MSG whose MSG is ``body`` (UTF-8, so it starts with the BOM)."""
    pri = FACILITY_AUTHPRIV * 8 + severity
    stamp = at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    header = " ".join(
        (
            f"<{pri}>1",
            stamp,
            _header_field(hostname, 255),
            _header_field(app_name, 48),
            str(procid if procid is not None else os.getpid()),
            MSGID,
            "-",  # no STRUCTURED-DATA
        )
    )
    return header.encode("ascii") + b" " + BOM + body


def frame(message: bytes, transport: Transport) -> bytes:
    """UDP: the message as it is; TCP/TLS: octet counting (``MSG-LEN SP SYSLOG-MSG``)."""
    if transport == "udp":
        return message
    return str(len(message)).encode("ascii") + b" " + message


def _header_field(value: str, limit: int) -> str:
    """RFC 5424 6.2: printable US-ASCII without spaces, bounded; "-" when nothing is left."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return cleaned or "-"


# --- sending -------------------------------------------------------------------------------------

Item = TypeVar("Item")


@dataclass
class SenderStats:
    """What the sender did (for metrics and tests); counts only, never message content."""

    sent: int = 0
    dropped: int = 0  # queue full, message unrenderable, or left unsent at shutdown
    errors: int = 0  # failed connection or send attempts (each is retried)


@dataclass
class SyslogSender(Generic[Item]):
    """A bounded queue and one thread that delivers every queued item, retrying until it can.

    ``render`` turns a queued item into the framed bytes to send (called in the sender thread,
    so building the XML costs the request nothing).
    """

    target: SyslogTarget
    render: Callable[[Item], bytes]
    tls: ssl.SSLContext | None = None
    queue_size: int = 10_000
    connect_timeout: float = 5.0
    retry_base: float = 0.1
    retry_max: float = 10.0
    stats: SenderStats = field(default_factory=SenderStats)
    #: Called in the sender thread after each item the collector took (never raises into it).
    on_sent: Callable[[Item], None] | None = None
    #: Called in the sender thread whenever the queue ran empty, and at stop.
    on_idle: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._queue: deque[Item] = deque()
        self._ready = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self._overflow = False

    # --- the caller's side ----------------------------------------------------------------------

    def submit(self, item: Item) -> None:
        """Queue one item (never blocks); the oldest is dropped when the queue is full."""
        with self._ready:
            if self._stopping.is_set():
                self.stats.dropped += 1
                return
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self.stats.dropped += 1
                self._overflow = True
            self._queue.append(item)
            if self._thread is None:
                self._thread = NamedThread(target=self._run, name="audit-syslog", daemon=True)
                self._thread.start()
            self._ready.notify()

    @property
    def pending(self) -> int:
        with self._ready:
            return len(self._queue)

    def stop(self, flush_seconds: float = 2.0) -> None:
        """Send what is queued for up to ``flush_seconds``, then stop (the rest is counted)."""
        thread = self._thread
        deadline = time.monotonic() + flush_seconds
        while self.pending and thread is not None and thread.is_alive():
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        with self._ready:
            self._stopping.set()
            self.stats.dropped += len(self._queue)
            self._queue.clear()
            self._ready.notify_all()
        if thread is not None:
            thread.join(timeout=self.connect_timeout + 1)
        self._close()
        self._hook(self.on_idle)

    @property
    def overflowed(self) -> bool:
        """Whether items were dropped because the queue was full (reset by ``refilled``)."""
        with self._ready:
            return self._overflow

    def refilled(self) -> None:
        with self._ready:
            self._overflow = False

    def overflow(self) -> None:
        """Note that more items wait elsewhere than the queue held (see ``overflowed``)."""
        with self._ready:
            self._overflow = True

    # --- the sender thread -----------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.retry_base
        while True:
            with self._ready:
                idle = not self._queue
            if idle:
                self._hook(self.on_idle)  # may submit (refill): looked at again below
            with self._ready:
                while not self._queue and not self._stopping.is_set():
                    self._ready.wait()
                if self._stopping.is_set():
                    return
                item = self._queue[0]
            try:
                data = self.render(item)
            except Exception as exc:  # a bug in rendering must not stop the trail
                log.warning("audit message could not be built (%s); dropped", type(exc).__name__)
                self._pop(item, sent=False)
                continue
            try:
                self._send(data)
            except OSError as exc:
                self.stats.errors += 1
                log.warning(
                    "audit collector %s://%s:%d unreachable (%s); retrying in %.1f s",
                    self.target.transport,
                    self.target.host,
                    self.target.port,
                    type(exc).__name__,
                    delay,
                )
                self._close()
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, self.retry_max)
                continue
            delay = self.retry_base
            self._pop(item, sent=True)
            self._hook(functools.partial(self.on_sent, item) if self.on_sent else None)

    def _hook(self, hook: Callable[[], None] | None) -> None:
        if hook is None:
            return
        try:
            hook()
        except Exception as exc:  # bookkeeping must never stop the sender
            log.warning("audit forwarding bookkeeping failed (%s)", type(exc).__name__)

    def _pop(self, item: Item, *, sent: bool) -> None:
        with self._ready:
            if self._queue and self._queue[0] is item:
                self._queue.popleft()
            if sent:
                self.stats.sent += 1
            else:
                self.stats.dropped += 1

    def _send(self, data: bytes) -> None:
        if self.target.transport == "udp":
            self._send_datagram(data)
            return
        if self._sock is not None and _peer_closed(self._sock):
            self._close()  # the collector went away since the last message: reconnect first
        if self._sock is None:
            self._sock = self._connect()
        self._sock.sendall(data)

    def _send_datagram(self, data: bytes) -> None:
        if len(data) > MAX_DATAGRAM:
            raise OSError(f"audit message of {len(data)} bytes is too large for UDP")
        if self._sock is None or self._address is None:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.target.host, self.target.port, type=socket.SOCK_DGRAM
            )[0]
            self._sock = socket.socket(family, kind, proto)
            self._address = (str(address[0]), int(address[1]))
        self._sock.sendto(data, self._address)

    def _connect(self) -> socket.socket:
        raw = socket.create_connection(
            (self.target.host, self.target.port), timeout=self.connect_timeout
        )
        if self.target.transport != "tls":
            return raw
        context = self.tls or ssl.create_default_context()
        try:
            return context.wrap_socket(raw, server_hostname=self.target.host)
        except BaseException:
            raw.close()
            raise

    def _close(self) -> None:
        sock, self._sock, self._address = self._sock, None, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _peer_closed(sock: socket.socket) -> bool:
    """True when the collector closed the connection (it never sends us anything else).

    Without this, the first message after a collector restart would be written into a dead
    connection and lost without an error.
    """
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return False  # e.g. a TLS 1.3 session ticket: no application data, still open
    except OSError:
        return True
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)
