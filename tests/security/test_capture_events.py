"""The capture event stream (issue 13, item 2b) at the API level: a session gets events of
its own captures only, the stream starts with a snapshot and follows changes, and its reads
are audited once per window, not once per event or reconnect."""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from capture_api.api import capture_events
from capture_api.store.records import AuditEventRecord
from ehr_sandbox.server import SandboxServer
from tests.security.browser import launch_from_ehr, upload
from tests.security.conftest import APP, AppFactory

EVENTS = "/api/v1/captures/events"


@pytest.fixture(autouse=True)
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams of 1.5 s (TestClient returns a response once its body is complete)."""
    monkeypatch.setattr(capture_events, "LIFETIME_SECONDS", 1.5)
    monkeypatch.setattr(capture_events, "CHECK_SECONDS", 0.05)
    monkeypatch.setattr(capture_events, "HEARTBEAT_SECONDS", 0.5)


def _events(body: str) -> list[dict[str, Any]]:
    found = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") == "capture":
            found.append(json.loads(lines["data"]) | {"_id": int(lines["id"])})
    return found


def _stream(client: TestClient, context_id: str) -> Any:
    return client.get(EVENTS, params={"context_id": context_id})


def test_a_stream_has_a_snapshot_then_changes_of_its_own_context(make_app: AppFactory) -> None:
    client = make_app()
    mine = client.post("/api/v1/contexts", json={"patient": {"id": "MRN-SSE-1"}}).json()
    theirs = client.post("/api/v1/contexts", json={"patient": {"id": "MRN-SSE-2"}}).json()
    assert upload(client, mine["context_id"], "sse-before").status_code == 202
    assert upload(client, theirs["context_id"], "sse-other").status_code == 202
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        stream = pool.submit(_stream, client, mine["context_id"])
        time.sleep(0.5)
        assert upload(client, mine["context_id"], "sse-during").status_code == 202
        answer = stream.result(timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.startswith("retry: ")
    events = _events(answer.text)
    assert {e["capture_id"] for e in events} == {"sse-before", "sse-during"}  # not sse-other
    assert events[0]["capture_id"] == "sse-before" and events[0]["status"] == "encoded"
    assert events[0]["context_id"] == mine["context_id"]
    assert events[0]["status_url"] == "/api/v1/captures/sse-before"
    during = [e["status"] for e in events if e["capture_id"] == "sse-during"]
    assert during[-1] == "encoded" and set(during) <= {"received", "encoded"}
    assert len(during) == len(set(during))  # a capture is sent again only when it changed
    assert [e["_id"] for e in events] == list(range(1, len(events) + 1))
    assert "\n: keep-alive\n\n" in answer.text  # a comment keeps proxies from closing it
    again = _events(_stream(client, mine["context_id"]).text)  # a reconnect: a fresh snapshot
    assert {(e["capture_id"], e["status"]) for e in again} == {
        ("sse-before", "encoded"),
        ("sse-during", "encoded"),
    }


def test_another_session_sees_none_of_them(make_app: AppFactory, ehr: SandboxServer) -> None:
    nurse = make_app(ehr=ehr)
    own = launch_from_ehr(nurse, ehr, "enc-muller")["context_id"]
    assert upload(nurse, own, "sse-muller").status_code == 202
    other = TestClient(nurse.app, base_url=APP)  # the same service, a second phone
    theirs = launch_from_ehr(other, ehr, "enc-smith-a")["context_id"]

    assert [e["capture_id"] for e in _events(_stream(nurse, own).text)] == ["sse-muller"]
    assert _events(_stream(other, theirs).text) == []  # its own context: nothing of Müller's
    refused = _stream(other, own)  # Müller's context: refused, no stream
    assert refused.status_code in (403, 404) and "event: capture" not in refused.text
    anonymous = TestClient(nurse.app, base_url=APP)
    assert _stream(anonymous, own).status_code == 401


def test_status_reads_are_audited_once_per_window(make_app: AppFactory) -> None:
    client = make_app()
    context = client.post("/api/v1/contexts", json={"patient": {"id": "MRN-SSE-3"}}).json()
    assert upload(client, context["context_id"], "sse-audit").status_code == 202
    for _ in range(5):
        assert client.get("/api/v1/captures/sse-audit").status_code == 200
    for _ in range(2):
        assert _stream(client, context["context_id"]).status_code == 200
    assert client.get("/api/v1/captures/no-such").status_code == 404
    assert client.get("/api/v1/captures/no-such").status_code == 404

    def rows(route: str) -> list[AuditEventRecord]:
        found = [r for r in _audit(client) if r.route == route]
        return found

    deadline = time.monotonic() + 10
    while len(rows("/api/v1/captures/{capture_id}")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # rows are written after the response, in a worker thread
    time.sleep(0.3)
    reads = rows("/api/v1/captures/{capture_id}")
    assert [(r.capture_id, r.http_status) for r in reads] == [
        ("sse-audit", 200),  # five reads: one row
        ("no-such", 404),  # refusals are never folded
        ("no-such", 404),
    ]
    streams = rows(EVENTS)
    assert len(streams) == 1 and streams[0].patient == "MRN-SSE-3"


def _audit(client: TestClient) -> list[AuditEventRecord]:
    from sqlmodel import Session, col, select

    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        query = select(AuditEventRecord).order_by(col(AuditEventRecord.id))
        return list(session.exec(query).all())
