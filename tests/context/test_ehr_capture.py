"""Issue 4 end to end: launched from the EHR, the photo carries the EHR's patient and encounter,
and a session opened for one patient can never photograph another (403, audited)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.fileset import FileSet
from sqlmodel import Session, select

from capture_api.api.app import create_app
from capture_api.config import EhrRegistration, Settings
from capture_api.store.records import AuditEventRecord
from ehr_sandbox import data
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.server import SandboxServer
from tests.conftest import dciodvfy_errors
from tests.responses import Response
from tests.security.browser import launch_from_ehr, upload

APP = "http://capture.test"
SCOPES = (
    "launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs user/Patient.rs"
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(app_launch_url=f"{APP}/launch") as server:
        register_client(server.state, "capture-e2e", f"{APP}/launch/callback")
        yield server


@pytest.fixture
def app(sandbox: SandboxServer, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path,
        public_url=APP,
        cookie_secure=False,  # TestClient speaks plain http
        poll_seconds=0.05,
        ehrs=[
            EhrRegistration(
                iss=sandbox.fhir_base,
                client_id="capture-e2e",
                scopes=SCOPES,
                mrn_system=data.MRN_SYSTEM,
            )
        ],
    )
    with TestClient(create_app(settings), base_url=APP) as client:
        yield client


def _launch(client: TestClient, sandbox: SandboxServer, encounter: str) -> dict[str, Any]:
    """Launch from the sandbox EHR; the client then sends its CSRF token, as the PWA does."""
    return launch_from_ehr(client, sandbox, encounter)


def _upload(client: TestClient, context_id: str, capture_id: str) -> Response:
    return upload(client, context_id, capture_id)


def _wait_verified(client: TestClient, capture_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if client.get(f"/api/v1/captures/{capture_id}").json()["status"] == "verified":
            return
        time.sleep(0.05)
    raise AssertionError(f"{capture_id} not verified")


def _audit(client: TestClient) -> list[AuditEventRecord]:
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with Session(engine) as s:
        return list(s.exec(select(AuditEventRecord)).all())


def test_launched_capture_carries_the_ehr_patient_and_encounter(
    app: TestClient, sandbox: SandboxServer, tmp_path: Path
) -> None:
    session = _launch(app, sandbox, "enc-muller")
    context = app.get(f"/api/v1/contexts/{session['context_id']}").json()
    assert context["source"] == "smart"
    assert context["patient"]["id"] == "100001"
    assert context["patient"]["name"] == {"family": "Müller", "given": "Jürgen"}
    assert context["encounter"]["admission_id"] == "V-5001"

    assert _upload(app, session["context_id"], "e2e-1").status_code == 202
    _wait_verified(app, "e2e-1")
    (instance,) = list(FileSet(tmp_path / "archive" / "DICOMDIR"))
    ds = pydicom.dcmread(instance.path)
    assert str(ds.PatientName) == "Müller^Jürgen" and ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.PatientID == "100001" and ds.PatientBirthDate == "19500314" and ds.PatientSex == "M"
    assert (
        ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == "2.16.840.1.113883.3.9999.1"
    )
    assert ds.AdmissionID == "V-5001"
    assert ds.IssuerOfAdmissionIDSequence[0].UniversalEntityID == "2.16.840.1.113883.3.9999.2"
    assert "Dermatology" in ds.StudyDescription
    assert ds.StudyInstanceUID == context["study_uid"]
    assert dciodvfy_errors(Path(instance.path)) == []
    assert any(e.action == "launch" and e.patient == "100001" for e in _audit(app))


def test_a_session_cannot_photograph_another_sessions_patient(
    app: TestClient, sandbox: SandboxServer, tmp_path: Path
) -> None:
    other_browser = TestClient(app.app, base_url=APP)
    smith = _launch(other_browser, sandbox, "enc-smith-a")
    _launch(app, sandbox, "enc-muller")

    refused = _upload(app, smith["context_id"], "wrong-patient")
    assert refused.status_code == 403
    assert "not the patient opened from the EHR" in refused.json()["detail"]
    assert "Müller" in refused.json()["detail"]
    assert app.get(f"/api/v1/contexts/{smith['context_id']}").status_code == 403
    assert app.get("/api/v1/captures/wrong-patient").status_code == 404  # nothing was stored
    refusals = [e for e in _audit(app) if e.outcome == "refused"]
    assert any(e.action == "capture" and e.patient == "100002" for e in refusals)


def test_scanning_another_patients_wristband_is_refused(
    app: TestClient, sandbox: SandboxServer
) -> None:
    _launch(app, sandbox, "enc-muller")
    wrong = app.post("/api/v1/scan", json={"identifier": f"{data.MRN_SYSTEM}|100003"})
    assert wrong.status_code == 403
    assert "MRN 100001" in wrong.json()["detail"]
    right = app.post("/api/v1/scan", json={"identifier": "100001"})
    assert right.status_code == 201, right.text
    assert right.json()["patient"]["id"] == "100001" and right.json()["source"] == "scan"
    assert right.json()["encounter"]["admission_id"] == "V-5001"
    unknown = app.post("/api/v1/scan", json={"identifier": "999999"})
    assert unknown.status_code == 404 and "wristband" in unknown.json()["detail"]
    actions = [(e.action, e.outcome, e.patient) for e in _audit(app)]
    assert ("scan", "refused", "100003") in actions and ("scan", "success", "100001") in actions


def test_without_a_session_nothing_with_phi_is_reachable(app: TestClient) -> None:
    upload = _upload(app, "any", "nobody")
    assert upload.status_code == 401 and "chart" in upload.json()["detail"]
    typed = app.post("/api/v1/contexts", json={"patient": {"id": "TYPED-1"}})
    assert typed.status_code == 403 and "from the EHR" in typed.json()["detail"]
    assert app.post("/api/v1/scan", json={"identifier": "100001"}).status_code == 401


def test_the_landing_page_shows_the_banner_source(app: TestClient, sandbox: SandboxServer) -> None:
    _launch(app, sandbox, "enc-okada")
    page = app.get("/")
    assert page.status_code == 200 and "/app/app.js" in page.text
    session = app.get("/api/v1/session").json()
    context = app.get(f"/api/v1/contexts/{session['context_id']}").json()
    assert context["patient"]["name"] == {"family": "岡田", "given": "花子"}
    assert context["patient"]["birth_date"] is None
