"""The phone queue's key custody and same-user handoff (issue 20), against real SMART launches.

The key that opens a phone's queued photos is handed only to a signed-in session of the same
user (EHR iss + fhirUser), survives a restart of capture, is destroyed when released or unused
past the retention limit; an earlier context is handed to a later session of the same user
(upload and status), never to another user; what the phone deleted is audited.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect
from sqlmodel import Session, col, select

from capture_api.api.security.csrf import CSRF_HEADER
from capture_api.encounters.queue_custody import PurgeReason, QueueCustody
from capture_api.store.records import AuditEventRecord, QueueKeyRecord
from ehr_sandbox.server import SandboxServer
from tests.privacy.test_migration import _migrate, engine

__all__ = ["engine"]  # the fixture: SQLite and PostgreSQL
from tests.privacy.people import NINA, VERA, audit_events, browser, fhir_user, sign_in
from tests.security.browser import FOREARM, upload
from tests.security.conftest import AppFactory


def _key(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/v1/queue/keys")
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def _rows(client: TestClient, action: str) -> list[AuditEventRecord]:
    """Every row of one action, requests and domain events, in order."""
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with Session(engine) as s:
        query = select(AuditEventRecord).where(AuditEventRecord.action == action)
        return list(s.exec(query.order_by(col(AuditEventRecord.id))).all())


def test_the_key_goes_only_to_a_session_of_its_user(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    app = make_app(ehr)
    sign_in(app, ehr, NINA)
    made = _key(app)
    assert len(base64.urlsafe_b64decode(made["key"] + "=")) == 32  # an AES-256 key (AES-KW)
    assert made["algorithm"] == "AES-KW" and made["retention_hours"] == 72

    # The same user, in a later session (a new launch, for another patient): the same key.
    sign_in(app, ehr, NINA, "enc-smith-a")
    again = app.get(f"/api/v1/queue/keys/{made['key_id']}")
    assert again.status_code == 200 and again.json()["key"] == made["key"]
    assert again.headers["cache-control"] == "no-store"

    # Another user on the same phone: refused, audited, and nothing of the key in the answer.
    other = browser(app)
    sign_in(other, ehr, VERA)
    refused = other.get(f"/api/v1/queue/keys/{made['key_id']}")
    assert refused.status_code == 403 and made["key"] not in refused.text
    assert "another user" in refused.json()["detail"]
    assert refused.headers["cache-control"] == "no-store"
    assert other.delete(f"/api/v1/queue/keys/{made['key_id']}").status_code == 403
    decisions = audit_events(app, "queue-key")
    assert [(e.outcome, e.actor) for e in decisions] == [
        ("success", fhir_user(ehr, NINA)),
        ("success", fhir_user(ehr, NINA)),
        ("refused", fhir_user(ehr, VERA)),
        ("refused", fhir_user(ehr, VERA)),
    ]
    assert all(made["key"] not in (e.detail or "") for e in _rows(app, "queue-key"))
    requests = [e for e in _rows(app, "queue-key") if e.route]
    assert [e.http_status for e in requests] == [201, 200, 403, 403]

    # Without a session: 401; without the CSRF token a POST is refused like any other.
    assert browser(app).get(f"/api/v1/queue/keys/{made['key_id']}").status_code == 401
    del app.headers[CSRF_HEADER]
    assert app.post("/api/v1/queue/keys").status_code == 403
    assert app.delete(f"/api/v1/queue/keys/{made['key_id']}").status_code == 403
    sign_in(app, ehr, NINA)  # the token again

    # Released by the phone (its queue is empty at sign-out): gone for good.
    assert app.delete(f"/api/v1/queue/keys/{made['key_id']}").status_code == 204
    gone = app.get(f"/api/v1/queue/keys/{made['key_id']}")
    assert gone.status_code == 404 and "cannot be opened" in gone.json()["detail"]
    assert app.delete(f"/api/v1/queue/keys/{made['key_id']}").status_code == 204  # idempotent


def test_a_restart_of_capture_keeps_the_key(
    make_app: AppFactory, ehr: SandboxServer, tmp_path: Path
) -> None:
    first = make_app(ehr, data_dir=tmp_path / "one")
    sign_in(first, ehr, NINA)
    made = _key(first)
    first.__exit__(None, None, None)  # capture stops (its cookie jar is the phone's)
    second = make_app(ehr, data_dir=tmp_path / "one")
    second.cookies = first.cookies
    sign_in(second, ehr, NINA, "enc-smith-a")
    assert second.get(f"/api/v1/queue/keys/{made['key_id']}").json()["key"] == made["key"]


def test_integration_mode_keeps_no_key(make_app: AppFactory) -> None:
    app = make_app()
    refused = app.post("/api/v1/queue/keys")
    assert refused.status_code == 409
    assert "integration mode" in refused.json()["detail"]
    assert app.get("/api/v1/queue/keys/abc").status_code == 409


def test_an_earlier_context_is_handed_only_to_the_same_user(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    app = make_app(ehr)
    earlier = sign_in(app, ehr, NINA)  # MÜLLER: photos queued offline, then the session ends
    _key(app)  # the page asked for its queue key: capture knows whose session this is
    old_context = earlier["context_id"]
    app.post("/logout")

    later = sign_in(app, ehr, NINA, "enc-smith-a")  # the next patient, same nurse
    assert later["context_id"] != old_context
    assert upload(app, old_context, "queued-1").status_code == 403  # not without a handoff
    handed = app.post("/api/v1/queue/handoffs", json={"context_id": old_context})
    assert handed.status_code == 201, handed.text
    assert handed.json()["patient"]["name"]["family"] == "Müller"  # the page names the patient
    assert handed.headers["cache-control"] == "no-store"
    sent = upload(app, old_context, "queued-1")
    assert sent.status_code == 202, sent.text
    assert sent.json()["context_id"] == old_context  # into the earlier patient's context
    assert app.get("/api/v1/captures/queued-1").status_code == 200  # followed until verified
    assert app.get(f"/api/v1/captures?context_id={old_context}").status_code == 200
    # Only upload, status and consent: not the earlier patient's earlier photos.
    for view in ("timeline", "priors"):
        path = f"/api/v1/contexts/{old_context}/{view}?body_site={FOREARM.code_value}"
        assert app.get(path).status_code == 403

    # Another user on the phone can neither take the context over nor upload into it.
    other = browser(app)
    sign_in(other, ehr, VERA, "enc-smith-a")
    refused = other.post("/api/v1/queue/handoffs", json={"context_id": old_context})
    assert refused.status_code == 403 and "not taken in a session of yours" in refused.text
    assert upload(other, old_context, "queued-2").status_code == 403
    unknown = app.post("/api/v1/queue/handoffs", json={"context_id": "no-such-context"})
    assert unknown.status_code == 404

    handoffs = audit_events(app, "queue-handoff")
    assert [(e.outcome, e.actor, e.patient) for e in handoffs] == [
        ("success", fhir_user(ehr, NINA), "100001"),
        ("refused", fhir_user(ehr, VERA), "100001"),
    ]


def test_a_session_that_never_held_a_key_vouches_for_nothing(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    """No queue key asked in the earlier session: no photo can be queued under the server's
    custody there, and capture does not know its user: no handoff."""
    app = make_app(ehr)
    earlier = sign_in(app, ehr, NINA)
    sign_in(app, ehr, NINA, "enc-smith-a")
    refused = app.post("/api/v1/queue/handoffs", json={"context_id": earlier["context_id"]})
    assert refused.status_code == 403


def test_keys_unused_past_the_retention_limit_are_destroyed_and_audited(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    app = make_app(ehr, queue_retention_hours=1, session_ttl_seconds=3600)
    sign_in(app, ehr, NINA)
    made = _key(app)
    runtime = app.app.state.runtime  # type: ignore[attr-defined]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2, minutes=1)
    custody = QueueCustody(runtime.engine, runtime.settings, now=lambda: later)
    assert custody.sweep() == 1
    with Session(runtime.engine) as s:
        assert s.get(QueueKeyRecord, made["key_id"]) is None  # the phone's queue is shredded
    (destroyed,) = [e for e in audit_events(app, "queue-key") if e.actor is None]
    assert destroyed.outcome == "success" and "retention limit" in (destroyed.detail or "")
    assert app.get(f"/api/v1/queue/keys/{made['key_id']}").status_code == 404


def test_what_the_phone_deleted_is_audited_with_the_patient_of_its_user_only(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    app = make_app(ehr)
    earlier = sign_in(app, ehr, NINA)
    made = _key(app)
    other = browser(app)
    vera = sign_in(other, ehr, VERA, "enc-smith-a")
    _key(other)
    report = {
        "key_id": made["key_id"],
        "reason": "retention",
        "count": 2,
        "context_ids": [earlier["context_id"], vera["context_id"]],
    }
    assert app.post("/api/v1/queue/reports", json=report).status_code == 204
    purges = audit_events(app, "queue-purge")
    assert [(e.outcome, e.patient) for e in purges] == [("failed", "100001"), ("failed", None)]
    assert all("2 photo(s) deleted unsent" in (e.detail or "") for e in purges)
    discarded = report | {"reason": "discarded", "count": 1, "context_ids": []}
    assert app.post("/api/v1/queue/reports", json=discarded).status_code == 204
    assert audit_events(app, "queue-purge")[-1].outcome == "success"
    bad = report | {"reason": "because", "count": 0}
    assert app.post("/api/v1/queue/reports", json=bad).status_code == 422
    assert {r.value for r in PurgeReason} == {"retention", "discarded", "damaged", "unreadable"}


def test_0010_upgrades_and_downgrades(engine: Engine) -> None:
    tables = {"queue_key", "queue_session", "queue_handoff"}
    _migrate(engine, "upgrade", "0010")
    assert tables <= set(inspect(engine).get_table_names())
    _migrate(engine, "downgrade", "0008")
    assert not tables & set(inspect(engine).get_table_names())
    assert "encounter_context" in inspect(engine).get_table_names()
