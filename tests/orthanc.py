"""A real Orthanc (with the DICOMweb plugin) for tests: one per fixture, on a free port.

Reusable by any test that needs an archive::

    with OrthancServer(tmp_path / "orthanc") as orthanc:
        archive = DicomWebArchive(orthanc.base_url)

The configuration follows RECIPES.md ("Orthanc with DICOMweb"): only the DICOMweb plugin, no
DICOM port, HTTP reachable from localhost only, storage in ``workdir/db`` so that it persists
across ``stop()``/``start()`` (and ``restart()``). No skip when Orthanc is missing: the tests
need it, and ``make test`` installs it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.managed import ManagedServer, log_tail

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
_STARTUP_SECONDS = 15.0
_STOP_SECONDS = 15.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OrthancServer(ManagedServer):
    """Start, stop, restart and inspect one Orthanc process."""

    def __init__(
        self, workdir: Path, *, port: int | None = None, users: dict[str, str] | None = None
    ) -> None:
        if not ORTHANC.exists() or not DICOMWEB_PLUGIN.exists():
            raise RuntimeError(
                "Orthanc with its DICOMweb plugin is not installed: "
                "run make test (installs orthanc orthanc-dicomweb)"
            )
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.users = dict(users) if users else None
        self._process: subprocess.Popen[bytes] | None = None

    # --- addresses -----------------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        """Orthanc's native REST API root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The DICOMweb root (PS3.18 service base URL)."""
        return f"{self.rest_url}/dicom-web"

    @property
    def auth(self) -> httpx.BasicAuth | None:
        """Credentials of the first registered user (for the helper's own REST calls)."""
        if not self.users:
            return None
        user, password = next(iter(self.users.items()))
        return httpx.BasicAuth(user, password)

    @property
    def log_path(self) -> Path:
        return self.workdir / "orthanc.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- lifecycle -----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The JSON configuration of RECIPES.md, with this server's port, folder and users."""
        storage = str(self.workdir / "db")
        config: dict[str, Any] = {
            "Name": "capture-test",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "DicomServerEnabled": False,
            "SaveJobs": False,
            "DefaultEncoding": "Utf8",
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
        }
        if self.users:
            config["RegisteredUsers"] = self.users
        return config

    def start(self) -> None:
        """Write the config, launch Orthanc, and wait until DICOMweb answers 200."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        self._process = subprocess.Popen(
            [str(ORTHANC), f"--logfile={self.log_path}", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _STARTUP_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                last = f"Orthanc exited with code {self._process.returncode}"
                break
            try:
                answer = httpx.get(f"{self.base_url}/studies", auth=self.auth, timeout=1.0)
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"Orthanc did not start on port {self.port} ({last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM and wait: Orthanc flushes its index, so the data survives a restart."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL (a crash): what an archive that vanishes mid-delivery looks like."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    # --- inspection (Orthanc's native REST API, independent of the DICOMweb code) ---------------

    def _rest(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = httpx.request(
            method, f"{self.rest_url}{path}", auth=self.auth, timeout=10.0, **kwargs
        )
        answer.raise_for_status()
        return answer.json()

    def instance_count(self) -> int:
        """How many instances Orthanc holds (``GET /instances``)."""
        return len(self._rest("GET", "/instances"))

    def sop_uids(self) -> set[str]:
        """The SOP Instance UIDs Orthanc holds (``GET /instances?expand``)."""
        return {
            item["MainDicomTags"]["SOPInstanceUID"]
            for item in self._rest("GET", "/instances?expand")
        }

    def clear(self) -> None:
        """Delete every patient (and so every instance): a clean archive between tests."""
        for patient in self._rest("GET", "/patients"):
            self._rest("DELETE", f"/patients/{patient}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


__all__ = ["OrthancServer", "free_port"]
