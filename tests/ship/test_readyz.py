"""/readyz against real dependencies: Orthanc up, stopped, on a wrong port, refusing us,
never answering; PostgreSQL dropped under a running app; data folders that cannot be written.

Each case checks the status code, which dependency is named, and that the detail tells an
operator what to check without showing a password or a connection string.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.api.readiness import TIMEOUT_SECONDS
from capture_api.config import Settings
from tests.deliver.service_process import _libpq, fresh_postgres_database
from tests.orthanc import OrthancServer, free_port

PASSWORD = "readyz-Secret-42"


def _app(tmp: Path, **values: Any) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp / "data", worker_enabled=False, **values)))


def _ready(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return response.status_code, body


def _failed(body: dict[str, Any]) -> dict[str, str]:
    return {name: check["detail"] for name, check in body["checks"].items() if not check["ok"]}


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


def test_ready_with_orthanc_then_503_naming_the_archive_when_it_stops(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    with _app(tmp_path, dicomweb_url=orthanc.base_url) as client:
        status, body = _ready(client)
        assert (status, body["status"]) == (200, "ready"), body
        assert set(body["checks"]) == {"database", "spool", "archive", "loops"}

        orthanc.stop()
        status, body = _ready(client)
        assert (status, body["status"]) == (503, "not ready")
        assert list(_failed(body)) == ["archive"]
        assert "CAPTURE_DICOMWEB_URL" in _failed(body)["archive"]

        orthanc.start()
        assert _ready(client)[0] == 200


def test_wrong_port_is_503(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    with _app(tmp_path, dicomweb_url=url) as client:
        status, body = _ready(client)
    assert status == 503
    assert "cannot reach the DICOMweb archive" in _failed(body)["archive"]


def test_wrong_base_path_says_which_setting(orthanc: OrthancServer, tmp_path: Path) -> None:
    with _app(tmp_path, dicomweb_url=f"{orthanc.rest_url}/not-dicom-web") as client:
        status, body = _ready(client)
    assert status == 503
    assert "HTTP 404" in _failed(body)["archive"]
    assert "the part before /studies" in _failed(body)["archive"]


def test_archive_refusing_credentials_is_503_without_the_password(tmp_path: Path) -> None:
    users = {"capture": PASSWORD}
    with OrthancServer(tmp_path / "orthanc", users=users) as orthanc:
        wrong = {"archive_username": "capture", "archive_password": "wrong"}
        with _app(tmp_path, dicomweb_url=orthanc.base_url, archive_auth="basic", **wrong) as c:
            status, body = _ready(c)
        assert status == 503
        assert "refused our credentials (HTTP 401)" in _failed(body)["archive"]
        assert "CAPTURE_ARCHIVE_PASSWORD" in _failed(body)["archive"]

        right = {"archive_username": "capture", "archive_password": PASSWORD}
        with _app(tmp_path, dicomweb_url=orthanc.base_url, archive_auth="basic", **right) as c:
            response = c.get("/readyz")
        assert response.status_code == 200, response.text
        assert PASSWORD not in response.text


def test_archive_that_never_answers_fails_within_the_probe_timeout(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/dicom-web"
        with _app(tmp_path, dicomweb_url=url) as client:
            started = time.monotonic()
            status, body = _ready(client)
            elapsed = time.monotonic() - started
    assert status == 503
    assert "did not answer within" in _failed(body)["archive"]
    assert elapsed < TIMEOUT_SECONDS + 1.5


def test_local_archive_and_spool_must_be_writable(tmp_path: Path) -> None:
    with _app(tmp_path) as client:
        status, body = _ready(client)
        assert status == 200, body
        for folder in ("archive", "spool"):  # a file where the folder should be
            shutil.rmtree(tmp_path / "data" / folder, ignore_errors=True)
            (tmp_path / "data" / folder).write_text("not a folder")
        status, body = _ready(client)
    assert status == 503
    assert set(_failed(body)) == {"archive", "spool"}
    assert "check CAPTURE_DATA_DIR" in _failed(body)["spool"]


def test_database_dropped_under_the_app_is_503_without_the_url(tmp_path: Path) -> None:
    with fresh_postgres_database() as url, _app(tmp_path, database_url=url) as client:
        assert _ready(client)[0] == 200
        name = url.rsplit("/", 1)[-1]
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert list(_failed(body)) == ["database"]
    assert "check DATABASE_URL" in _failed(body)["database"]
    assert name not in response.text and "postgres" not in response.text
