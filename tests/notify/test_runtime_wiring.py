"""The notifier as the service runs it: launch, photograph, and the chart gets one Media."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from capture_api.api.app import create_app
from capture_api.capture.anatomy import resolve
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from ehr_sandbox import data
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.server import SandboxServer
from tests.conftest import phone_jpeg
from tests.security.browser import launch_from_ehr

APP = "http://capture.test"
SITE, _ = resolve("sacrum")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, SandboxServer]]:
    with SandboxServer(app_launch_url=f"{APP}/launch") as ehr:
        register_client(ehr.state, "capture-chart", f"{APP}/launch/callback", secret="s3cret")
        settings = Settings(
            data_dir=tmp_path,
            public_url=APP,
            cookie_secure=False,
            poll_seconds=0.05,
            wado_url="https://pacs.example/dicom-web",
            ehrs=[
                EhrRegistration(
                    iss=ehr.fhir_base,
                    client_id="capture-chart",
                    auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC,
                    client_secret=SecretStr("s3cret"),
                    mrn_system=data.MRN_SYSTEM,
                    notify=["Media"],
                )
            ],
        )
        with TestClient(create_app(settings), base_url=APP) as app:
            yield app, ehr


def _launch(app: TestClient, ehr: SandboxServer) -> str:
    return str(launch_from_ehr(app, ehr, "enc-okada")["context_id"])


def test_a_verified_photo_reaches_the_chart_once(client: tuple[TestClient, SandboxServer]) -> None:
    app, ehr = client
    context_id = _launch(app, ehr)
    upload = app.post(
        "/api/v1/captures",
        data={"capture_id": "chart-1", "context_id": context_id, "body_site": SITE.code_value},
        files={"photo": ("p.jpg", phone_jpeg(320, 240, seed=5), "image/jpeg")},
    )
    assert upload.status_code == 202, upload.text
    sop = upload.json()["sop_instance_uid"]
    deadline = time.monotonic() + 30
    media: dict[str, Any] = {}
    while time.monotonic() < deadline and not media:
        media = ehr.state.extra.get("fhir_created", {}).get("Media", {})
        time.sleep(0.1)
    (resource,) = media.values()
    assert resource["identifier"][0]["value"] == f"urn:oid:{sop}"
    assert resource["subject"]["reference"] == "Patient/pat-okada"
    assert resource["encounter"]["reference"] == "Encounter/enc-okada"
    assert resource["bodySite"]["coding"][0]["code"] == SITE.code_value
    assert resource["content"]["url"].startswith("https://pacs.example/dicom-web/studies/")
