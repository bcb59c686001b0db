"""The encounter worklist end to end over real HTTP (UPS-RS, DICOM PS3.18 chapter 11).

The EHR sandbox serves UPS-RS on loopback; the capture app (embedded local archive) claims
a workitem, takes a photo in its context and completes the workitem with the stored instance.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.api.routes import worklist as worklist_routes
from capture_api.capture import Retrieval
from capture_api.config import Settings
from capture_api.context.worklist import (
    TAKEN_MESSAGE,
    ProducedInstance,
    WorkitemTaken,
    WorklistClient,
    WorklistError,
)
from capture_api.runtime import Runtime
from capture_api.store import contexts
from ehr_sandbox import data
from ehr_sandbox.server import SandboxServer
from ehr_sandbox.ups_server import calls, reset_workitems, slow_updates, workitem_uid, workitems
from tests.conftest import SAMPLES
from tests.deliver.service_process import fresh_postgres_database, pg_rows

PHOTO = (SAMPLES / "orientation" / "portrait_6.jpg").read_bytes()
DERM = "DERM-PHONE-01"
MEDIA = {"Accept": "application/dicom+json", "Content-Type": "application/dicom+json"}
WADO = Retrieval(wado_rs_base="http://pacs.test/dicom-web")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_worklist(sandbox: SandboxServer) -> None:
    reset_workitems(sandbox.state)


def _dicomweb(sandbox: SandboxServer) -> str:
    return f"{sandbox.state.base_url}/dicom-web"


def _app(
    tmp: Path, sandbox: SandboxServer | None, station: str | None = DERM, **overrides: Any
) -> FastAPI:
    settings = Settings(
        **{"poll_seconds": 0.05, "retry_base_seconds": 0.05, **overrides},
        data_dir=tmp,
        worklist_url=_dicomweb(sandbox) if sandbox else None,
        worklist_station_code=station,
    )
    app = create_app(settings)
    app.include_router(worklist_routes.router, prefix="/api/v1")  # integrator: add in app.py
    return app


@pytest.fixture
def client(tmp_path: Path, sandbox: SandboxServer) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path / "phone-a", sandbox)) as c:
        yield c


def _workitem(sandbox: SandboxServer, uid: str) -> dict[str, Any]:
    response = httpx.get(f"{_dicomweb(sandbox)}/workitems/{uid}", headers=MEDIA)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    item: dict[str, Any] = response.json()[0]
    return item


def _value(item: dict[str, Any], tag: str) -> Any:
    return (item.get(tag, {}).get("Value") or [None])[0]


def _upload(client: TestClient, context_id: str, capture_id: str, photo: bytes = PHOTO) -> Any:
    return client.post(
        "/api/v1/captures",
        data={"capture_id": capture_id, "context_id": context_id},
        files={"photo": ("photo.jpg", photo, "image/jpeg")},
    )


def _wait_verified(client: TestClient, capture_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/captures/{capture_id}").json()
        if body["status"] == "verified":
            return body
        time.sleep(0.05)
    raise AssertionError(f"{capture_id} stayed {body.get('status')} ({body})")


# --- the UPS-RS server and client -------------------------------------------------------------


def test_today_lists_only_todays_scheduled_items_of_the_station(sandbox: SandboxServer) -> None:
    base = _dicomweb(sandbox)
    tomorrow = (dt.datetime.now().astimezone() + dt.timedelta(days=1)).astimezone(dt.UTC)
    later = {  # a DERM item scheduled tomorrow: outside the DT range
        "00100020": {"vr": "LO", "Value": ["100001"]},
        "00404005": {"vr": "DT", "Value": [tomorrow.strftime("%Y%m%d%H%M%S+0000")]},
        "00404025": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": [DERM]}}]},
    }
    created = httpx.post(f"{base}/workitems?1.2.826.0.1.3680043.10.1.99", json=[later])
    assert created.status_code == 201, created.text
    with WorklistClient(base, station_code=DERM) as worklist:
        items = worklist.today()
        taken = worklist.claim(items[0].uid)
        assert taken
        remaining = worklist.today()
    derm = {"enc-muller", "enc-smith-a", "enc-ngata"}
    assert [w.uid for w in items] == [
        workitem_uid(e) for e in ("enc-muller", "enc-smith-a", "enc-ngata")
    ]
    assert {w.station_code for w in items} == {DERM}
    assert all(w.state == "SCHEDULED" for w in items)
    muller = items[0]
    assert (muller.family_name, muller.given_name, muller.patient_id) == (
        "Müller",
        "Jürgen",
        "100001",
    )
    assert muller.admission_id == "V-5001"
    assert muller.admission_issuer_uid == data.VISIT_SYSTEM.removeprefix("urn:oid:")
    assert muller.birth_date == dt.date(1950, 3, 14)
    assert muller.scheduled_start is not None and muller.scheduled_start.astimezone().hour == 9
    # the claimed item is IN PROGRESS now, so it is no longer on the SCHEDULED worklist
    assert {w.uid for w in remaining} == {workitem_uid(e) for e in derm - {"enc-muller"}}
    with WorklistClient(base, station_code="WOUND-PHONE-01") as wound:
        wound_items = wound.today()
    assert {w.uid for w in wound_items} == {workitem_uid("enc-smith-b"), workitem_uid("enc-okada")}
    no_visit = next(w for w in wound_items if w.uid == workitem_uid("enc-smith-b"))
    encounter = no_visit.to_context().encounter
    assert no_visit.admission_id is None
    assert encounter is not None and encounter.admission_id is None


def test_search_semantics_keywords_tags_204_and_400(sandbox: SandboxServer) -> None:
    url = f"{_dicomweb(sandbox)}/workitems"
    by_keyword = httpx.get(url, params={"PatientID": "100004"}, headers=MEDIA)
    by_tag = httpx.get(url, params={"00100020": "100004"}, headers=MEDIA)
    assert by_keyword.status_code == by_tag.status_code == 200
    assert by_keyword.json() == by_tag.json() and len(by_tag.json()) == 1
    assert httpx.get(url, params={"00404025.00080100": "WOUND-PHONE-01"}).status_code == 200
    assert len(httpx.get(url, params={"00741202": "Sandbox*"}).json()) == 5
    assert httpx.get(url, params={"PatientID": "no-such-mrn"}).status_code == 204
    assert len(httpx.get(url, params={"limit": "2", "offset": "1"}).json()) == 2
    for bad in ({"NoSuchKeyword": "x"}, {"0040XXXX": "x"}, {"PatientBirthName": "x"}):
        refused = httpx.get(url, params=bad)
        assert refused.status_code == 400, bad
        assert "299" in refused.headers["warning"]
    assert httpx.get(url, params={"00404005": "yesterday-ish"}).status_code == 400


def test_unknown_matching_key_raises_a_readable_error(sandbox: SandboxServer) -> None:
    with (
        WorklistClient(_dicomweb(sandbox)) as worklist,
        pytest.raises(WorklistError, match="not a DICOM attribute") as caught,
    ):
        worklist.search([("ScheduledStationNmeCodeSequence.CodeValue", DERM)])
    assert "400" in str(caught.value)


def _dicom(*datasets: dict[str, Any]) -> str:
    """DICOM JSON as PS3.18 F.2.2 wants it: attributes in tag order at every level."""
    return json.dumps(list(datasets), sort_keys=True)


def _cancel_final_state(reason: str = "110513") -> dict[str, Any]:
    """An Update with the CANCELED final state attributes (PS3.4 Table CC.2.5-3, "X")."""
    code = {
        "00080100": {"vr": "SH", "Value": [reason]},
        "00080102": {"vr": "SH", "Value": ["DCM"]},
        "00080104": {"vr": "LO", "Value": ["Discontinued for unspecified reason"]},
    }
    progress = {
        "00404052": {"vr": "DT", "Value": ["20250101120000+0000"]},
        "0074100E": {"vr": "SQ", "Value": [code]},
    }
    return {"00741002": {"vr": "SQ", "Value": [progress]}}


def test_state_machine_follows_table_cc_1_1_2(sandbox: SandboxServer) -> None:
    """The sandbox answers as PS3.4 Table CC.1.1-2 and PS3.18 Table 11.7.3-1/-2 say."""
    base = _dicomweb(sandbox)
    uid = workitem_uid("enc-okada")
    url = f"{base}/workitems/{uid}"

    def put(state: str, transaction: str | None) -> httpx.Response:
        body: dict[str, Any] = {"00741000": {"vr": "CS", "Value": [state]}}
        if transaction:
            body["00081195"] = {"vr": "UI", "Value": [transaction]}
        return httpx.put(f"{url}/state", content=_dicom(body), headers=MEDIA)

    def warning(response: httpx.Response) -> str:
        return "; ".join(response.headers.get_list("warning"))

    assert put("COMPLETED", "1.2.3").status_code == 409  # not claimed yet (C310)
    missing = put("IN PROGRESS", None)
    assert missing.status_code == 400 and "The Transaction UID is missing." in warning(missing)
    assert put("IN PROGRESS", "1.2.3").status_code == 200
    assert "00081195" not in _workitem(sandbox, uid)  # never returned (PS3.18 11.5.3.3)
    second = put("IN PROGRESS", "1.2.4")  # another claimer: not the owner's UID (C301)
    assert second.status_code == 400
    assert "The Transaction UID is incorrect." in warning(second)
    again = put("IN PROGRESS", "1.2.3")  # the owner claims again (C302)
    assert again.status_code == 409 and "inconsistent with the state" in warning(again)
    assert put("CANCELED", "1.2.4").status_code == 400  # not the owner
    update = _dicom({"00741204": {"vr": "LO", "Value": ["changed"]}})
    assert httpx.post(f"{url}?1.2.4", content=update, headers=MEDIA).status_code == 400
    assert httpx.post(f"{url}?1.2.3", content=update, headers=MEDIA).status_code == 200
    assert _value(_workitem(sandbox, uid), "00741204") == "changed"
    refused = put("COMPLETED", "1.2.3")  # no Performed Procedure Sequence yet (C304)
    assert refused.status_code == 409 and "(0074,1216)" in warning(refused)
    bare_cancel = put("CANCELED", "1.2.3")  # no cancellation time or reason yet (C304)
    assert bare_cancel.status_code == 409 and "(0074,1002)" in warning(bare_cancel)
    final = _dicom(_cancel_final_state())
    assert httpx.post(f"{url}?1.2.3", content=final, headers=MEDIA).status_code == 200
    assert put("CANCELED", "1.2.3").status_code == 200
    assert _value(_workitem(sandbox, uid), "00741000") == "CANCELED"
    closed = httpx.post(f"{url}?1.2.3", content=update, headers=MEDIA)  # final: no updates
    assert closed.status_code == 400
    twice = put("CANCELED", "1.2.3")
    assert twice.status_code == 200
    assert warning(twice).endswith(": The UPS is already in the requested state of CANCELED.")
    assert httpx.get(f"{base}/workitems/1.2.3.4.5").status_code == 404


def test_client_claim_twice_raises_workitem_taken(sandbox: SandboxServer) -> None:
    uid = workitem_uid("enc-smith-a")
    with WorklistClient(_dicomweb(sandbox)) as one, WorklistClient(_dicomweb(sandbox)) as two:
        transaction = one.claim(uid)
        with pytest.raises(WorkitemTaken, match="already being photographed on another device"):
            two.claim(uid)
        # the Retrieve showed IN PROGRESS: no change-state a server would refuse was sent
        assert [c for c in calls(sandbox.state) if c[:2] == ("state", uid)] == [
            ("state", uid, "IN PROGRESS")
        ]
        produced = [ProducedInstance("1.2.3", "1.2.3.1", "1.2.3.1.1")]
        one.complete(uid, transaction, produced, WADO)
        one.complete(uid, transaction, [], WADO)  # idempotent once COMPLETED
    item = _workitem(sandbox, uid)
    assert _value(item, "00741000") == "COMPLETED"


# --- the capture API --------------------------------------------------------------------------


def test_worklist_route_lists_todays_encounters(client: TestClient) -> None:
    response = client.get("/api/v1/worklist")
    assert response.status_code == 200, response.text
    items = response.json()
    assert [i["mrn"] for i in items] == ["100001", "100002", "100005"]
    first = items[0]
    assert first["name"] == "Müller, Jürgen" and first["birth_date"] == "1950-03-14"
    assert first["admission_id"] == "V-5001" and first["description"]
    assert first["scheduled_at"].startswith(dt.date.today().isoformat())


def test_worklist_route_without_configuration_is_503(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, None)) as c:
        response = c.get("/api/v1/worklist")
    assert response.status_code == 503
    assert "no worklist is configured" in response.json()["detail"]


def test_claim_capture_complete(client: TestClient, sandbox: SandboxServer, tmp_path: Path) -> None:
    uid = workitem_uid("enc-muller")
    claimed = client.post(f"/api/v1/worklist/{uid}/claim")
    assert claimed.status_code == 201, claimed.text
    context_id = claimed.json()["context_id"]

    context = client.get(f"/api/v1/contexts/{context_id}").json()
    assert context["source"] == "worklist"
    assert context["patient"]["id"] == "100001"
    assert context["patient"]["name"] == {"family": "Müller", "given": "Jürgen"}
    assert context["patient"]["issuer"]["namespace"] == data.MRN_SYSTEM
    assert context["encounter"]["admission_id"] == "V-5001"
    assert context["encounter"]["issuer"]["universal_id"] == "2.16.840.1.113883.3.9999.2"
    assert _value(_workitem(sandbox, uid), "00741000") == "IN PROGRESS"
    assert uid not in [i["uid"] for i in client.get("/api/v1/worklist").json()]

    with TestClient(_app(tmp_path / "phone-b", sandbox)) as other_phone:
        second = other_phone.post(f"/api/v1/worklist/{uid}/claim")
    assert second.status_code == 409
    assert second.json() == {"detail": TAKEN_MESSAGE, "code": "workitem-taken"}

    assert client.post(f"/api/v1/worklist/contexts/{context_id}/complete").status_code == 409
    upload = _upload(client, context_id, "wl-1")
    assert upload.status_code == 202, upload.text
    early = client.post(f"/api/v1/worklist/contexts/{context_id}/complete")
    if early.status_code == 409:  # the outbox may already have verified it: both are correct
        assert "not in the archive yet" in early.json()["detail"]
    verified = _wait_verified(client, "wl-1")

    done = client.post(f"/api/v1/worklist/contexts/{context_id}/complete")
    assert done.status_code == 200, done.text
    assert done.json()["sop_instance_uids"] == [verified["sop_instance_uid"]]
    item = _workitem(sandbox, uid)
    assert _value(item, "00741000") == "COMPLETED"
    performed = _value(item, "00741216")
    output = performed["00404033"]["Value"][0]
    assert _value(output, "0020000D") == verified["study_uid"] == claimed.json()["study_uid"]
    assert _value(output, "0020000E") == verified["series_uid"]
    ref = output["00081199"]["Value"][0]
    assert _value(ref, "00081155") == verified["sop_instance_uid"]
    assert _value(ref, "00081150") == "1.2.840.10008.5.1.4.1.1.77.1.4"
    assert _value(performed["00404028"]["Value"][0], "00080100") == DERM
    # The embedded archive is a File-set on disk: DICOM Media Retrieval Sequence (0040,E022)
    # names it by the DICOMDIR's own File-set ID and UID (read back with pydicom).
    dicomdir = pydicom.dcmread(tmp_path / "phone-a" / "archive" / "DICOMDIR")
    media = _value(output, "0040E022")
    assert _value(media, "00880140") == dicomdir.file_meta.MediaStorageSOPInstanceUID
    assert _value(media, "00880130") == dicomdir.FileSetID == "CAPTURE"
    assert "0040E025" not in output and "0040E021" not in output  # nothing served by URL


def test_complete_before_verified_completes_once_the_photos_are_in_the_archive(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    uid = workitem_uid("enc-ngata")
    with TestClient(_app(tmp_path, sandbox, worker_enabled=False)) as c:  # nothing delivered yet
        context_id = c.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
        assert _upload(c, context_id, "wl-pending").status_code == 202
        response = c.post(f"/api/v1/worklist/contexts/{context_id}/complete")
        assert response.status_code == 202
        assert response.json()["state"] == "COMPLETION REQUESTED"
        assert response.json()["pending"] == 1
        assert _value(_workitem(sandbox, uid), "00741000") == "IN PROGRESS"

        runtime = c.app.state.runtime  # type: ignore[attr-defined]
        assert runtime.worklist_completion.run_pending() == 0  # the photo is not verified yet
        while runtime.worker.run_once():  # deliver it (encode -> store -> verify)
            pass
        assert c.get("/api/v1/captures/wl-pending").json()["status"] == "verified"
        assert runtime.worklist_completion.run_pending() == 1
        assert runtime.worklist_completion.run_pending() == 0  # done once
    assert _value(_workitem(sandbox, uid), "00741000") == "COMPLETED"


def test_an_encounter_with_a_failed_photo_is_not_completed(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    uid = workitem_uid("enc-smith-a")
    with TestClient(_app(tmp_path, sandbox, worker_enabled=False)) as c:
        context_id = c.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
        corrupt = (SAMPLES / "camera" / "corrupted.jpg").read_bytes()
        assert _upload(c, context_id, "wl-bad", photo=corrupt).status_code == 422
        response = c.post(f"/api/v1/worklist/contexts/{context_id}/complete")
        assert response.status_code == 409 and "failed" in response.json()["detail"]
        assert c.post(f"/api/v1/worklist/contexts/{context_id}/cancel").status_code == 204
    assert _value(_workitem(sandbox, uid), "00741000") == "CANCELED"


def test_two_replicas_complete_a_workitem_exactly_once(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Two runtimes on one PostgreSQL database, two completion threads each, a worklist whose
    Update takes three leases: the workitem is recorded and COMPLETED once, by one of them.

    The lease (0.5 s) only outlives the slow Update because the heartbeat renews it; without
    the lease every thread would read the item IN PROGRESS and send its own Update.
    """
    uid = workitem_uid("enc-muller")
    with fresh_postgres_database() as url:
        replica: dict[str, Any] = {
            "database_url": url,
            "worker_enabled": False,
            "lease_seconds": 0.5,
        }
        with TestClient(_app(tmp_path, sandbox, **replica)) as c:
            context_id = c.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
            assert _upload(c, context_id, "wl-replicas").status_code == 202
            queued = c.post(f"/api/v1/worklist/contexts/{context_id}/complete")
            assert queued.status_code == 202, queued.text  # not verified yet: queued
            first: Runtime = c.app.state.runtime  # type: ignore[attr-defined]
            while first.worker.run_once():  # deliver it (encode -> store -> verify)
                pass
            assert c.get("/api/v1/captures/wl-replicas").json()["status"] == "verified"
            assert first.completer is not None
            second = Runtime.build(
                Settings(
                    **replica,
                    data_dir=tmp_path,
                    poll_seconds=0.05,
                    retry_base_seconds=0.05,
                    worklist_url=_dicomweb(sandbox),
                    worklist_station_code=DERM,
                )
            )
            assert second.completer is not None
            slow_updates(sandbox.state, 1.5)
            try:
                first.completer.start(2)
                second.completer.start(2)
                deadline = time.monotonic() + 20
                while _value(_workitem(sandbox, uid), "00741000") != "COMPLETED":
                    assert time.monotonic() < deadline, "the workitem was never completed"
                    time.sleep(0.05)
                time.sleep(1.5)  # three more leases: time for a second completion to show
            finally:
                second.close()
        mine = [call for call in calls(sandbox.state) if call[1] == uid]
        assert mine == [
            ("state", uid, "IN PROGRESS"),  # the claim
            ("update", uid, ""),  # the Output Information Sequence, once
            ("state", uid, "COMPLETED"),  # once
        ]
        assert pg_rows(url, "SELECT status, attempts, lease_owner FROM worklist_completion") == [
            ("completed", 0, None)
        ]
        (completed_at,) = pg_rows(url, "SELECT completed_at FROM encounter_context")[0]
        assert completed_at is not None


def test_a_refused_completion_is_retried_with_backoff_not_every_poll(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    uid = workitem_uid("enc-ngata")
    app = _app(tmp_path, sandbox, worker_enabled=False, retry_base_seconds=30)
    with TestClient(app) as c:
        context_id = c.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
        assert _upload(c, context_id, "wl-refused").status_code == 202
        assert c.post(f"/api/v1/worklist/contexts/{context_id}/complete").status_code == 202
        runtime: Runtime = c.app.state.runtime  # type: ignore[attr-defined]
        while runtime.worker.run_once():
            pass
        # Someone cancels the workitem at the worklist: Update is refused from now on (400).
        # The scheduler changed the item meanwhile: it has no Scheduled Workitem Code
        # Sequence any more, so nothing can fill Performed Workitem Code Sequence (Final
        # State "P"), and the server refuses COMPLETED (409, C304).
        workitems(sandbox.state)[uid].pop("00404018")

        before = dt.datetime.now(dt.UTC)
        assert runtime.worklist_completion.run_pending() == 0
        queued = contexts.completion(runtime.engine, context_id)
        assert queued is not None and queued.status == "pending"
        assert queued.attempts == 1 and queued.lease_owner is None
        assert queued.last_error and "will retry" in queued.last_error
        assert "the worklist server refused the completion: 409" in queued.last_error
        assert "PerformedWorkitemCodeSequence (0040,4019)" in queued.last_error
        assert queued.next_attempt_at >= before + dt.timedelta(seconds=15)  # backoff: 15-60 s
        states = [call for call in calls(sandbox.state) if call[:2] == ("state", uid)]
        assert runtime.worklist_completion.run_pending() == 0  # not due again yet
        assert [call for call in calls(sandbox.state) if call[:2] == ("state", uid)] == states
        assert runtime.service.context(context_id).completed_at is None
