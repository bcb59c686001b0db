"""Fixtures for the hardening tests: the sandbox EHR and capture apps built per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.config import EhrRegistration, Settings
from ehr_sandbox import data
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.server import SandboxServer

APP = "http://capture.test"
CLIENT_ID = "capture-security"
SCOPES = (
    "launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs user/Patient.rs"
)

AppFactory = Callable[..., TestClient]


@pytest.fixture(scope="module")
def ehr() -> Iterator[SandboxServer]:
    """The development EHR on loopback, with capture registered as a public SMART client."""
    with SandboxServer(app_launch_url=f"{APP}/launch") as server:
        register_client(server.state, CLIENT_ID, f"{APP}/launch/callback")
        yield server


def registration(sandbox: SandboxServer) -> EhrRegistration:
    return EhrRegistration(
        iss=sandbox.fhir_base, client_id=CLIENT_ID, scopes=SCOPES, mrn_system=data.MRN_SYSTEM
    )


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """``make_app(ehr=sandbox or None, client=(ip, port), **settings)`` -> a started TestClient.

    Integration mode unless ``ehr`` is given; the delivery worker is off (nothing here needs
    the archive) and the cookie is not Secure because TestClient speaks plain http.
    """
    clients: list[TestClient] = []

    def build(
        ehr: SandboxServer | None = None,
        client: tuple[str, int] = ("testclient", 50000),
        **overrides: Any,
    ) -> TestClient:
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"app{len(clients)}",
            "public_url": APP,
            "cookie_secure": False,
            "worker_enabled": False,
            "notify_enabled": False,
            "ehrs": [registration(ehr)] if ehr is not None else [],
        }
        values.update(overrides)
        test_client = TestClient(create_app(Settings(**values)), base_url=APP, client=client)
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield build
    for test_client in clients:
        test_client.__exit__(None, None, None)
