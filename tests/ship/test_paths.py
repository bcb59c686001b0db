"""Every path setting works relative or absolute, resolved once at start-up (issue 12).

The README's default ``CAPTURE_DATA_DIR=./var`` is relative: the first ``make run`` never
delivered a photo because the embedded archive could not turn it into a ``file://`` URI.
These tests start the app from a folder of their own with no setting at all, as a new user's
shell does, and follow a photo into ``./var/archive``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydicom.fileset import FileSet

from capture_api.api.app import create_app
from capture_api.config import EhrRegistration, Settings
from tests.conftest import dciodvfy_errors, phone_jpeg


@pytest.fixture
def bare_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A new user's shell: in an empty folder, no capture setting in the environment."""
    for name in list(os.environ):
        if name.startswith("CAPTURE_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_relative_path_settings_are_made_absolute_when_read(
    bare_shell: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPTURE_WEB_CLIENT_DIR", "client")
    monkeypatch.setenv("CAPTURE_AUDIT_SYSLOG_CA_FILE", "certs/../ca.pem")
    settings = Settings()
    assert settings.data_dir == bare_shell / "var"  # the README's default, ./var
    assert settings.web_client_dir == bare_shell / "client"
    assert settings.audit_syslog_ca_file == bare_shell / "ca.pem"
    assert settings.local_archive_dir == bare_shell / "var" / "archive"
    assert settings.sqlalchemy_url == f"sqlite:///{bare_shell / 'var' / 'capture.db'}"
    key = EhrRegistration(iss="https://ehr/fhir", client_id="c", private_key_file=Path("k.pem"))
    assert key.private_key_file == bare_shell / "k.pem"
    absolute = Settings(data_dir=Path("/srv/capture"))
    assert absolute.data_dir == Path("/srv/capture")


def _wait_verified(client: TestClient, capture_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/captures/{capture_id}").json()
        if body["status"] in ("verified", "failed"):
            break
        time.sleep(0.05)
    return body


def test_the_default_data_folder_delivers_even_after_the_process_changes_folder(
    bare_shell: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with TestClient(create_app(Settings(poll_seconds=0.05))) as client:
        context = client.post("/api/v1/contexts", json={"patient": {"id": "P-PATH"}}).json()
        for n, capture_id in enumerate(("first", "after-chdir")):
            if n:
                os.chdir(tmp_path_factory.mktemp("elsewhere"))
            sent = client.post(
                "/api/v1/captures",
                data={"capture_id": capture_id, "context_id": context["context_id"]},
                files={"photo": ("p.jpg", phone_jpeg(320, 240, seed=n), "image/jpeg")},
            )
            assert sent.status_code == 202, sent.text
            assert _wait_verified(client, capture_id)["status"] == "verified"
    archive = bare_shell / "var" / "archive"
    instances = list(FileSet(archive / "DICOMDIR"))
    assert len(instances) == 2
    for instance in instances:
        assert Path(instance.path).is_relative_to(archive)
        assert dciodvfy_errors(Path(instance.path)) == []
