"""One real Orthanc and one capture API process (integration mode, PostgreSQL) for these tests.

They live for the whole ``tests/hostile`` package: the corpus, the injection strings, the
streamed 200 MB upload and the schemathesis run all hit the same process, so "the server keeps
serving" and "nothing already accepted is lost" are checked across all of them, and the last
test reads the process's whole log for errors. (The EHR-mode stack of the log test is
``tests/hostile/ehr_stack.py``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ehr_sandbox.server import SandboxServer
from tests.deliver.service_process import ServiceProcess, fresh_postgres_database
from tests.orthanc import OrthancServer

#: Uploads are not rate limited here: the corpus sends more than a nurse's burst per minute.
UNLIMITED = {
    "CAPTURE_RATE_LIMIT_UPLOADS_PER_MINUTE": "0",
    "CAPTURE_RATE_LIMIT_LOGIN_PER_MINUTE": "0",
}


def service_settings(data_dir: Path, archive_url: str | None = None) -> dict[str, str]:
    """``CAPTURE_*`` settings of a quick-polling test service (local archive without a URL)."""
    settings = {
        "CAPTURE_DATA_DIR": str(data_dir),
        "CAPTURE_POLL_SECONDS": "0.1",
        "CAPTURE_RETRY_BASE_SECONDS": "0.2",
        "CAPTURE_RETRY_MAX_SECONDS": "1",
        **UNLIMITED,
    }
    if archive_url:
        settings["CAPTURE_DICOMWEB_URL"] = archive_url
    return settings


@pytest.fixture(scope="package")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="package")
def api_database() -> Iterator[str]:
    """A fresh PostgreSQL database: stricter than SQLite (a NUL byte in text is an error)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="package")
def worklist() -> Iterator[SandboxServer]:
    """The sandbox's UPS-RS worklist (one SCHEDULED workitem per sandbox encounter)."""
    with SandboxServer() as sandbox:
        yield sandbox


@pytest.fixture(scope="package")
def api(
    orthanc: OrthancServer,
    api_database: str,
    worklist: SandboxServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    """The capture API, integration mode (no EHR), on PostgreSQL, delivering to Orthanc, with
    the sandbox's worklist (unconfigured, the worklist routes answer 503 by design)."""
    folder = tmp_path_factory.mktemp("api")
    settings = service_settings(folder / "data", orthanc.base_url)
    settings["DATABASE_URL"] = api_database
    settings["CAPTURE_WORKLIST_URL"] = f"{worklist.state.base_url}/dicom-web"
    settings["CAPTURE_WORKLIST_STATION_CODE"] = "DERM-PHONE-01"
    with ServiceProcess(settings, log_path=folder / "api.log") as process:
        yield process


@pytest.fixture(scope="package")
def api_pid(api: ServiceProcess) -> int:
    """The process id at start: if it changes, the process died and something restarted it."""
    assert api.pid is not None
    return api.pid
