"""Control characters in typed text (issue 14, finding 5).

The black-box test sent an ESC sequence in the unblur reason and a consent's name: it reached
the DICOM audit message sent to syslog (no longer well-formed XML) and the audit CSV, and a
NUL was stored. Now one rule (``capture_api.capture.text``) refuses them in every free-text
field with a 422 naming the field, and the audit trail turns any that reach it another way
into U+FFFD, so its XML and CSV stay clean.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest
from sqlmodel import Session, select

from capture_api.audit.dicom_audit import audit_message
from capture_api.audit.source import AuditSource
from capture_api.audit.trail import Outcome, record
from capture_api.capture import check_free_text, refused_character
from capture_api.store.records import AuditEventRecord, ConsentRecord
from ehr_sandbox.server import SandboxServer
from tests.conftest import phone_jpeg
from tests.privacy.people import OTTO, browser, sign_in
from tests.security.conftest import AppFactory

ESC = "\x1b[31mRED\x1b[0m"
HOSTILE = [ESC, "before\x00after", "bell\x07", "csi\x9b2J", "\u202eevil", "line\u2028break"]


@pytest.mark.parametrize("value", HOSTILE)
def test_every_typed_field_refuses_control_characters(
    make_app: AppFactory, ehr: SandboxServer, value: str
) -> None:
    client = make_app(ehr=ehr)
    session = sign_in(client, ehr, "prac-vera")  # a sensitive viewer: the unblur gets checked
    context_id = session["context_id"]
    consent = client.post(
        f"/api/v1/contexts/{context_id}/consent",
        json={"consenter": "guardian", "consenter_name": f"Anna {value}", "method": "verbal"},
    )
    assert consent.status_code == 422, consent.text
    assert "consenter_name" in consent.text and "control character" in consent.text
    unblur = client.post(
        f"/api/v1/contexts/{context_id}/priors/1.2/1.2.3/1.2.3.4/unblur",
        json={"reason": f"wound review {value}"},
    )
    assert unblur.status_code == 422 and "reason" in unblur.text, unblur.text
    for field in ("note", "view", "operator", "device"):
        sent = client.post(
            "/api/v1/captures",
            data={"capture_id": f"ft-{field}", "context_id": context_id, field: f"x {value}"},
            files={"photo": ("p.jpg", b"\xff\xd8\xff", "image/jpeg")},
        )
        assert sent.status_code == 422, (field, sent.text)
        assert field in sent.text and "control character" in sent.text
    scan = client.post("/api/v1/scan", json={"identifier": f"1000{value}"})
    assert scan.status_code == 422, scan.text

    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with Session(engine) as s:
        assert s.exec(select(ConsentRecord)).all() == []  # nothing stored


def test_what_a_phone_keyboard_types_passes(make_app: AppFactory, ehr: SandboxServer) -> None:
    client = make_app(ehr=ehr)
    session = sign_in(client, ehr, "prac-nina")
    name = "Zoë O'Brien-Ngāti 李小龍 مرحبا 👩🏽‍⚕️"
    consent = client.post(
        f"/api/v1/contexts/{session['context_id']}/consent",
        json={"consenter": "guardian", "consenter_name": name, "method": "verbal"},
    )
    assert consent.status_code == 201, consent.text
    assert consent.json()["consenter_name"] == name
    note = "Wound 3 x 2 cm\nslough 20 %, café-au-lait edge 🩹"
    sent = client.post(
        "/api/v1/captures",
        data={"capture_id": "ft-ok", "context_id": session["context_id"], "note": note},
        files={"photo": ("p.jpg", phone_jpeg(320, 240, seed=5), "image/jpeg")},
    )
    assert sent.status_code == 202, sent.text


def test_the_trail_never_carries_a_control_character(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    """Text that reached the trail another way (an EHR's error words, a row written before
    this rule) is stored, exported and sent to syslog without its control characters."""
    client = make_app(ehr=ehr)
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    settings = client.app.state.runtime.settings  # type: ignore[attr-defined]
    stored = record(
        engine, "notify", Outcome.REFUSED, patient="100001", detail=f"EHR said {ESC}\x00"
    )
    assert stored is not None and refused_character(stored.detail or "") is None
    message = audit_message(stored, AuditSource.from_settings(settings))
    ET.fromstring(message)  # well-formed: a collector takes it

    auditor = browser(client)
    sign_in(auditor, ehr, OTTO)
    export = auditor.get("/api/v1/audit", params={"format": "csv"})
    assert export.status_code == 200, export.text
    text = export.content.decode("utf-8-sig")
    assert "\x1b" not in text and "\x00" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert any(r["detail"].startswith("EHR said \ufffd[31mRED") for r in rows)
    with Session(engine) as s:
        for row in s.exec(select(AuditEventRecord)).all():
            ET.fromstring(audit_message(row, AuditSource.from_settings(settings)))


def test_the_rule_itself() -> None:
    for value in HOSTILE:
        with pytest.raises(ValueError, match=r"U\+[0-9A-F]{4}"):
            check_free_text(value, "name")
    assert check_free_text("a\r\nb\tc", "note", multiline=True) == "a\r\nb\tc"
    with pytest.raises(ValueError, match="note contains"):
        check_free_text("a\nb", "note")
    assert refused_character("\ud800") == "\ud800" and refused_character("\ufffe") == "\ufffe"
    assert refused_character("👨‍👩‍👧 é ✓︎") is None  # ZWJ and variation selector pass
