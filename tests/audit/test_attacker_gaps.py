"""Audit rows that lost what they should say, as the black-box test found them (issue 14).

* **Finding 2**: a Cookie header the audit middleware and the app parsed differently
  (``a=b c; capture_session=...``, ``x=";``) read a patient's context while its audit row named
  no user. One reader now serves both, so the row names the user whatever the header holds.
* **Finding 9**: the worklist showed every scheduled patient with no patient in the audit
  row (now: one row per patient shown); an unblur refused by the CSRF guard, or by the body's
  validation, was recorded without its route, patient or photo.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from capture_api.api.security.csrf import CSRF_HEADER
from capture_api.context.sessions import COOKIE_NAME
from capture_api.store.records import AuditEventRecord
from ehr_sandbox.server import SandboxServer
from tests.audit.conftest import audit_rows, wait_until
from tests.security.browser import launch_as
from tests.security.conftest import AppFactory, ehr, make_app

__all__ = ["ehr", "make_app"]  # the security suite's fixtures: sandbox EHR and capture apps

NURSE = "prac-nina"


def _rows_for(client: TestClient, route: str) -> list[AuditEventRecord]:
    return [r for r in audit_rows(client) if r.route == route]


@pytest.mark.parametrize("prefix", ["a=b c; ", 'x=";', 'x="; ', "a=b,c; "])
def test_a_hostile_cookie_header_still_names_the_user(
    make_app: AppFactory, ehr: SandboxServer, prefix: str
) -> None:
    client = make_app(ehr=ehr)
    session = launch_as(client, ehr, NURSE)
    cookie = client.cookies[COOKIE_NAME]
    client.cookies.clear()
    header = {"Cookie": f"{prefix}{COOKIE_NAME}={cookie}"}
    read = client.get(f"/api/v1/contexts/{session['context_id']}", headers=header)
    assert read.status_code == 200, read.text  # the app read the patient's context...

    def recorded() -> list[AuditEventRecord]:
        return _rows_for(client, "/api/v1/contexts/{context_id}")

    (row,) = wait_until(recorded, what="the read's audit row")
    assert row.actor == session["fhir_user"]  # ...and the trail says who
    assert row.session_id is not None and row.patient is not None


def test_the_worklist_names_every_patient_it_showed(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr, worklist_url=f"{ehr.state.base_url}/dicom-web")
    session = launch_as(client, ehr, NURSE)
    listed = client.get("/api/v1/worklist")
    assert listed.status_code == 200, listed.text
    shown = {item["mrn"] for item in listed.json()}
    assert len(shown) >= 2, shown

    def worklist_rows() -> list[AuditEventRecord]:
        rows = [r for r in audit_rows(client) if r.action == "worklist" and r.method == "GET"]
        return rows if {r.patient for r in rows} >= shown else []

    rows = wait_until(worklist_rows, what="one worklist row per patient shown")
    assert {r.patient for r in rows if r.patient} == shown
    assert all(r.actor == session["fhir_user"] for r in rows)
    assert all(r.route == "/api/v1/worklist" for r in rows)
    request_ids = {r.request_id for r in rows}
    assert len(request_ids) == 1 and None not in request_ids  # all rows of that one request


UNBLUR = "/api/v1/contexts/{context_id}/priors/{study_uid}/{series_uid}/{sop_instance_uid}/unblur"


@pytest.mark.parametrize("refusal", ["csrf", "validation"])
def test_a_refused_unblur_is_recorded_with_route_patient_and_photo(
    make_app: AppFactory, ehr: SandboxServer, refusal: str
) -> None:
    client = make_app(ehr=ehr)
    session = launch_as(client, ehr, NURSE)
    context_id = session["context_id"]
    sop = "1.2.826.0.1.3680043.10.1434.4242"
    url = f"/api/v1/contexts/{context_id}/priors/1.2.3/1.2.3.4/{sop}/unblur"
    if refusal == "csrf":
        answer = client.post(url, json={"reason": "wound check, urgent"}, headers={CSRF_HEADER: ""})
        assert answer.status_code == 403, answer.text
    else:
        answer = client.post(url, json={"reason": ["not", "text"]})
        assert answer.status_code == 422, answer.text

    def recorded() -> list[AuditEventRecord]:
        return _rows_for(client, UNBLUR)

    (row,) = wait_until(recorded, what="the refused unblur's audit row")
    assert row.action == "unblur" and row.outcome == "refused"
    assert row.context_id == context_id and row.sop_instance_uid == sop
    assert row.patient == "100001"  # Jürgen Müller, whose chart launched capture
    assert row.actor == session["fhir_user"]


def test_domain_rows_of_a_request_share_its_request_id(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    """A refused scan: the request's row and the scan decision's domain row are one request."""
    client = make_app(ehr=ehr)
    launch_as(client, ehr, NURSE)
    answer = client.post(
        "/api/v1/scan", json={"identifier": "100002"}, headers={"X-Request-Id": "r-42"}
    )
    assert answer.status_code == 403, answer.text
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]

    def scan_rows() -> list[AuditEventRecord]:
        with Session(engine) as s:
            query = select(AuditEventRecord).where(AuditEventRecord.action == "scan")
            rows = list(s.exec(query.order_by(col(AuditEventRecord.id))).all())
        return rows if len(rows) >= 2 else []

    rows = wait_until(scan_rows, what="the scan's request and domain rows")
    assert {r.request_id for r in rows} == {"r-42"}
