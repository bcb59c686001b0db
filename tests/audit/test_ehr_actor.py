"""EHR mode with the development EHR over real HTTP: the actor of every event is the launching
clinician's fhirUser; sign-in and sign-out are User Authentication events; the audit export
needs the auditor role (403 for a clinician, and that refusal is itself in the trail)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ehr_sandbox.server import SandboxServer
from tests.audit.conftest import audit_rows
from tests.context.test_ehr_capture import APP, app, sandbox  # noqa: F401
from tests.security.browser import launch_as

NURSE, AUDITOR = "prac-nina", "prac-otto"


@pytest.fixture
def ehr(request: pytest.FixtureRequest) -> SandboxServer:
    """The development EHR of tests/context (its module-scoped ``sandbox`` fixture)."""
    server: SandboxServer = request.getfixturevalue("sandbox")
    return server


@pytest.fixture
def ehr_app(request: pytest.FixtureRequest) -> TestClient:
    """capture registered with that EHR (the ``app`` fixture of tests/context)."""
    client: TestClient = request.getfixturevalue("app")
    return client


def test_events_name_the_launching_clinician(ehr_app: TestClient, ehr: SandboxServer) -> None:
    session = launch_as(ehr_app, ehr, NURSE)
    nurse = f"{ehr.fhir_base}/Practitioner/{NURSE}"
    assert session["fhir_user"] == nurse
    context_id = session["context_id"]
    assert ehr_app.get(f"/api/v1/contexts/{context_id}").status_code == 200
    logout = ehr_app.post("/logout", headers={"X-CSRF-Token": session["csrf_token"]})
    assert logout.status_code == 204
    rows = audit_rows(ehr_app)

    logins = [r for r in rows if r.action == "login"]
    assert [r.route for r in logins] == ["/launch", "/launch/callback"]
    callback = logins[1]
    assert (callback.event_code, callback.event_type, callback.balp_action) == (
        "110114",  # User Authentication
        "110122",  # Login
        "E",
    )
    assert callback.actor == nurse and callback.patient == "100001" and callback.session_id
    opened = next(r for r in rows if r.action == "launch")  # the EHR read, a domain event
    assert opened.actor == nurse and opened.patient == "100001"
    read = next(r for r in rows if r.route == "/api/v1/contexts/{context_id}")
    assert (read.actor, read.session_id, read.patient) == (nurse, callback.session_id, "100001")
    (out,) = [r for r in rows if r.action == "logout"]
    assert (out.actor, out.event_type, out.http_status) == (nurse, "110123", 204)
    assert all(r.actor == nurse for r in rows if r.session_id)


def test_only_an_auditor_may_export_the_trail(ehr_app: TestClient, ehr: SandboxServer) -> None:
    anonymous = ehr_app.get("/api/v1/audit")
    assert anonymous.status_code == 401
    launch_as(ehr_app, ehr, NURSE)
    refused = ehr_app.get("/api/v1/audit", params={"patient": "100001"})
    assert refused.status_code == 403
    assert "auditor" in refused.json()["detail"]

    auditor_browser = TestClient(ehr_app.app, base_url=APP)
    launch_as(auditor_browser, ehr, AUDITOR, "enc-smith-a")
    allowed = auditor_browser.get("/api/v1/audit", params={"patient": "100001"})
    assert allowed.status_code == 200, allowed.text
    exported = [e["resource"] for e in allowed.json()["entry"]]
    assert exported and all(
        any(x.get("what", {}).get("identifier", {}).get("value") == "100001" for x in e["entity"])
        for e in exported
    )
    attempts = [r for r in audit_rows(ehr_app) if r.action == "audit-export"]
    assert [(r.outcome, r.http_status) for r in attempts] == [
        ("refused", 401),
        ("refused", 403),
        ("success", 200),
    ]
    assert attempts[1].actor.endswith(NURSE) and attempts[2].actor.endswith(AUDITOR)  # type: ignore[union-attr]
