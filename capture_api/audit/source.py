"""Who records the trail: this deployment as an audit source (FHIR AuditEvent.source, DICOM
AuditSourceIdentification) and the server agent of every request event.

Built once from the settings; the recording host of each row is kept on the row itself
(``node``), since several replicas write one trail.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capture_api.config import Settings

#: The archive when no DICOMweb URL is configured (README: the embedded DICOMDIR archive).
EMBEDDED_ARCHIVE = "embedded local archive (DICOMDIR)"
#: Worker events whose other party is the archive (the row's ``peer`` is left empty for them).
ARCHIVE_ACTIONS = frozenset({"stow", "verify"})


def this_host() -> str:
    """The recording host's name, as the row's ``node`` and the syslog HOSTNAME."""
    return socket.gethostname()[:128] or "localhost"


@dataclass(frozen=True)
class AuditSource:
    """This service as the observer of its own events."""

    app_name: str = "capture"
    site: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    archive: str = EMBEDDED_ARCHIVE

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditSource:
        return cls(
            app_name=settings.audit_app_name,
            site=settings.audit_site,
            public_url=settings.public_url.rstrip("/"),
            archive=settings.dicomweb_url or EMBEDDED_ARCHIVE,
        )

    def peer_of(self, action: str, peer: str | None) -> str | None:
        """The other system of a worker's event: as recorded, else this deployment's archive."""
        return peer or (self.archive if action in ARCHIVE_ACTIONS else None)

    def observer(self, node: str | None) -> str:
        """``capture@host``: which process of which deployment wrote the event."""
        return f"{self.app_name}@{node}" if node else self.app_name
