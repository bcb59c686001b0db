"""ATNA forwarding: every audit row reaches a real syslog collector (UDP, TCP, TLS) as an RFC
5424 message whose MSG is a DICOM audit message (PS3.15 A.5); a collector that is down breaks
no request and loses no row, and what was queued arrives once it is back."""

from __future__ import annotations

import datetime as dt
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.audit import forwarding
from capture_api.audit.dicom_audit import audit_message, patient_id_cx
from capture_api.audit.source import AuditSource
from capture_api.audit.syslog import frame, syslog_message
from capture_api.config import Settings
from capture_api.config.syslog import SyslogTarget
from capture_api.store.records import AuditEventRecord
from tests.audit.collectors import SyslogMessage, TcpCollector, UdpCollector, self_signed_tls
from tests.audit.conftest import PATIENT, audit_rows, engine_of, open_context, settings_for
from tests.audit.schema import schema_errors
from tests.orthanc import free_port

ORDER = ["EventIdentification", "ActiveParticipant", "AuditSourceIdentification"]


@pytest.fixture
def app_with(tmp_path: Path) -> Iterator[Any]:
    """``app_with(**settings)``: a TestClient on an app with those settings (closed after)."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(settings_for(tmp_path, **overrides)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def check_dicom_audit_message(message: SyslogMessage) -> ET.Element:
    """What an audit record repository checks before storing (PS3.15 A.5.1, ITI-20)."""
    assert message.pri == 10 * 8 + 5  # facility 10 authpriv, severity 5 notice
    assert message.msgid == "IHE+RFC-3881" and message.app_name == "capture"
    dt.datetime.fromisoformat(message.timestamp)  # RFC 3339
    assert schema_errors(message.body) == [], message.body  # PS3.15 A.5.1 (tests/audit/schema)
    root = message.xml
    assert root.tag == "AuditMessage"
    tags = [child.tag for child in root]
    assert tags[0] == "EventIdentification" and tags.count("EventIdentification") == 1
    assert tags.count("AuditSourceIdentification") == 1
    first_source = tags.index("AuditSourceIdentification")
    assert set(tags[1:first_source]) == {"ActiveParticipant"} and first_source >= 2
    assert set(tags[first_source + 1 :]) <= {"ParticipantObjectIdentification"}
    event = root[0]
    assert event.attrib["EventActionCode"] in {"C", "R", "U", "D", "E"}
    assert event.attrib["EventOutcomeIndicator"] in {"0", "4", "8", "12"}
    dt.datetime.fromisoformat(event.attrib["EventDateTime"])
    event_id = event.find("EventID")
    assert event_id is not None and event_id.attrib["codeSystemName"] == "DCM"
    for participant in root.findall("ActiveParticipant"):
        assert participant.attrib["UserID"]
        assert participant.attrib["UserIsRequestor"] in {"true", "false"}
    requestors = [
        p for p in root.findall("ActiveParticipant") if p.attrib["UserIsRequestor"] == "true"
    ]
    assert len(requestors) == 1
    for item in root.findall("ParticipantObjectIdentification"):
        assert item.attrib["ParticipantObjectID"]
        assert item[0].tag == "ParticipantObjectIDTypeCode"
    return root


def test_every_row_reaches_a_udp_collector_as_a_dicom_audit_message(app_with: Any) -> None:
    with UdpCollector() as collector:
        client = app_with(audit_syslog_url=collector.url)
        context_id = open_context(client)
        assert client.get(f"/api/v1/contexts/{context_id}").status_code == 200
        messages = collector.wait_for(2)
        assert not collector.errors
    rows = audit_rows(client)
    assert [m.event_id for m in messages] == [r.event_code for r in rows] == ["110110", "110110"]
    read = check_dicom_audit_message(messages[1])
    assert read[0].attrib["EventActionCode"] == "R"
    (patient,) = read.findall("ParticipantObjectIdentification")
    assert (
        patient.attrib["ParticipantObjectID"]
        == f"{PATIENT['id']}^^^&2.16.840.1.113883.3.9999.1&ISO"
    )
    assert (
        patient.attrib["ParticipantObjectTypeCode"],
        patient.attrib["ParticipantObjectTypeCodeRole"],
    ) == ("1", "1")
    user, server = read.findall("ActiveParticipant")
    assert user.attrib["UserID"] == "integration" and user.attrib["UserIsRequestor"] == "true"
    assert server.attrib["UserID"].endswith("/api/v1/contexts/{context_id}")  # no ids in it
    assert context_id not in messages[1].body.decode()


def test_a_tcp_collector_gets_octet_counted_frames_including_worker_events(
    app_with: Any,
) -> None:
    with TcpCollector() as collector:
        client = app_with(audit_syslog_url=collector.url)
        context_id = open_context(client)
        answer = client.post(
            "/api/v1/captures",
            data={"capture_id": "syslog-1", "context_id": context_id},
            files={"photo": ("p.jpg", _photo(), "image/jpeg")},
        )
        assert answer.status_code == 202, answer.text
        sop = answer.json()["sop_instance_uid"]
        messages = collector.wait_for(5)  # context, capture, stow, verify, spool purge
        assert not collector.errors and collector.connections == 1
    by_event = {m.event_id: m for m in messages}
    stow = check_dicom_audit_message(by_event["110104"])  # DICOM Instances Transferred
    assert stow[0].attrib["EventActionCode"] == "C"
    instance = stow.find(
        "ParticipantObjectIdentification/ParticipantObjectDescription/SOPClass/Instance"
    )
    assert instance is not None and instance.attrib["UID"] == sop
    roles = {
        p.find("RoleIDCode").attrib["csd-code"]  # type: ignore[union-attr]
        for p in stow.findall("ActiveParticipant")
    }
    assert roles == {"110153", "110152"}  # capture sends, the archive receives
    for message in messages:
        check_dicom_audit_message(message)


def test_a_tls_collector_is_checked_against_the_configured_ca(
    app_with: Any, tmp_path: Path
) -> None:
    server_tls, certificate = self_signed_tls(tmp_path)
    with TcpCollector(tls=server_tls) as collector:
        client = app_with(audit_syslog_url=collector.url, audit_syslog_ca_file=certificate)
        open_context(client)
        (message,) = collector.wait_for(1)
        check_dicom_audit_message(message)


def test_a_collector_that_is_down_breaks_nothing_and_gets_the_queue_later(
    app_with: Any,
) -> None:
    port = free_port()
    client = app_with(audit_syslog_url=f"tcp://127.0.0.1:{port}")
    started = time.monotonic()
    context_id = open_context(client)
    for _ in range(3):
        assert client.get(f"/api/v1/contexts/{context_id}").status_code == 200
    assert time.monotonic() - started < 5  # requests never wait for the collector
    assert len(audit_rows(client)) == 4  # every row stored
    sender = forwarding.sender_for(engine_of(client))
    assert sender is not None
    deadline = time.monotonic() + 10
    while sender.stats.errors == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sender.stats.errors >= 1 and sender.pending == 4 and sender.stats.sent == 0
    with TcpCollector(port) as collector:  # the collector comes back
        messages = collector.wait_for(4, timeout=20)
    assert [m.event_id for m in messages] == ["110110"] * 4
    assert sender.stats.sent == 4 and sender.stats.dropped == 0


def test_a_udp_collector_that_is_down_breaks_nothing(app_with: Any) -> None:
    with UdpCollector() as gone:
        url = gone.url
    client = app_with(audit_syslog_url=url)
    context_id = open_context(client)
    assert client.get(f"/api/v1/contexts/{context_id}").status_code == 200
    assert len(audit_rows(client)) == 2


def test_syslog_settings_are_checked_with_a_reason() -> None:
    assert SyslogTarget.parse("tls://audit.example") == SyslogTarget("tls", "audit.example", 6514)
    assert SyslogTarget.parse("udp://[::1]:1514") == SyslogTarget("udp", "::1", 1514)
    for bad in ("http://audit.example", "tcp://", "tcp://host:99999", "udp://host/path"):
        with pytest.raises(ValueError, match="udp://"):
            Settings(audit_syslog_url=bad)


def test_the_header_and_framing_follow_rfc_5424_and_5425() -> None:
    at = dt.datetime(2026, 11, 22, 9, 30, 1, 250000, tzinfo=dt.UTC)
    message = syslog_message(b"<x/>", app_name="cap ture", hostname="", at=at, procid=7)
    assert message == b"<85>1 2026-11-22T09:30:01.250Z - capture 7 IHE+RFC-3881 - \xef\xbb\xbf<x/>"
    assert frame(message, "tcp") == str(len(message)).encode() + b" " + message
    assert frame(message, "udp") == message


def test_values_are_escaped_and_the_patient_id_is_hl7_cx() -> None:
    row = AuditEventRecord(
        id=1,
        action="scan",
        outcome="refused",
        actor='<evil actor="x">&',
        patient="MRN&1",
        patient_issuer="HOSP",
        detail="]]></EventOutcomeDescription><Injected/>",
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    root = ET.fromstring(audit_message(row, AuditSource()))
    assert root.find(".//Injected") is None
    assert root.find("EventIdentification/EventOutcomeDescription").text == row.detail  # type: ignore[union-attr]
    assert root.find("ActiveParticipant").attrib["UserID"] == row.actor  # type: ignore[union-attr]
    assert patient_id_cx("M1", "1.2.3") == "M1^^^&1.2.3&ISO"
    assert patient_id_cx("M1", "HOSP") == "M1^^^HOSP" and patient_id_cx("M1", None) == "M1"


def _photo() -> bytes:
    from tests.conftest import phone_jpeg

    return phone_jpeg(320, 240, seed=5)
