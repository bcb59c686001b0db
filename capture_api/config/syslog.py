"""Where the ATNA audit messages go (``CAPTURE_AUDIT_SYSLOG_URL``), parsed when settings are read.

The sender lives in ``capture_api.audit.syslog``; the address is configuration, so a bad one is
refused at start-up with an example of a good one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Transport = Literal["udp", "tcp", "tls"]
_DEFAULT_PORTS: dict[str, int] = {"udp": 514, "tcp": 514, "tls": 6514}


@dataclass(frozen=True)
class SyslogTarget:
    """Where audit messages go: ``udp://host:514``, ``tcp://host:514`` or ``tls://host:6514``."""

    transport: Transport
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> SyslogTarget:
        """Parse and check the setting; a ValueError says what a valid one looks like."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        example = "e.g. udp://audit.example:514, tcp://audit.example:514, tls://audit.example:6514"
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(
                f"the audit syslog URL must start with udp://, tcp:// or tls:// ({example})"
            )
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise ValueError(f"the audit syslog URL has an invalid port ({example})") from exc
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"the audit syslog URL needs a host and nothing else ({example})")
        transport: Transport = "udp" if scheme == "udp" else "tcp" if scheme == "tcp" else "tls"
        return cls(transport, parts.hostname, port)
