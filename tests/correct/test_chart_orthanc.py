"""Issue 18 end to end: a photo sent to patient A, rejected as of the wrong patient, re-filed to B.

Real parts: Orthanc (DICOMweb) as the archive, the sandbox EHR (SMART launch, FHIR writes) and
capture's own notifier, driven with ``run_once``. A clinician launches capture from Müller's
chart (A) and sends a photo; the chart gets its Media and DocumentReference. The photo was of
Smith: the clinician rejects it from the phone, then launches capture from Smith's chart (B,
a new session of the same user) and re-files it there. Then: Orthanc holds the KOS and B's
new instance; A's Media and DocumentReference are entered-in-error (one update each, however
often the notifier runs) and B has new ones; A's priors no longer show the photo; the trail
names both patients. Another clinician's session may not reject it (403, audited).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from capture_api.api.app import create_app
from capture_api.capture import Role
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.notify.worker import NotifyWorker
from capture_api.store import captures, rejections
from capture_api.store.records import AuditEventRecord, RetractionStatus
from ehr_sandbox import data
from tests.correct.conftest import engine_of, wait_status
from tests.notify.test_notify import APP, CLIENT_ID, FAST, SCOPES, SECRET, Ehr, ehr
from tests.orthanc import OrthancServer
from tests.security.browser import launch_as, launch_from_ehr, upload

__all__ = ["ehr"]  # the sandbox EHR fixture, shared with the notifier's tests

MULLER, SMITH = "100001", "100002"


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def settings(ehr: Ehr, orthanc: OrthancServer, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "capture",
        public_url=APP,
        cookie_secure=False,
        poll_seconds=0.05,
        retry_base_seconds=0.05,
        retry_max_seconds=0.3,
        dicomweb_url=orthanc.base_url,
        notify_enabled=False,  # the test drives its own NotifyWorker
        role_map={"Practitioner/prac-otto": [Role.IMAGING_ADMIN]},  # imaging administrator
        ehrs=[
            EhrRegistration(
                iss=ehr.fhir_base,
                client_id=CLIENT_ID,
                auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC,
                client_secret=SECRET,  # type: ignore[arg-type]
                scopes=SCOPES,
                mrn_system=data.MRN_SYSTEM,
                notify=["Media", "DocumentReference"],
            )
        ],
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url=APP) as c:
        yield c


def _drain(worker: NotifyWorker, limit: int = 100) -> None:
    for _ in range(limit):
        if not worker.run_once():
            return
    raise AssertionError("the notify worker never went idle")


def _chart(ehr: Ehr, resource_type: str, sop: str) -> dict[str, Any]:
    wanted = f"urn:oid:{sop}"
    (found,) = [r for r in ehr.created(resource_type) if r["identifier"][0]["value"] == wanted]
    return found


def _puts(ehr: Ehr) -> dict[str, int]:
    puts: dict[str, int] = ehr.state.extra.get("fhir_puts", {})
    return dict(puts)


def test_wrong_patient_photo_is_taken_back_everywhere_and_refiled(
    client: TestClient, ehr: Ehr, orthanc: OrthancServer, settings: Settings
) -> None:
    engine = engine_of(client)
    context_a = str(launch_from_ehr(client, ehr, "enc-muller")["context_id"])
    sent = upload(client, context_a, "chart-1")
    assert sent.status_code == 202, sent.text
    wait_status(client, "chart-1", "verified")
    photo = client.get("/api/v1/captures/chart-1").json()
    sop = photo["sop_instance_uid"]
    worker = NotifyWorker(engine, settings, FAST)
    _drain(worker)
    assert _chart(ehr, "Media", sop)["status"] == "completed"

    # Another clinician's session may not take it back: 403, and the refusal is audited.
    stranger = TestClient(client.app, base_url=APP)
    launch_as(stranger, ehr, "prac-vera", "enc-okada")
    refused = stranger.post("/api/v1/captures/chart-1/rejection", json={"reason": "quality"})
    assert refused.status_code == 403, refused.text
    assert rejections.get(engine, "chart-1") is None

    # The phone's "Wrong patient" (a double tap: one rejection, one KOS).
    taps = [
        client.post("/api/v1/captures/chart-1/rejection", json={"reason": "wrong-patient"})
        for _ in range(2)
    ]
    assert [t.status_code for t in taps] == [201, 200]
    rejection = rejections.get(engine, "chart-1")
    assert rejection is not None and rejection.patient_id == MULLER
    wait_status(client, rejection.kos_capture_id, "verified")

    # The right patient, opened as any patient is: a launch from Smith's chart.
    again = TestClient(client.app, base_url=APP)
    context_b = str(launch_from_ehr(again, ehr, "enc-smith-a")["context_id"])
    refiled = again.post(
        "/api/v1/captures/chart-1/rejection/refile", json={"context_id": context_b}
    )
    assert refiled.status_code == 202, refiled.text
    new_id = refiled.json()["capture_id"]
    wait_status(client, new_id, "verified")
    new = captures.get(engine, new_id)
    assert new is not None and new.sop_instance_uid
    assert {sop, rejection.kos_sop_instance_uid, new.sop_instance_uid} <= orthanc.sop_uids()

    _drain(worker)
    _drain(NotifyWorker(engine, settings, FAST))  # a second worker: still one update each
    assert _chart(ehr, "Media", sop)["status"] == "entered-in-error"
    assert _chart(ehr, "DocumentReference", sop)["status"] == "entered-in-error"
    assert _puts(ehr) == {"Media": 1, "DocumentReference": 1}
    assert all(
        r.status == RetractionStatus.SENT for r in rejections.retractions_for(engine, "chart-1")
    )
    media_b = _chart(ehr, "Media", new.sop_instance_uid)
    assert media_b["status"] == "completed"
    assert media_b["subject"] == {"reference": "Patient/pat-smith-a"}

    priors_a = client.get(f"/api/v1/contexts/{context_a}/priors").json()
    assert sop not in {p["sop_instance_uid"] for p in priors_a}
    priors_b = again.get(f"/api/v1/contexts/{context_b}/priors").json()
    assert [p["sop_instance_uid"] for p in priors_b] == [new.sop_instance_uid]

    with Session(engine) as s:
        trail = list(s.exec(select(AuditEventRecord)).all())
    domain = [(r.action, r.patient, r.outcome) for r in trail if r.method is None]
    assert ("reject", MULLER, "success") in domain
    assert ("reject", MULLER, "refused") in domain  # the stranger's attempt
    assert {("refile", MULLER, "success"), ("refile", SMITH, "success")} <= set(domain)
    assert ("retract", MULLER, "success") in domain
    worker.stop()


def test_an_imaging_admin_takes_back_another_sessions_photo_with_a_reason(
    client: TestClient, ehr: Ehr, orthanc: OrthancServer
) -> None:
    engine = engine_of(client)
    context_a = str(launch_from_ehr(client, ehr, "enc-muller")["context_id"])
    assert upload(client, context_a, "admin-1").status_code == 202
    wait_status(client, "admin-1", "verified")

    admin = TestClient(client.app, base_url=APP)
    launch_as(admin, ehr, "prac-otto", "enc-okada")
    unknown = admin.post("/api/v1/captures/admin-1/rejection", json={"reason": "blurry"})
    assert unknown.status_code == 422
    taken = admin.post(
        "/api/v1/captures/admin-1/rejection",
        json={"reason": "quality", "comment": "duplicate of the photo before"},
    )
    assert taken.status_code == 201, taken.text
    row = rejections.get(engine, "admin-1")
    assert row is not None and row.comment == "duplicate of the photo before"
    assert (row.actor or "").endswith("Practitioner/prac-otto")
    wait_status(client, row.kos_capture_id, "verified")
    assert row.kos_sop_instance_uid in orthanc.sop_uids()


def test_the_chart_is_corrected_when_the_ehr_is_back_and_never_told_of_an_early_rejection(
    client: TestClient, ehr: Ehr, settings: Settings
) -> None:
    engine = engine_of(client)
    context_a = str(launch_from_ehr(client, ehr, "enc-muller")["context_id"])
    for capture_id in ("late-1", "early-1"):
        assert upload(client, context_a, capture_id).status_code == 202
        wait_status(client, capture_id, "verified")
    # Rejected before the notifier ran: the chart never hears of it.
    early = client.post("/api/v1/captures/early-1/rejection", json={"reason": "quality"})
    assert early.status_code == 201
    worker = NotifyWorker(engine, settings, FAST)
    _drain(worker)
    late = captures.get(engine, "late-1")
    early_row = captures.get(engine, "early-1")
    assert late is not None and late.sop_instance_uid
    assert early_row is not None and early_row.sop_instance_uid
    assert _chart(ehr, "Media", late.sop_instance_uid)["status"] == "completed"
    assert not [
        r for r in ehr.created("Media") if early_row.sop_instance_uid in r["identifier"][0]["value"]
    ]

    ehr.state.extra["fhir_write_fault"] = (503, "the EHR is down for maintenance")
    assert (
        client.post(
            "/api/v1/captures/late-1/rejection", json={"reason": "wrong-patient"}
        ).status_code
        == 201
    )
    _drain(worker)
    waiting = rejections.retractions_for(engine, "late-1")
    assert {r.status for r in waiting} == {RetractionStatus.PENDING}
    assert all("will retry" in (r.reason or "") for r in waiting)
    assert _chart(ehr, "Media", late.sop_instance_uid)["status"] == "completed"

    ehr.state.extra.pop("fhir_write_fault")
    deadline = time.monotonic() + 20
    while any(
        r.status != RetractionStatus.SENT for r in rejections.retractions_for(engine, "late-1")
    ):
        assert time.monotonic() < deadline, rejections.retractions_for(engine, "late-1")
        worker.run_once()
        time.sleep(0.02)
    assert _chart(ehr, "Media", late.sop_instance_uid)["status"] == "entered-in-error"
    assert _chart(ehr, "DocumentReference", late.sop_instance_uid)["status"] == "entered-in-error"
    worker.stop()
