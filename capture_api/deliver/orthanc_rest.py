"""Deleting a rejected instance from Orthanc (``CAPTURE_ARCHIVE_DELETE_REJECTED``, issue 18).

DICOMweb has no delete transaction, and archives treat an IHE IOCM rejection note differently
(docs/iocm.md): dcm4chee-arc hides the rejected instances itself; Orthanc stores the KOS like
any instance and keeps showing what it rejects. For Orthanc, capture can delete the instance
through its own REST API once the note is in the archive: ``POST /tools/lookup`` with the SOP
Instance UID gives Orthanc's id, ``DELETE /instances/{id}`` removes it (Orthanc REST API,
https://orthanc.uclouvain.be/book/users/rest.html). Off by default: deleting is for sites that
want it, the rejection note alone is what IOCM asks for.
"""

from __future__ import annotations

from typing import Any

import httpx

from capture_api.config import Settings
from capture_api.deliver.archive_auth import auth_from_settings
from capture_api.exceptions import ArchiveRejected, ArchiveUnavailable


class OrthancRemover:
    """Deletes instances by SOP Instance UID through Orthanc's REST API."""

    def __init__(
        self, rest_url: str, auth: httpx.Auth | None = None, timeout: float = 30.0
    ) -> None:
        self.rest_url = rest_url.rstrip("/")
        self._auth = auth
        self._client = httpx.Client(timeout=timeout, headers={"User-Agent": "capture"})

    def remove(self, sop_instance_uid: str) -> bool:
        """Delete the instance; False when Orthanc does not hold it (deleted already)."""
        found = self._send("POST", "/tools/lookup", content=sop_instance_uid)
        ids = [
            item["ID"]
            for item in found.json()
            if isinstance(item, dict) and item.get("Type") == "Instance"
        ]
        for orthanc_id in ids:
            self._send("DELETE", f"/instances/{orthanc_id}")
        return bool(ids)

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(
                method,
                f"{self.rest_url}{path}",
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise ArchiveUnavailable(f"cannot reach Orthanc's REST API: {exc}") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise ArchiveUnavailable(f"Orthanc answered HTTP {response.status_code} ({method})")
        if response.status_code >= 400:
            raise ArchiveRejected(
                f"Orthanc refused {method} {path.split('/')[1]} (HTTP {response.status_code}): "
                "check CAPTURE_ARCHIVE_REST_URL and the archive's credentials"
            )
        return response


def remover_from_settings(settings: Settings) -> OrthancRemover | None:
    """The remover when ``CAPTURE_ARCHIVE_DELETE_REJECTED`` is on with a DICOMweb archive."""
    if not settings.archive_delete_rejected or not settings.dicomweb_url:
        return None
    rest = settings.archive_rest_url or settings.dicomweb_url.rstrip("/").rsplit("/", 1)[0]
    return OrthancRemover(rest, auth_from_settings(settings), settings.archive_timeout_seconds)
