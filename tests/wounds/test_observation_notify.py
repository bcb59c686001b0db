"""The WoundSize Observation reaches the sandbox EHR once, derived from the photo's Media.

Real parts: the sandbox EHR over HTTP (SMART Backend Services tokens, conditional create),
the app on PostgreSQL with its embedded archive and outbox. The photo is launched from the
EHR, archived and verified; the wound is measured; the notifier (driven with ``run_once``)
first creates the photo's Media, then, with the SR verified, the Observation that points at
that Media. Sent again (rows reset), the EHR still holds one Observation. A measurement the
server refused writes nothing, so nothing reaches the EHR for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.observation import Observation
from sqlmodel import Session, select

from capture_api.api.app import create_app
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.store import CaptureStatus
from capture_api.store import captures as capture_rows
from capture_api.store.records import WoundMeasurementRecord
from ehr_sandbox import data
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.fhir_server import enable_writes
from tests.audit.conftest import audit_rows
from tests.conftest import phone_jpeg
from tests.deliver.service_process import fresh_postgres_database
from tests.notify.test_notify import (
    APP,
    CLIENT_ID,
    SCOPES,
    SECRET,
    WADO,
    Ehr,
    Env,
    _drain,
    _reset_pending,
)
from tests.security.browser import launch_from_ehr
from tests.wounds.conftest import until, wound_phantom

SHIN = "30021000"  # SCT Lower leg (CID 4031)


@pytest.fixture
def ehr() -> Iterator[Ehr]:
    server = Ehr()
    register_client(server.state, CLIENT_ID, f"{APP}/launch/callback", secret=SECRET)
    enable_writes(server.state)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def env(ehr: Ehr, tmp_path: Path, pg_url: str) -> Iterator[Env]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=pg_url,  # type: ignore[arg-type]  # PostgreSQL, as deployed
        public_url=APP,
        cookie_secure=False,
        poll_seconds=0.05,
        retry_base_seconds=0.05,
        wado_url=WADO,
        notify_enabled=False,  # the test drives its own NotifyWorker
        ehrs=[
            EhrRegistration(
                iss=ehr.fhir_base,
                client_id=CLIENT_ID,
                auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC,
                client_secret=SECRET,  # type: ignore[arg-type]
                scopes=SCOPES,
                mrn_system=data.MRN_SYSTEM,
                notify=["Media", "Observation"],
                backend_scopes="system/Media.cu system/Observation.cu",
            )
        ],
    )
    with TestClient(create_app(settings), base_url=APP) as client:
        yield Env(client, settings, ehr)


def _upload(env: Env, context_id: str, capture_id: str, jpeg: bytes) -> None:
    form = {
        "capture_id": capture_id,
        "context_id": context_id,
        "body_site": SHIN,
        "laterality": "R",
        "captured_at": "2026-03-01T10:15:00+00:00",
    }
    sent = env.client.post(
        "/api/v1/captures", data=form, files={"photo": ("p.jpg", jpeg, "image/jpeg")}
    )
    assert sent.status_code == 202, sent.text
    until(
        lambda: env.client.get(f"/api/v1/captures/{capture_id}").json()["status"] == "verified",
        f"{capture_id} verified",
    )


def test_the_wound_size_observation_arrives_once_derived_from_the_media(env: Env) -> None:
    context_id = str(launch_from_ehr(env.client, env.ehr, "enc-muller")["context_id"])
    phantom = wound_phantom()
    _upload(env, context_id, "obs-1", phantom.jpeg)
    _upload(env, context_id, "obs-plain", phone_jpeg(640, 480))
    tracing = [[float(x), float(y)] for x, y in phantom.tracing_px]
    measured = env.client.post("/api/v1/captures/obs-1/measurements", json={"outline": tracing})
    assert measured.status_code == 201, measured.text
    body = measured.json()
    refused = env.client.post(
        "/api/v1/captures/obs-plain/measurements",
        json={"outline": [[10, 10], [200, 10], [200, 200]]},
    )
    assert refused.status_code == 422 and refused.json()["code"] == "no-marker"

    def sr_verified() -> bool:
        row = capture_rows.get(env.engine, body["sr_capture_id"])
        return row is not None and row.status == CaptureStatus.VERIFIED

    until(sr_verified, "the SR verified")
    worker = env.worker()
    _drain(worker)
    worker.stop()

    observations = env.ehr.created("Observation")
    assert len(observations) == 1 and env.ehr.posts("Observation") == 1
    (observation,) = observations
    Observation.model_validate(observation)
    photo = capture_rows.get(env.engine, "obs-1")
    assert photo is not None
    medias = {m["identifier"][0]["value"]: m["id"] for m in env.ehr.created("Media")}  # by SOP UID
    assert observation["derivedFrom"] == [
        {"reference": f"Media/{medias[f'urn:oid:{photo.sop_instance_uid}']}"}
    ]
    assert observation["identifier"] == [
        {"system": "urn:dicom:uid", "value": f"urn:oid:{body['sr_sop_instance_uid']}"}
    ]
    assert observation["subject"] == {"reference": "Patient/pat-muller"}
    assert [p["reference"] for p in observation.get("performer", [])] == [
        f"Practitioner/{data.PRACTITIONER['id']}"
    ]  # the nurse who measured (the session's fhirUser)
    assert observation["code"]["coding"][0]["code"] == "72287-6"
    components = {
        c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in observation["component"]
    }
    assert components["89260-4"]["value"] == pytest.approx(body["area_cm2"], abs=0.01)
    assert components["89260-4"]["code"] == "cm2"
    assert components["39126-8"]["value"] == pytest.approx(body["length_mm"] / 10, abs=0.01)
    assert observation["bodySite"]["coding"][0]["code"] == SHIN
    assert observation["effectiveDateTime"].startswith("2026-03-01T10:15:00")

    _reset_pending(env)  # every row sent again: the EHR answers "already there"
    again = env.worker()
    _drain(again)
    again.stop()
    assert env.ehr.posts("Observation") == 2
    assert len(env.ehr.created("Observation")) == 1  # exactly once
    assert len(env.ehr.created("Media")) == 2  # the two photos; the refused one has no more


def test_no_observation_before_the_photo_is_in_the_ehr(env: Env) -> None:
    context_id = str(launch_from_ehr(env.client, env.ehr, "enc-muller")["context_id"])
    _upload(env, context_id, "obs-2", wound_phantom().jpeg)
    tracing = [[float(x), float(y)] for x, y in wound_phantom().tracing_px]
    body = env.client.post("/api/v1/captures/obs-2/measurements", json={"outline": tracing}).json()

    def sr_verified() -> bool:
        row = capture_rows.get(env.engine, body["sr_capture_id"])
        return row is not None and row.status == CaptureStatus.VERIFIED

    until(sr_verified, "the SR verified")
    env.ehr.state.extra["fhir_write_fault"] = (503, "EHR busy")
    worker = env.worker()
    for _ in range(5):
        worker.run_once()
    assert env.ehr.created("Observation") == []
    assert {r.resource_type for r in env.rows()} == {"Media"}  # the Observation waits
    del env.ehr.state.extra["fhir_write_fault"]
    deadline = time.monotonic() + 20
    while not env.ehr.created("Observation") and time.monotonic() < deadline:
        worker.run_once()
        time.sleep(0.02)
    worker.stop()
    assert len(env.ehr.created("Observation")) == 1


def test_measuring_follows_the_photos_access_rules_and_is_audited(env: Env) -> None:
    context_id = str(launch_from_ehr(env.client, env.ehr, "enc-muller")["context_id"])
    _upload(env, context_id, "obs-3", wound_phantom().jpeg)
    tracing = [[float(x), float(y)] for x, y in wound_phantom().tracing_px]
    path = "/api/v1/captures/obs-3/measurements"

    # The same running app (no ``with``: its lifespan, the runtime, stays the one started).
    stranger = TestClient(env.client.app, base_url=APP)  # no session
    assert stranger.post(path, json={"outline": tracing}).status_code == 401
    assert stranger.get("/api/v1/captures/obs-3/image").status_code == 401
    other = TestClient(env.client.app, base_url=APP)  # another nurse, another patient
    launch_from_ehr(other, env.ehr, "enc-okada")
    assert other.post(path, json={"outline": tracing}).status_code == 404
    assert other.get(path).status_code == 404
    assert other.post("/api/v1/captures/obs-3/snap", json={"outline": tracing}).status_code == 404

    assert env.client.post(path, json={"outline": tracing}).status_code == 201
    assert client_rows(env) == []  # nothing measured for the refused requests but this one
    events = [r for r in audit_rows(env.client) if r.action == "wound-measurement"]
    outcomes = sorted((r.method, r.http_status) for r in events)
    assert ("POST", 201) in outcomes and ("POST", 401) in outcomes and ("POST", 404) in outcomes
    assert all(r.route == "/api/v1/captures/{capture_id}/measurements" for r in events)


def client_rows(env: Env) -> list[str]:
    """Measurements of photos other than obs-3 (there must be none)."""
    with Session(env.engine) as s:
        rows = s.exec(select(WoundMeasurementRecord)).all()
    return [r.capture_id for r in rows if r.capture_id != "obs-3"]
