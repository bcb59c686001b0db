"""Every PHI request leaves one audit row (integration mode, embedded archive), with the route
template, the patient it concerned and the BALP action; the outbox adds STOW, verification and
spool purge; lookups without patient data leave none; a failing audit write breaks nothing."""

from __future__ import annotations

import logging
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from capture_api.audit import trail
from capture_api.store.records import AuditEventRecord
from tests.audit.conftest import PATIENT, audit_rows, engine_of, open_context, wait_until
from tests.conftest import phone_jpeg
from tests.security.browser import FOREARM, upload


def _upload(client: TestClient, context_id: str, capture_id: str, photo: bytes) -> dict[str, str]:
    answer = upload(client, context_id, capture_id, photo)
    assert answer.status_code == 202, answer.text
    body: dict[str, str] = answer.json()
    return body


def _only(rows: list[AuditEventRecord], **match: object) -> AuditEventRecord:
    found = [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [(r.action, r.method, r.route) for r in rows])
    return found[0]


def test_a_capture_visit_is_recorded_request_by_request(client: TestClient) -> None:
    context_id = open_context(client)
    capture = _upload(client, context_id, "aud-flow-1", phone_jpeg(320, 240, seed=1))
    sop = capture["sop_instance_uid"]

    def verified() -> bool:
        status: str = client.get("/api/v1/captures/aud-flow-1").json()["status"]
        return status == "verified"

    wait_until(verified, what="verified")
    assert client.get(f"/api/v1/contexts/{context_id}").status_code == 200
    priors = client.get(f"/api/v1/contexts/{context_id}/priors").json()
    assert [p["sop_instance_uid"] for p in priors] == [sop]
    assert client.get(priors[0]["thumbnail_url"]).status_code == 200
    timeline = client.get(
        f"/api/v1/contexts/{context_id}/timeline", params={"body_site": FOREARM.code_value}
    )
    assert timeline.status_code == 200, timeline.text
    assert client.get("/api/v1/body-sites", params={"q": "forearm"}).status_code == 200

    def purged() -> list[AuditEventRecord]:
        return [r for r in audit_rows(client) if r.action == "spool-purge"]

    wait_until(purged, what="spool purge event")
    rows = audit_rows(client)

    created = _only(rows, action="context", method="POST")
    assert created.route == "/api/v1/contexts" and created.http_status == 201
    assert (created.balp_action, created.event_code, created.outcome) == ("C", "110110", "success")
    assert created.patient == PATIENT["id"]
    assert created.patient_issuer == "2.16.840.1.113883.3.9999.1"
    assert created.context_id == context_id and created.actor == "integration"

    upload = _only(rows, action="capture", method="POST")
    assert (upload.balp_action, upload.event_code) == ("C", "110103")  # DICOM Instances Accessed
    assert upload.capture_id == "aud-flow-1" and upload.sop_instance_uid == sop
    assert upload.patient == PATIENT["id"] and upload.http_status == 202

    status_reads = [r for r in rows if r.route == "/api/v1/captures/{capture_id}"]
    assert status_reads and all(
        r.balp_action == "R" and r.patient == PATIENT["id"] for r in status_reads
    )

    read = _only(rows, route="/api/v1/contexts/{context_id}")
    assert read.balp_action == "R" and read.patient == PATIENT["id"]
    listed = _only(rows, route="/api/v1/contexts/{context_id}/priors")
    assert (listed.action, listed.event_code, listed.patient) == ("priors", "110103", PATIENT["id"])
    thumbnail = _only(rows, action="priors", method="GET", http_status=200, sop_instance_uid=sop)
    assert thumbnail.route is not None
    assert thumbnail.route.endswith("/{sop_instance_uid}/thumbnail")
    assert _only(rows, action="timeline").patient == PATIENT["id"]

    stow = _only(rows, action="stow")
    assert (stow.balp_action, stow.event_code, stow.outcome) == ("C", "110104", "success")
    assert stow.sop_instance_uid == sop and stow.patient == PATIENT["id"] and stow.route is None
    verify = _only(rows, action="verify")
    assert (verify.balp_action, verify.event_code, verify.outcome) == ("E", "110112", "success")
    purge = _only(rows, action="spool-purge")
    assert (purge.balp_action, purge.capture_id) == ("D", "aud-flow-1")

    assert not [r for r in rows if (r.route or "").startswith("/api/v1/body-sites")]
    assert all(r.node and r.request_id for r in rows if r.route)
    assert not [r for r in rows if r.route and context_id in r.route]  # templates, never ids


def test_refusals_and_unknown_routes_are_recorded_without_their_ids(client: TestClient) -> None:
    missing = client.get("/api/v1/contexts/no-such-context")
    assert missing.status_code == 404
    probe = client.get("/api/v1/patients/MRN-SECRET/everything")
    assert probe.status_code == 404
    assert client.get("/api/v1/captures/bad%00id").status_code == 404
    broken = client.post(
        "/api/v1/captures",
        data={"capture_id": "aud-bad", "context_id": open_context(client)},
        files={"photo": ("p.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png")},
    )
    assert broken.status_code == 415
    rows = audit_rows(client)
    unknown = _only(rows, route="/api/v1/contexts/{context_id}")
    assert (unknown.outcome, unknown.http_status) == ("refused", 404)
    assert unknown.context_id == "no-such-context" and unknown.patient is None
    assert _only(rows, route="/api/v1/captures/{capture_id}").capture_id == "badid"
    probed = _only(rows, route="(no route)")
    assert probed.outcome == "refused" and probed.action == "api"
    assert all("MRN-SECRET" not in str(r.model_dump()) for r in rows)
    refused = _only(rows, action="capture", method="POST")
    assert refused.outcome == "refused" and refused.http_status == 415
    encoder = _only(rows, action="capture", route=None)  # the domain event has the reason
    assert encoder.capture_id == "aud-bad" and encoder.patient == PATIENT["id"]
    assert "PNG" in (encoder.detail or "")


def test_the_request_id_is_kept_and_returned(client: TestClient) -> None:
    context_id = open_context(client)
    answer = client.get(f"/api/v1/contexts/{context_id}", headers={"X-Request-Id": "ticket-42"})
    assert answer.headers["x-request-id"] == "ticket-42"
    made = client.get(f"/api/v1/contexts/{context_id}", headers={"X-Request-Id": "<script>"})
    assert made.headers["x-request-id"] != "<script>"  # not sane: a fresh one instead
    ids = {r.request_id for r in audit_rows(client)}
    assert {"ticket-42", made.headers["x-request-id"]} <= ids


def test_a_failing_audit_write_breaks_no_request_and_logs_no_patient_data(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    context_id = open_context(client)
    engine = engine_of(client)
    with engine.begin() as connection:  # a real database failure: every insert is refused
        connection.execute(
            text(
                "CREATE TRIGGER audit_event_broken BEFORE INSERT ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        )
    before = trail.failed_writes()
    with caplog.at_level(logging.WARNING, logger="capture"):
        answer = client.get(f"/api/v1/contexts/{context_id}")
    assert answer.status_code == 200 and answer.json()["patient"]["id"] == PATIENT["id"]
    assert trail.failed_writes() == before + 1
    assert "not recorded" in caplog.text
    assert PATIENT["id"] not in caplog.text and context_id not in caplog.text


def test_an_upload_reads_its_context_once_and_reads_back_no_row_it_wrote(
    client: TestClient,
) -> None:
    """The access check's context serves the checks and the encode; the encode's row, as
    written, serves the answer and the audit row's subject (issue 13: four reads fewer)."""
    context_id = open_context(client)
    statements: list[tuple[str, str]] = []

    def note(*args: object) -> None:
        statements.append((threading.current_thread().name, str(args[2])))

    event.listen(engine_of(client), "before_cursor_execute", note)
    capture = _upload(client, context_id, "aud-reads-1", phone_jpeg(320, 240, seed=7))
    row = wait_until(
        lambda: [r for r in audit_rows(client) if r.action == "capture" and r.method == "POST"],
        what="the upload's audit row",
    )[0]
    event.remove(engine_of(client), "before_cursor_execute", note)
    request = [s for thread, s in statements if not thread.startswith(("worker-", "lease"))]
    assert len([s for s in request if "FROM encounter_context" in s]) == 1
    whole_rows = [s for s in request if s.startswith("SELECT capture.id, capture.context_id")]
    assert len(whole_rows) == 1  # the re-send check, before the row exists
    assert row.patient == PATIENT["id"] and row.sop_instance_uid == capture["sop_instance_uid"]
