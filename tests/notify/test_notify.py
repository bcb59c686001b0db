"""Notify the EHR after verified storage: FHIR R4 conditional create, exactly once, over real HTTP.

The sandbox EHR (its own uvicorn, so a test can take it down and bring it back on the same
port) launches capture; a photo goes to the local archive and is verified; a ``NotifyWorker``
built on the app's engine then creates Media and DocumentReference in the sandbox with SMART
Backend Services tokens. Workers are driven with ``run_once`` for determinism.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.media import Media
from joserfc import jwk
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from capture_api.api.app import create_app
from capture_api.capture.anatomy import resolve
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.deliver.outbox import OutboxPolicy
from capture_api.notify.backend_auth import BackendTokens, NotifyAuthError
from capture_api.notify.resources import LATERALITY_EXTENSION
from capture_api.notify.worker import NotifyWorker
from capture_api.store.records import (
    CaptureRecord,
    NotificationRecord,
    NotificationStatus,
    utcnow,
)
from ehr_sandbox import data
from ehr_sandbox.app import create_app as create_sandbox
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.fhir_server import enable_writes
from ehr_sandbox.server import free_port
from ehr_sandbox.state import SandboxState
from ehr_sandbox.tokens import TokenInfo
from tests.conftest import phone_jpeg
from tests.security.browser import launch_from_ehr

APP = "http://capture.test"
WADO = "http://pacs.test/dicom-web"
CLIENT_ID = "capture-notify"
SECRET = "notify-secret"  # synthetic test credential for the sandbox only
SCOPES = "launch openid fhirUser patient/Patient.rs patient/Encounter.rs user/Patient.rs"
FOREARM, _ = resolve("left forearm")
FAST = OutboxPolicy(retry_base=0.01, retry_max=0.05, poll=0.01)


class Ehr:
    """The sandbox on a fixed loopback port that a test can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.state = SandboxState(base_url=f"http://127.0.0.1:{self.port}")
        self.state.app_launch_url = f"{APP}/launch"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def fhir_base(self) -> str:
        return self.state.fhir_base

    def start(self) -> None:
        config = uvicorn.Config(
            create_sandbox(self.state), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.fhir_base}/metadata", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the EHR sandbox did not start")

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(5)

    def posts(self, resource_type: str) -> int:
        counts: dict[str, int] = self.state.extra.get("fhir_posts", {})
        return counts.get(resource_type, 0)

    def created(self, resource_type: str) -> list[dict[str, Any]]:
        store: dict[str, dict[str, dict[str, Any]]] = self.state.extra.get("fhir_created", {})
        return list(store.get(resource_type, {}).values())


@dataclass
class Env:
    client: TestClient
    settings: Settings
    ehr: Ehr

    @property
    def engine(self) -> Engine:
        engine: Engine = self.client.app.state.runtime.engine  # type: ignore[attr-defined]
        return engine

    def worker(self, settings: Settings | None = None) -> NotifyWorker:
        return NotifyWorker(self.engine, settings or self.settings, FAST)

    def rows(self) -> list[NotificationRecord]:
        with Session(self.engine) as s:
            return list(s.exec(select(NotificationRecord)).all())

    def search(self, resource_type: str, query: str) -> list[dict[str, Any]]:
        """Search the sandbox with a user token (as a chart viewer would)."""
        token = self.ehr.state.tokens.issue(
            TokenInfo(client_id="viewer", scope=f"user/{resource_type}.rs")
        )
        response = httpx.get(
            f"{self.ehr.fhir_base}/{resource_type}?{query}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        return [e["resource"] for e in response.json().get("entry", [])]


@pytest.fixture
def ehr() -> Iterator[Ehr]:
    server = Ehr()
    register_client(server.state, CLIENT_ID, f"{APP}/launch/callback", secret=SECRET)
    enable_writes(server.state)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(ehr: Ehr, tmp_path: Path) -> Iterator[Env]:
    settings = Settings(
        data_dir=tmp_path,
        public_url=APP,
        cookie_secure=False,
        poll_seconds=0.05,
        wado_url=WADO,
        notify_enabled=False,  # each test drives its own NotifyWorker
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
    with TestClient(create_app(settings), base_url=APP) as client:
        yield Env(client, settings, ehr)


def _launch(env: Env, encounter: str) -> str:
    """Click "Launch capture" in the sandbox EHR; returns the session's context id."""
    return str(launch_from_ehr(env.client, env.ehr, encounter)["context_id"])


def _capture(env: Env, capture_id: str, encounter: str = "enc-muller", **extra: Any) -> str:
    """Launch, upload one photo of the left forearm, wait until verified; returns the SOP UID."""
    context_id = _launch(env, encounter)
    form: dict[str, Any] = {
        "capture_id": capture_id,
        "context_id": context_id,
        "body_site": FOREARM.code_value,
        "laterality": "L",
        "note": "healing well",
        "captured_at": "2026-03-01T10:15:00+00:00",
        **extra,
    }
    photo = ("p.jpg", phone_jpeg(320, 240, seed=len(capture_id)), "image/jpeg")
    upload = env.client.post("/api/v1/captures", data=form, files={"photo": photo})
    assert upload.status_code == 202, upload.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = env.client.get(f"/api/v1/captures/{capture_id}").json()
        if body["status"] == "verified":
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"{capture_id} not verified")
    with Session(env.engine) as s:
        record = s.get(CaptureRecord, capture_id)
        assert record is not None and record.sop_instance_uid
        return record.sop_instance_uid


def _drain(worker: NotifyWorker, limit: int = 50) -> None:
    for _ in range(limit):
        if not worker.run_once():
            return
    raise AssertionError("the notify worker never went idle")


def _reset_pending(env: Env) -> None:
    with Session(env.engine) as s:
        s.exec(
            update(NotificationRecord).values(
                status=NotificationStatus.PENDING.value, next_attempt_at=utcnow(), attempts=0
            )
        )
        s.commit()


def _by_type(env: Env) -> dict[str, NotificationRecord]:
    return {r.resource_type: r for r in env.rows()}


def _identifier(sop_uid: str) -> str:
    return f"identifier=urn:dicom:uid|urn:oid:{sop_uid}"


# --- the happy path, and exactly once ----------------------------------------------------------


def test_verified_capture_creates_one_media_and_one_document_reference(env: Env) -> None:
    sop = _capture(env, "notify-1")
    worker = env.worker()
    _drain(worker)

    rows = _by_type(env)
    assert set(rows) == {"Media", "DocumentReference"}
    assert all(r.status == NotificationStatus.SENT for r in rows.values()), rows
    (media,) = env.search("Media", _identifier(sop))
    assert rows["Media"].resource_id == media["id"]
    Media.model_validate(media)
    assert media["status"] == "completed"
    assert media["identifier"] == [{"system": "urn:dicom:uid", "value": f"urn:oid:{sop}"}]
    assert media["subject"] == {"reference": "Patient/pat-muller"}
    assert media["encounter"] == {"reference": "Encounter/enc-muller"}
    assert media["modality"]["coding"][0]["code"] == "XC"
    assert media["type"]["coding"][0]["code"] == "image"
    site = media["bodySite"]
    assert site["coding"] == [
        {"system": "http://snomed.info/sct", "code": FOREARM.code_value, "display": FOREARM.meaning}
    ]
    assert site["text"] == f"{FOREARM.meaning}, left"
    assert site["extension"] == [
        {
            "url": LATERALITY_EXTENSION,
            "valueCoding": {
                "system": "http://snomed.info/sct",
                "code": "7771000",
                "display": "Left",
            },
        }
    ]
    assert media["createdDateTime"].startswith("2026-03-01T10:15:00")
    assert media["operator"]["reference"] == "Practitioner/prac-nina"
    assert media["note"] == [{"text": "healing well"}]
    with Session(env.engine) as s:
        record = s.get(CaptureRecord, "notify-1")
        assert record is not None
    assert media["content"]["contentType"] == "application/dicom"
    assert media["content"]["url"] == (
        f"{WADO}/studies/{record.study_uid}/series/{record.series_uid}/instances/{sop}"
    )
    security = {(c["system"].rsplit("/", 1)[-1], c["code"]) for c in media["meta"]["security"]}
    assert security == {("v3-Confidentiality", "N")}

    (document,) = env.search("DocumentReference", _identifier(sop))
    DocumentReference.model_validate(document)
    assert document["status"] == "current"
    assert document["type"]["coding"][0]["code"] == "72170-4"
    assert document["masterIdentifier"]["value"] == f"urn:oid:{sop}"
    assert document["context"]["encounter"] == [{"reference": "Encounter/enc-muller"}]
    assert document["content"][0]["attachment"]["url"] == media["content"]["url"]
    assert [c["coding"][0]["code"] for c in document["securityLabel"]] == ["N"]
    assert env.search("Media", "patient=pat-muller") == [media]

    # A retry (the row back to pending) and a second worker: still one resource each.
    _reset_pending(env)
    _drain(env.worker())
    assert env.ehr.posts("Media") == 2 and env.ehr.posts("DocumentReference") == 2
    assert len(env.search("Media", _identifier(sop))) == 1
    assert len(env.search("DocumentReference", _identifier(sop))) == 1
    assert _by_type(env)["Media"].resource_id == media["id"]
    assert all(r.status == NotificationStatus.SENT for r in env.rows())
    worker.stop()


def test_enqueue_is_race_safe_across_workers(env: Env) -> None:
    _capture(env, "notify-race")
    workers = [env.worker() for _ in range(4)]
    threads = [threading.Thread(target=w.enqueue_missing) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.resource_type for r in env.rows()) == ["DocumentReference", "Media"]
    assert workers[0].enqueue_missing() == 0
    assert workers[0]._insert("notify-race", "Media", env.ehr.fhir_base) == 0  # unique violation
    for worker in workers:
        _drain(worker)
    assert env.ehr.posts("Media") == 1 and len(env.ehr.created("Media")) == 1


def test_restricted_photo_is_labelled_restricted(env: Env) -> None:
    sop = _capture(env, "notify-restricted", sensitivity="restricted", categories=["SEX", "BREAST"])
    _drain(env.worker())
    (media,) = env.search("Media", _identifier(sop))
    codes = {c["code"] for c in media["meta"]["security"]}
    assert codes == {"R", "SEX"}  # BREAST is capture-local: not sent
    (document,) = env.search("DocumentReference", _identifier(sop))
    assert {c["coding"][0]["code"] for c in document["securityLabel"]} == {"R", "SEX"}
    assert {c["code"] for c in document["meta"]["security"]} == {"R", "SEX"}


# --- failures and retries ----------------------------------------------------------------------


def test_ehr_down_retries_then_sends(env: Env) -> None:
    sop = _capture(env, "notify-down")
    env.ehr.stop()
    worker = env.worker()
    _drain(worker)
    rows = _by_type(env)
    assert all(r.status == NotificationStatus.PENDING for r in rows.values())
    assert all(r.attempts > 0 and "will retry" in (r.reason or "") for r in rows.values())
    assert all(r.next_attempt_at > r.created_at for r in rows.values())

    env.ehr.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        r.status != NotificationStatus.SENT for r in env.rows()
    ):
        worker.run_once()
        time.sleep(0.02)
    assert all(r.status == NotificationStatus.SENT for r in env.rows())
    assert len(env.search("Media", _identifier(sop))) == 1


def test_a_400_from_the_ehr_fails_with_its_reason_and_is_not_retried(env: Env) -> None:
    _capture(env, "notify-400")
    text = "Media.bodySite: the code is not in this EHR's body site value set"
    env.ehr.state.extra["fhir_write_fault"] = (400, text)
    worker = env.worker()
    _drain(worker)
    rows = _by_type(env)
    assert rows["Media"].status == NotificationStatus.FAILED
    assert text in (rows["Media"].reason or "") and "HTTP 400" in (rows["Media"].reason or "")
    posts = env.ehr.posts("Media")
    env.ehr.state.extra.pop("fhir_write_fault")
    _drain(worker)
    assert env.ehr.posts("Media") == posts == 1
    assert env.ehr.created("Media") == []


def test_a_5xx_is_retried(env: Env) -> None:
    _capture(env, "notify-503")
    env.ehr.state.extra["fhir_write_fault"] = (503, "maintenance")
    worker = env.worker()
    _drain(worker)
    media = _by_type(env)["Media"]
    assert media.status == NotificationStatus.PENDING and media.attempts >= 1
    assert "503" in (media.reason or "") and "maintenance" in (media.reason or "")
    env.ehr.state.extra.pop("fhir_write_fault")
    time.sleep(0.1)
    _drain(worker)
    assert all(r.status == NotificationStatus.SENT for r in env.rows())


def test_a_401_gets_one_fresh_token(env: Env) -> None:
    sop = _capture(env, "notify-401")
    worker = env.worker()
    _drain(worker)
    issued = env.ehr.state.extra["backend_tokens_issued"][CLIENT_ID]
    assert issued == 1  # cached across both resources
    env.ehr.state.tokens.revoke_all()  # the EHR forgot every token
    _reset_pending(env)
    _drain(worker)
    assert env.ehr.state.extra["backend_tokens_issued"][CLIENT_ID] == 2
    assert all(r.status == NotificationStatus.SENT for r in env.rows())
    assert len(env.search("Media", _identifier(sop))) == 1


def test_a_public_client_cannot_notify(env: Env) -> None:
    _capture(env, "notify-public")
    (registration,) = env.settings.ehrs
    public = env.settings.model_copy(
        update={
            "ehrs": [
                registration.model_copy(
                    update={"auth_method": ClientAuthMethod.NONE, "client_secret": None}
                )
            ]
        }
    )
    _drain(env.worker(public))
    rows = env.rows()
    assert len(rows) == 2 and all(r.status == NotificationStatus.FAILED for r in rows)
    assert all(
        "configure a confidential client for notifications" in (r.reason or "") for r in rows
    )
    assert env.ehr.posts("Media") == 0


def test_an_ehr_without_conditional_create_is_not_posted_to(env: Env) -> None:
    _capture(env, "notify-capability")
    enable_writes(env.ehr.state, ("Media",), conditional=False)
    env.ehr.state.extra["fhir_writable"].pop("DocumentReference")
    _drain(env.worker())
    rows = _by_type(env)
    assert rows["Media"].status == NotificationStatus.FAILED
    assert "conditional create of Media" in (rows["Media"].reason or "")
    assert rows["DocumentReference"].status == NotificationStatus.FAILED
    assert "does not support create of DocumentReference" in (
        rows["DocumentReference"].reason or ""
    )
    assert env.ehr.posts("Media") == 0 and env.ehr.posts("DocumentReference") == 0


def test_nothing_is_enqueued_for_an_ehr_without_notify(env: Env) -> None:
    _capture(env, "notify-off")
    (registration,) = env.settings.ehrs
    quiet = env.settings.model_copy(
        update={"ehrs": [registration.model_copy(update={"notify": []})]}
    )
    _drain(env.worker(quiet))
    assert env.rows() == []


# --- SMART Backend Services with private_key_jwt -------------------------------------------------


def test_private_key_jwt_client_credentials(ehr: Ehr, tmp_path: Path) -> None:
    key = jwk.RSAKey.generate_key(2048, parameters={"kid": "notify-1"}, private=True)
    pem = tmp_path / "notify.pem"
    pem.write_bytes(key.as_pem(private=True))
    register_client(
        ehr.state,
        "capture-jwt",
        f"{APP}/launch/callback",
        jwks=dict(jwk.KeySet([key]).as_dict(private=False)),
    )
    registration = EhrRegistration(
        iss=ehr.fhir_base,
        client_id="capture-jwt",
        auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key_file=pem,
        private_key_id="notify-1",
    )
    with httpx.Client() as http:
        tokens = BackendTokens(http)
        token = tokens.get(registration)
        assert tokens.get(registration) == token  # cached
        info = ehr.state.tokens.lookup(token)
        assert info is not None and info.patient is None
        assert info.scopes == {"system/Media.cu", "system/DocumentReference.cu"}
        wrong = registration.model_copy(update={"client_id": "capture-unknown"})
        with pytest.raises(NotifyAuthError, match="invalid_client"):
            BackendTokens(http).get(wrong)
    response = httpx.post(
        f"{ehr.fhir_base}/Media",
        json={"resourceType": "Media", "status": "completed"},  # no content: 1..1
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
