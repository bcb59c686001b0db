"""Who does what in the privacy tests: sandbox users signing in, photos sent, audit read back.

The sandbox EHR's users (ehr_sandbox.data.CAPTURE_ROLES): Nurse Nina is a clinician, Dr Vera
Okafor a clinician and sensitive viewer, Otto Berg an auditor; their id_token says so in the
``capture_roles`` claim.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from capture_api.store.records import AuditEventRecord, CaptureRecord
from ehr_sandbox.server import SandboxServer
from tests.capture.test_timeline import _photo
from tests.responses import Response
from tests.security.browser import FOREARM, launch_as
from tests.security.conftest import APP

NINA, VERA, OTTO = "prac-nina", "prac-vera", "prac-otto"

#: ``sign_in(client, sandbox, user, encounter="enc-muller")``: ``user`` clicks "Launch capture"
#: in the sandbox EHR; returns ``/api/v1/session`` (the client sends its CSRF token from then on).
sign_in = launch_as


def browser(app: TestClient) -> TestClient:
    """Another browser (its own cookie jar) on the same running capture app."""
    return TestClient(app.app, base_url=APP)


def fhir_user(sandbox: SandboxServer, user: str) -> str:
    return f"{sandbox.fhir_base}/Practitioner/{user}"


def send_photo(
    client: TestClient,
    context_id: str,
    capture_id: str,
    *,
    seed: int = 0,
    site: str | None = FOREARM.code_value,
    side: str | None = "L",
    **form: str,
) -> Response:
    """POST a detailed 640x480 photo (``sensitivity``, ``view``... as extra form fields)."""
    fields = {"capture_id": capture_id, "context_id": context_id} | form
    if site:
        fields["body_site"] = site
    if side:
        fields["laterality"] = side
    response: Response = client.post(
        "/api/v1/captures", data=fields, files={"photo": ("p.jpg", _photo(seed), "image/jpeg")}
    )
    return response


def audit_events(client: TestClient, action: str) -> list[AuditEventRecord]:
    """The trail's domain events of one action, in order (not the per-request rows, which
    carry their route)."""
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with Session(engine) as s:
        query = (
            select(AuditEventRecord)
            .where(AuditEventRecord.action == action)
            .where(col(AuditEventRecord.route).is_(None))
        )
        return list(s.exec(query.order_by(col(AuditEventRecord.id))).all())


def stored_capture(client: TestClient, capture_id: str) -> CaptureRecord | None:
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with Session(engine) as s:
        return s.get(CaptureRecord, capture_id)
