"""Real syslog collectors for the tests: a UDP, a TCP and a TLS socket server on loopback.

Each runs in a thread, keeps every message it receives, and parses it the way an audit record
repository would: RFC 5426 (one message per datagram) or RFC 5425/6587 octet counting
(``MSG-LEN SP SYSLOG-MSG``), then the RFC 5424 header, then the MSG (BOM + UTF-8 XML).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.managed import ManagedServer

#: RFC 5424 6: HEADER = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID,
#: then SP STRUCTURED-DATA [SP MSG].
RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>(?P<version>1) (?P<timestamp>\S+) (?P<hostname>\S+) "
    rb"(?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|\[.*?\])(?: (?P<msg>.*))?$",
    re.DOTALL,
)
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SyslogMessage:
    """One received message, parsed."""

    pri: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str
    body: bytes  # the MSG without its BOM

    @property
    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)  # raises ParseError unless well-formed

    @property
    def event_id(self) -> str:
        found = self.xml.find("EventIdentification/EventID")
        assert found is not None, self.body
        return found.attrib["csd-code"]


def parse(raw: bytes) -> SyslogMessage:
    """Parse one SYSLOG-MSG; AssertionError says what is wrong with it."""
    match = RFC5424.match(raw)
    assert match is not None, f"not an RFC 5424 message: {raw[:120]!r}"
    msg = match["msg"] or b""
    assert msg.startswith(BOM), "MSG must be UTF-8 with a BOM (RFC 5424 6.4)"
    return SyslogMessage(
        pri=int(match["pri"]),
        timestamp=match["timestamp"].decode(),
        hostname=match["hostname"].decode(),
        app_name=match["app"].decode(),
        procid=match["procid"].decode(),
        msgid=match["msgid"].decode(),
        structured_data=match["sd"].decode(),
        body=msg[len(BOM) :],
    )


class Collector(ManagedServer):
    """Common part: the received messages and a way to wait for them."""

    def __init__(self, port: int | None) -> None:
        self.port = port
        self.messages: list[SyslogMessage] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    def _keep(self, raw: bytes) -> None:
        try:
            message = parse(raw)
        except AssertionError as exc:
            with self._lock:
                self.errors.append(str(exc))
            return
        with self._lock:
            self.messages.append(message)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[SyslogMessage]:
        """At least ``count`` messages (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.messages)} of {count} messages ({self.errors})")

    def _serve(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class UdpCollector(Collector):
    """RFC 5426: each datagram is one message."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port or 0))
        self.port = int(self.sock.getsockname()[1])
        self.sock.settimeout(0.1)

    @property
    def url(self) -> str:
        return f"udp://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65_535)
            except TimeoutError:
                continue
            self._keep(data)
        self.sock.close()


class TcpCollector(Collector):
    """RFC 5425 / RFC 6587 octet counting over TCP (or TLS with ``tls``)."""

    def __init__(self, port: int | None = None, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(port)
        self.tls = tls
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port or 0))
        self.port = int(self.listener.getsockname()[1])
        self.listener.listen(8)
        self.listener.settimeout(0.1)
        self.connections = 0

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'tcp'}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()
        self.listener.close()

    def _read(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                with self._lock:
                    self.errors.append(f"TLS handshake: {exc}")
                return
        conn.settimeout(0.1)
        buffer = b""
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65_536)
                except TimeoutError:
                    continue
                except (ssl.SSLError, OSError):
                    return
                if not chunk:
                    return
                buffer += chunk
                buffer = self._frames(buffer)

    def _frames(self, buffer: bytes) -> bytes:
        """Take every complete ``MSG-LEN SP SYSLOG-MSG`` frame off the buffer."""
        while True:
            length, space, rest = buffer.partition(b" ")
            if not space:
                return buffer
            if not length.isdigit():
                with self._lock:
                    self.errors.append(f"bad octet count {length[:20]!r}")
                return b""
            size = int(length)
            if len(rest) < size:
                return buffer
            self._keep(rest[:size])
            buffer = rest[size:]


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A collector's TLS context with a fresh self-signed certificate for 127.0.0.1, and the
    certificate's PEM path (what ``CAPTURE_AUDIT_SYSLOG_CA_FILE`` points at)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audit-collector.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "collector.pem", folder / "collector.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
