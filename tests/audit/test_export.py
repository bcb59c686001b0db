"""The audit export: time range and patient filters, paging, CSV and a FHIR Bundle whose every
AuditEvent validates (R4) and follows IHE BALP; the export is itself audited (action E)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle, BundleEntry

from capture_api.audit.events import Purpose
from capture_api.audit.export import CSV_COLUMNS
from capture_api.audit.trail import Outcome, append, record
from capture_api.store.records import AuditEventRecord
from tests.audit.conftest import PATIENT, audit_rows, engine_of, open_context

UTC = dt.UTC
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."


def _seed(client: TestClient) -> None:
    """Events on three days for two patients, one written the 0003 way (no codes)."""
    engine = engine_of(client)
    for at, patient, action in [
        (dt.datetime(2026, 1, 10, 8, 0, tzinfo=UTC), "MRN-A", "launch"),
        (dt.datetime(2026, 1, 11, 9, 0, tzinfo=UTC), "MRN-A", "stow"),
        (dt.datetime(2026, 1, 11, 10, 0, tzinfo=UTC), "MRN-B", "launch"),
        (dt.datetime(2026, 1, 12, 0, 0, tzinfo=UTC), "MRN-A", "verify"),
    ]:
        row = AuditEventRecord(action=action, outcome="success", patient=patient, at=at)
        assert append(engine, row) is not None
    old = AuditEventRecord(
        action="scan",
        outcome="refused",
        patient="MRN-A",
        actor="https://ehr.test/fhir/Practitioner/1",
        detail='=HYPERLINK("http://evil")',
        at=dt.datetime(2026, 1, 11, 12, 0, tzinfo=UTC),
    )
    with engine.begin() as connection:  # as migration 0003's code wrote it: no codes at all
        connection.execute(
            AuditEventRecord.__table__.insert(),  # type: ignore[attr-defined]
            [old.model_dump(exclude={"id"})],
        )


def _csv(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    text = answer.content.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def _audit_event(entry: BundleEntry) -> AuditEvent:
    assert entry.resource is not None, "a search hit carries its resource"
    return AuditEvent.model_validate(entry.resource.model_dump())


def test_csv_filters_by_day_and_patient_and_derives_old_rows(client: TestClient) -> None:
    _seed(client)
    answer = client.get(
        "/api/v1/audit",
        params={"since": "2026-01-11", "until": "2026-01-11", "patient": "MRN-A", "format": "csv"},
    )
    assert answer.headers["cache-control"] == "no-store"
    rows = _csv(answer)
    assert [(r["action"], r["recorded"]) for r in rows] == [
        ("stow", "2026-01-11T09:00:00.000Z"),
        ("scan", "2026-01-11T12:00:00.000Z"),
    ]
    stow, scan = rows
    assert (stow["balp_action"], stow["event_code"], stow["event"]) == (
        "C",
        "110104",
        "DICOM Instances Transferred",
    )
    assert (scan["balp_action"], scan["event_code"], scan["outcome_code"]) == ("R", "110110", "4")
    assert scan["detail"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it


def test_times_with_offsets_and_paging(client: TestClient) -> None:
    _seed(client)
    since = "2026-01-11T09:30:00+01:00"  # 08:30 UTC
    first = client.get(
        "/api/v1/audit",
        params={"since": since, "until": "2026-01-12T00:00:00Z", "limit": 2, "format": "csv"},
    )
    page = _csv(first)
    assert [r["action"] for r in page] == ["stow", "launch"]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"') and "after=" in link
    rest = _csv(client.get(link[1 : link.index(">")]))
    assert [r["action"] for r in rest] == ["scan"]  # 2026-01-12T00:00Z is excluded (until)
    assert "link" not in client.get(link[1 : link.index(">")]).headers


def test_bad_filters_are_refused_with_a_reason(client: TestClient) -> None:
    cases = {
        "since=yesterday": "ISO 8601",
        "since=2026-02-01&until=2026-01-01": "earlier than until",
        "format=xml": "format",
        "limit=0": "limit",
        "limit=100000": "limit",
        "until=9999-12-31": "until",  # the day after does not exist
        "since=0001-01-01T00:00:00%2B01:00": "since",  # before year 1 in UTC
        "after=99999999999999999999999": "after",
        "patient=%00": "patient",
    }
    for query, reason in cases.items():
        answer = client.get(f"/api/v1/audit?{query}")
        assert answer.status_code == 422, query
        assert reason in str(answer.json()["detail"]), (query, answer.json())


def test_the_bundle_validates_and_follows_balp(client: TestClient) -> None:
    context_id = open_context(client)
    assert client.get(f"/api/v1/contexts/{context_id}").status_code == 200
    engine = engine_of(client)
    record(engine, "stow", Outcome.RETRY, context_id=context_id, detail="archive down")
    record(
        engine,
        "unblur",
        Outcome.SUCCESS,
        actor="https://ehr.test/fhir/Practitioner/vera",
        session_id="ab" * 32,
        context_id=context_id,
        sop_instance_uid="1.2.3.4",
        purpose=Purpose.ETREAT,
        detail="wound infection check, patient in theatre",
    )
    record(engine, "notify", Outcome.FAILED, context_id=context_id, peer="https://ehr.test/fhir")
    answer = client.get("/api/v1/audit", params={"patient": PATIENT["id"]})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert answer.headers["cache-control"] == "no-store"
    bundle = Bundle.model_validate(answer.json())
    assert bundle.type == "searchset"
    events = [_audit_event(e) for e in bundle.entry or []]
    by_id = {e.id: e for e in events}
    rows: dict[str | None, AuditEventRecord] = {str(r.id): r for r in audit_rows(client)}
    assert set(by_id) <= set(rows)

    read = next(e for e in events if rows[e.id].route == "/api/v1/contexts/{context_id}")
    assert read.meta is not None and read.meta.profile == [BALP + "PatientRead"]
    assert (read.type.code, read.action, read.outcome) == ("rest", "R", "0")
    assert [(c.system, c.code) for c in read.subtype or []] == [
        ("http://hl7.org/fhir/restful-interaction", "read"),
        ("http://dicom.nema.org/resources/ontology/DCM", "110110"),
    ]
    patient = next(x for x in read.entity or [] if x.role and x.role.code == "1")
    assert patient.what is not None and patient.what.identifier is not None
    assert patient.what.identifier.value == PATIENT["id"]
    assert patient.what.identifier.system == "urn:oid:2.16.840.1.113883.3.9999.1"
    agents = {a.type.coding[0].code: a for a in read.agent if a.type and a.type.coding}
    assert agents["IRCP"].requestor is True and agents["110152"].requestor is False
    assert agents["110153"].network is not None  # the server, as BALP Read wants it

    retry = next(e for e in events if rows[e.id].action == "stow")
    assert (retry.type.code, retry.outcome, retry.outcomeDesc) == ("110104", "4", "archive down")
    assert retry.meta is None  # a failure claims no BALP profile

    unblur = next(e for e in events if rows[e.id].action == "unblur")
    assert [c.code for c in unblur.subtype or []] == ["110127"]  # Emergency Override Started
    reasons = unblur.purposeOfEvent
    purpose = reasons[0].coding[0] if reasons and reasons[0].coding else None
    assert purpose is not None and (purpose.code, purpose.system) == (
        "ETREAT",
        "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    )
    user = unblur.agent[0]
    assert user.who is not None and user.who.reference == "https://ehr.test/fhir/Practitioner/vera"
    data = next(x for x in unblur.entity or [] if x.role and x.role.code == "4")
    assert data.what is not None and data.what.identifier is not None
    assert data.what.identifier.value == "urn:oid:1.2.3.4"
    assert data.description == "wound infection check, patient in theatre"

    notify = next(e for e in events if rows[e.id].action == "notify")
    destination = [a for a in notify.agent if a.who and a.who.display == "https://ehr.test/fhir"]
    assert destination and destination[0].requestor is False and notify.outcome == "8"


def test_the_export_is_itself_audited_with_its_query(client: TestClient) -> None:
    assert (
        client.get("/api/v1/audit", params={"patient": "MRN-Q", "format": "csv"}).status_code == 200
    )
    (export,) = [r for r in audit_rows(client) if r.action == "audit-export"]
    assert (export.balp_action, export.event_code, export.outcome) == ("E", "110101", "success")
    assert export.detail == "format=csv&patient=MRN-Q"
    later = client.get("/api/v1/audit").json()
    (event,) = [e["resource"] for e in later["entry"] if e["resource"]["id"] == str(export.id)]
    query = next(x for x in event["entity"] if x.get("role", {}).get("code") == "24")
    assert base64.b64decode(query["query"]).decode() == "format=csv&patient=MRN-Q"
