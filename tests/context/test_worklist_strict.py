"""Issue 19: the worklist against a UPS-RS server that enforces PS3.4 Annex CC to the letter.

The sandbox's UPS-RS server refuses what the standard refuses (``ehr_sandbox.ups_rules``):
these tests show each refusal our old requests met, that our requests now pass, and what the
phone is told. Each test names the point of the issue it proves.
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
from fastapi.testclient import TestClient
from pydicom import Dataset
from pydicom.fileset import FileSet

from capture_api.api.app import create_app
from capture_api.api.routes import worklist as worklist_routes
from capture_api.capture import Issuer, Retrieval, same_authority
from capture_api.config import EhrRegistration, Settings
from capture_api.context.ups_dataset import completion_update, to_json
from capture_api.context.worklist import (
    ProducedInstance,
    Workitem,
    WorkitemTaken,
    WorklistClient,
)
from ehr_sandbox import data
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.server import SandboxServer
from ehr_sandbox.ups_server import calls, reset_workitems, workitem_uid, workitems
from tests.conftest import SAMPLES
from tests.orthanc import OrthancServer
from tests.security.browser import launch_from_ehr

PHOTO = (SAMPLES / "orientation" / "portrait_6.jpg").read_bytes()
DERM = "DERM-PHONE-01"
MEDIA = {"Accept": "application/dicom+json", "Content-Type": "application/dicom+json"}
APP = "http://capture.test"
MRN_OID = data.MRN_SYSTEM.removeprefix("urn:oid:")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(app_launch_url=f"{APP}/launch") as server:
        register_client(server.state, "capture-i19", f"{APP}/launch/callback")
        yield server


@pytest.fixture(autouse=True)
def _fresh_worklist(sandbox: SandboxServer) -> None:
    reset_workitems(sandbox.state)


def _base(sandbox: SandboxServer) -> str:
    return f"{sandbox.state.base_url}/dicom-web"


def _settings(tmp: Path, sandbox: SandboxServer, **overrides: Any) -> Settings:
    return Settings(
        **{"poll_seconds": 0.05, "retry_base_seconds": 0.05, **overrides},
        data_dir=tmp,
        worklist_url=_base(sandbox),
        worklist_station_code=DERM,
    )


@pytest.fixture
def phone(tmp_path: Path, sandbox: SandboxServer) -> Iterator[TestClient]:
    """Integration mode (no EHR): the worklist routes open contexts for any patient."""
    app = create_app(_settings(tmp_path, sandbox))
    app.include_router(worklist_routes.router, prefix="/api/v1")
    with TestClient(app) as client:
        yield client


def _item(sandbox: SandboxServer, uid: str) -> dict[str, Any]:
    response = httpx.get(f"{_base(sandbox)}/workitems/{uid}", headers=MEDIA)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()[0]
    return found


def _value(ds: dict[str, Any], tag: str) -> Any:
    return (ds.get(tag, {}).get("Value") or [None])[0]


def _create(sandbox: SandboxServer, uid: str, **replace: dict[str, Any]) -> None:
    """A new SCHEDULED workitem for today (Create, PS3.18 11.4): a copy of Müller's item with
    ``replace`` (tag -> attribute object; ``{}`` removes the attribute)."""
    item = dict(workitems(sandbox.state)[workitem_uid("enc-muller")])
    for tag in ("00080018", "00741000", "00404010", "00081195", "00741002", "00741216"):
        item.pop(tag, None)
    for tag, element in replace.items():
        if element:
            item[tag] = element
        else:
            item.pop(tag, None)
    body = json.dumps([item], sort_keys=True)
    created = httpx.post(f"{_base(sandbox)}/workitems?{uid}", content=body, headers=MEDIA)
    assert created.status_code == 201, created.headers.get("warning")


def _upload_and_deliver(client: TestClient, context_id: str, capture_id: str) -> dict[str, Any]:
    upload = client.post(
        "/api/v1/captures",
        data={"capture_id": capture_id, "context_id": context_id},
        files={"photo": ("photo.jpg", PHOTO, "image/jpeg")},
    )
    assert upload.status_code == 202, upload.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/api/v1/captures/{capture_id}").json()
        if body["status"] == "verified":
            return body
        time.sleep(0.05)
    raise AssertionError(f"{capture_id} was not verified")


# --- 1. completion carries the retrieval sequences (PS3.3 Table 10-3b) -------------------------


def test_an_output_item_without_a_retrieval_sequence_is_refused_and_ours_pass(
    sandbox: SandboxServer,
) -> None:
    """Issue 19, 1: the Update we used to send (no (0040,E021)-(0040,E025)) is a 400; the
    one we send now carries WADO-RS and DICOM retrieval and the item is COMPLETED."""
    uid = workitem_uid("enc-smith-a")
    produced = [ProducedInstance("1.2.3", "1.2.3.4", "1.2.3.4.5")]
    with WorklistClient(_base(sandbox)) as worklist:
        transaction = worklist.claim(uid)
        current = worklist._retrieve(uid)
        old = completion_update(current, produced, Retrieval(wado_rs_base="http://x"), None)
        performed = old.UnifiedProcedureStepPerformedProcedureSequence[0]
        del performed.OutputInformationSequence[0].WADORSRetrievalSequence
        refused = httpx.post(
            f"{_base(sandbox)}/workitems/{uid}?{transaction}", content=to_json(old), headers=MEDIA
        )
        assert refused.status_code == 400  # PS3.18 11.6.3.1: the dataset did not conform
        assert "(0040,E021)-(0040,E025)" in refused.headers["warning"]

        retrieval = Retrieval(wado_rs_base="https://pacs.test/dicom-web/", ae_title="PACS_AE")
        worklist.complete(uid, transaction, produced, retrieval)
    item = _item(sandbox, uid)
    assert _value(item, "00741000") == "COMPLETED"
    output = _value(_value(item, "00741216"), "00404033")
    assert _value(_value(output, "0040E025"), "00081190") == (
        "https://pacs.test/dicom-web/studies/1.2.3/series/1.2.3.4"
    )
    assert _value(_value(output, "0040E021"), "00080054") == "PACS_AE"


def test_completion_through_dicomweb_names_a_wado_rs_url_that_retrieves_the_photo(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Issue 19, 1: with a DICOMweb archive the Retrieve URL is the archive's WADO-RS series,
    and that URL (asked of Orthanc itself) returns the photo's metadata."""
    uid = workitem_uid("enc-ngata")
    with OrthancServer(tmp_path / "orthanc") as orthanc:
        settings = _settings(tmp_path / "api", sandbox, dicomweb_url=orthanc.base_url)
        app = create_app(settings)
        app.include_router(worklist_routes.router, prefix="/api/v1")
        with TestClient(app) as client:
            context_id = client.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
            verified = _upload_and_deliver(client, context_id, "i19-wado")
            done = client.post(f"/api/v1/worklist/contexts/{context_id}/complete")
            assert done.status_code == 200, done.text
        output = _value(_value(_item(sandbox, uid), "00741216"), "00404033")
        url = _value(_value(output, "0040E025"), "00081190")
        assert url == (
            f"{orthanc.base_url}/studies/{verified['study_uid']}/series/{verified['series_uid']}"
        )
        metadata = httpx.get(f"{url}/metadata", auth=orthanc.auth, timeout=30)
        assert metadata.status_code == 200, metadata.text
        sop_uids = [_value(ds, "00080018") for ds in metadata.json()]
        assert sop_uids == [verified["sop_instance_uid"]]


# --- 2. a second device's claim; completed and canceled items ----------------------------------


def test_a_claim_of_an_item_in_progress_completed_or_canceled_says_why_without_trying(
    phone: TestClient, sandbox: SandboxServer
) -> None:
    """Issue 19, 2 and 3: the phone gets 409 with the case (``code``), and no change-state is
    sent that the server would refuse (our own Retrieve showed the state)."""
    taken, completed, canceled = (
        workitem_uid(e) for e in ("enc-muller", "enc-smith-a", "enc-ngata")
    )
    produced = [ProducedInstance("1.2.3", "1.2.3.4", "1.2.3.4.5")]
    with WorklistClient(_base(sandbox)) as other_device:
        other_device.claim(taken)
        done = other_device.claim(completed)
        other_device.complete(completed, done, produced, Retrieval(ae_title="PACS"))
        released = other_device.claim(canceled)
        other_device.release(canceled, released)
    before = list(calls(sandbox.state))
    answers = {
        uid: phone.post(f"/api/v1/worklist/{uid}/claim") for uid in (taken, completed, canceled)
    }
    assert {uid: (a.status_code, a.json()["code"]) for uid, a in answers.items()} == {
        taken: (409, "workitem-taken"),
        completed: (409, "workitem-completed"),
        canceled: (409, "workitem-canceled"),
    }
    assert "already being photographed on another device" in answers[taken].json()["detail"]
    assert "already completed" in answers[completed].json()["detail"]
    assert [c for c in calls(sandbox.state)[len(before) :] if c[0] == "state"] == []


def test_a_faster_claimer_means_taken_whether_the_server_answers_400_or_409(
    sandbox: SandboxServer,
) -> None:
    """Issue 19, 2: between our Retrieve and our claim another device claimed the item. The
    sandbox, like Microsoft's service, answers 400 "The Transaction UID is incorrect." (PS3.4
    Table CC.1.1-2, C301); dcm4chee answers 409. Both are "taken"."""
    uid = workitem_uid("enc-muller")
    with WorklistClient(_base(sandbox)) as late, WorklistClient(_base(sandbox)) as fast:
        seen = late.get(uid)  # SCHEDULED when we looked
        fast.claim(uid)
        with pytest.raises(WorkitemTaken):
            late.claim(uid, seen)
    assert [c for c in calls(sandbox.state) if c[:2] == ("state", uid)] == [
        ("state", uid, "IN PROGRESS"),
        ("state", uid, "IN PROGRESS"),
    ]

    # dcm4chee's answer (409, UPSAlreadyInProgress): a server the sandbox cannot be made into.
    state = {"now": "SCHEDULED"}

    def dcm4chee(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            state["now"] = "IN PROGRESS"  # the other device got there first
            return httpx.Response(409, headers={"Warning": "299 dcm4chee: UPS already in progress"})
        item = {
            "00080018": {"vr": "UI", "Value": [uid]},
            "00741000": {"vr": "CS", "Value": [state["now"]]},
        }
        return httpx.Response(200, json=[item])

    http = httpx.Client(transport=httpx.MockTransport(dcm4chee))
    with (
        WorklistClient("http://dcm4chee.test/rs", client=http) as worklist,
        pytest.raises(WorkitemTaken),
    ):
        worklist.claim(uid)


# --- 3. issuers by meaning -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (Issuer(universal_id=MRN_OID), Issuer("EPI", MRN_OID), True),  # OID alone vs EPI + OID
        (Issuer(universal_id=MRN_OID), Issuer(local_namespace=MRN_OID), True),  # OID as namespace
        (Issuer(universal_id=MRN_OID), Issuer(local_namespace=data.MRN_SYSTEM), True),  # urn:oid:
        (Issuer(data.MRN_SYSTEM, MRN_OID), Issuer(universal_id=MRN_OID), True),  # sandbox form
        (Issuer("EPI"), Issuer("EPI", MRN_OID), True),  # the same local name, no second OID
        (Issuer("EPI", MRN_OID), Issuer("EPI", "2.16.840.1.113883.3.9999.7"), False),  # 2 OIDs
        (Issuer("EPI"), Issuer("CERNER"), False),  # two local names
        (Issuer("EPI"), Issuer(universal_id=MRN_OID), False),  # a name vs an OID: unproven
        (None, Issuer(universal_id=MRN_OID), False),  # an issuer on one side only
        (None, None, True),
    ],
)
def test_issuers_are_compared_by_meaning(a: Issuer | None, b: Issuer | None, same: bool) -> None:
    """Issue 19, 3 and deliver 2 (docs/conformance.md, "Issuer of Patient ID")."""
    assert same_authority(a, b) is same
    assert same_authority(b, a) is same


@pytest.fixture
def ehr_phone(tmp_path: Path, sandbox: SandboxServer) -> Iterator[TestClient]:
    registration = EhrRegistration(
        iss=sandbox.fhir_base,
        client_id="capture-i19",
        scopes="launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs",
        mrn_system=data.MRN_SYSTEM,
    )
    settings = _settings(
        tmp_path, sandbox, public_url=APP, cookie_secure=False, ehrs=[registration]
    )
    app = create_app(settings)
    app.include_router(worklist_routes.router, prefix="/api/v1")
    with TestClient(app, base_url=APP) as client:
        yield client


def _hd(namespace: str | None, universal: str | None, kind: str = "ISO") -> dict[str, Any]:
    """Issuer of Patient ID (0010,0021) and its Qualifiers Sequence (0010,0024), as given."""
    out: dict[str, Any] = {"00100021": {"vr": "LO", "Value": [namespace]} if namespace else {}}
    qualifier = {
        "00400032": {"vr": "UT", "Value": [universal]},
        "00400033": {"vr": "CS", "Value": [kind]},
    }
    out["00100024"] = {"vr": "SQ", "Value": [qualifier]} if universal else {}
    return out


def test_the_launched_patient_claims_their_own_item_whatever_form_its_issuer_takes(
    ehr_phone: TestClient, sandbox: SandboxServer
) -> None:
    """Issue 19, 3: Nurse Nina launched for Müller claims Müller's items with the issuer as
    the sandbox writes it, as "EPI" + OID, as the bare OID in (0010,0021), as an urn:oid:
    Universal Entity ID; an item of another authority is refused (403)."""
    launch_from_ehr(ehr_phone, sandbox, "enc-muller")
    forms = {
        "1.2.826.0.1.3680043.10.1.191": _hd("EPI", MRN_OID),
        "1.2.826.0.1.3680043.10.1.192": _hd(MRN_OID, None),
        "1.2.826.0.1.3680043.10.1.193": _hd(None, data.MRN_SYSTEM, "URI"),
    }
    for uid, issuer in forms.items():
        _create(sandbox, uid, **issuer)
    for uid in [workitem_uid("enc-muller"), *forms]:
        claimed = ehr_phone.post(f"/api/v1/worklist/{uid}/claim")
        assert claimed.status_code == 201, (uid, claimed.text)
    other = "1.2.826.0.1.3680043.10.1.194"
    _create(sandbox, other, **_hd("EPI", "2.16.840.1.113883.3.9999.7"))
    refused = ehr_phone.post(f"/api/v1/worklist/{other}/claim")
    assert refused.status_code == 403
    assert _value(_item(sandbox, other), "00741000") == "SCHEDULED"


# --- 4. the whole name --------------------------------------------------------------------------


def test_the_middle_name_reaches_the_archive(
    phone: TestClient, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Issue 19, 4: "Müller^Zoë^Ann" on the worklist is "Müller^Zoë^Ann" in the archive."""
    uid = "1.2.826.0.1.3680043.10.1.195"
    _create(sandbox, uid, **{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Zoë^Ann"}]}})
    claimed = phone.post(f"/api/v1/worklist/{uid}/claim").json()
    assert claimed["patient"]["name"] == {"family": "Müller", "given": "Zoë", "middle": "Ann"}
    verified = _upload_and_deliver(phone, claimed["context_id"], "i19-name")
    archive = FileSet(tmp_path / "archive" / "DICOMDIR")
    (instance,) = archive.find(SOPInstanceUID=verified["sop_instance_uid"])
    assert str(pydicom.dcmread(instance.path).PatientName) == "Müller^Zoë^Ann"
    assert [w["name"] for w in phone.get("/api/v1/worklist").json() if w["uid"] == uid] == []


# --- 5. DICOM JSON in tag order (PS3.18 F.2.2) --------------------------------------------------


def _in_tag_order(node: Any) -> bool:
    if isinstance(node, list):
        return all(_in_tag_order(n) for n in node)
    if not isinstance(node, dict):
        return True
    tags = [k for k in node if len(k) == 8]
    return tags == sorted(tags) and all(_in_tag_order(v) for v in node.values())


def test_dicom_json_is_in_tag_order_inside_sequences_and_the_server_refuses_other_orders(
    sandbox: SandboxServer,
) -> None:
    """Issue 19, 5: pydicom keeps insertion order; ``to_json`` sorts every level, and the
    sandbox refuses a sequence item whose attributes are out of order."""
    item = Dataset()
    item.TypeOfInstances = "DICOM"  # (0040,E020) inserted before (0020,000E)
    item.SeriesInstanceUID = "1.2.3.4"
    unsorted = Dataset()
    unsorted.UnifiedProcedureStepPerformedProcedureSequence = [Dataset()]
    unsorted.UnifiedProcedureStepPerformedProcedureSequence[0].OutputInformationSequence = [item]
    naive = json.dumps([unsorted.to_json_dict()])
    assert not _in_tag_order(json.loads(naive))
    assert _in_tag_order(json.loads(to_json(unsorted)))

    uid = workitem_uid("enc-smith-a")
    with WorklistClient(_base(sandbox)) as worklist:
        transaction = worklist.claim(uid)
    url = f"{_base(sandbox)}/workitems/{uid}?{transaction}"
    refused = httpx.post(url, content=naive, headers=MEDIA)
    assert refused.status_code == 400
    assert "not in ascending tag order" in refused.headers["warning"]
    assert "F.2.2" in refused.headers["warning"]
    assert _in_tag_order(httpx.get(f"{_base(sandbox)}/workitems/{uid}").json())


# --- release, and a refused completion retried ------------------------------------------------


def test_a_claimed_item_is_released_with_the_canceled_final_state(
    phone: TestClient, sandbox: SandboxServer
) -> None:
    """Issue 19, deliver 3: released from the phone, the workitem is CANCELED with the
    cancellation time and a CID 9300 reason (PS3.4 Table CC.2.5-3 "X"): "incorrect worklist
    entry selected" for the wrong patient, else "rescheduling recommended"."""
    for encounter, body, code in (
        ("enc-muller", {"reason": "wrong-patient"}, "110514"),
        ("enc-smith-a", {}, "110529"),
    ):
        uid = workitem_uid(encounter)
        context_id = phone.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
        released = phone.post(f"/api/v1/worklist/contexts/{context_id}/cancel", json=body)
        assert released.status_code == 204, released.text
        item = _item(sandbox, uid)
        assert _value(item, "00741000") == "CANCELED"
        progress = _value(item, "00741002")
        reason = _value(progress, "0074100E")
        assert (_value(reason, "00080100"), _value(reason, "00080102")) == (code, "DCM")
        assert _value(progress, "00404052") and "discontinued" in _value(progress, "00741238")
        again = phone.post(f"/api/v1/worklist/contexts/{context_id}/cancel", json=body)
        assert again.status_code == 409 and "given back already" in again.json()["detail"]
    assert uid not in [w["uid"] for w in phone.get("/api/v1/worklist").json()]


def test_a_refused_completion_tells_the_phone_why_and_completes_once_the_cause_is_fixed(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Issue 19, deliver 3: an item without Scheduled Workitem Code Sequence cannot meet
    COMPLETED's Final State (Performed Workitem Code Sequence, "P"): the phone reads "the
    worklist server refused the completion: <reason>"; once the scheduler adds the code, the
    next request completes it."""
    uid = "1.2.826.0.1.3680043.10.1.196"
    _create(sandbox, uid, **{"00404018": {}})
    app = create_app(_settings(tmp_path, sandbox, worker_enabled=False, retry_base_seconds=30))
    app.include_router(worklist_routes.router, prefix="/api/v1")
    with TestClient(app) as client:
        context_id = client.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
        upload = client.post(
            "/api/v1/captures",
            data={"capture_id": "i19-refused", "context_id": context_id},
            files={"photo": ("p.jpg", PHOTO, "image/jpeg")},
        )
        assert upload.status_code == 202, upload.text
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        while runtime.worker.run_once():
            pass
        refused = client.post(f"/api/v1/worklist/contexts/{context_id}/complete")
        assert refused.status_code == 502
        body = refused.json()
        assert body["code"] == "worklist-refused"
        assert body["detail"].startswith("the worklist server refused the completion: 409")
        assert "PerformedWorkitemCodeSequence (0040,4019)" in body["reason"]
        assert _value(_item(sandbox, uid), "00741000") == "IN PROGRESS"

        code = workitems(sandbox.state)[workitem_uid("enc-muller")]["00404018"]
        workitems(sandbox.state)[uid]["00404018"] = code  # the scheduler fixes the item
        done = client.post(f"/api/v1/worklist/contexts/{context_id}/complete")
        assert done.status_code == 200, done.text
    assert _value(_item(sandbox, uid), "00741000") == "COMPLETED"


def test_workitem_keeps_every_name_component() -> None:
    """Issue 19, 4: the reader keeps all five PN components."""
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3"
    ds.PatientID = "7"
    ds.PatientName = "Müller^Zoë^Ann^Dr.^III"
    name = Workitem.from_dataset(ds).to_context().patient.name
    assert name is not None
    assert name.to_name().dicom() == "Müller^Zoë^Ann^Dr.^III"


def test_a_claim_left_behind_is_given_back_and_a_finished_one_is_not(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Issue 19, deliver 3 ("nothing is left IN PROGRESS without a way out"): a claim never
    finished (the phone was closed) is CANCELED after ``worklist_abandon_hours``, with its
    reason; one whose completion was asked for is left to the completion queue."""
    left, finished = workitem_uid("enc-muller"), workitem_uid("enc-smith-a")
    settings = _settings(tmp_path, sandbox, worker_enabled=False, worklist_abandon_hours=1)
    app = create_app(settings)
    app.include_router(worklist_routes.router, prefix="/api/v1")
    with TestClient(app) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        client.post(f"/api/v1/worklist/{left}/claim")
        context_id = client.post(f"/api/v1/worklist/{finished}/claim").json()["context_id"]
        upload = client.post(
            "/api/v1/captures",
            data={"capture_id": "i19-finished", "context_id": context_id},
            files={"photo": ("p.jpg", PHOTO, "image/jpeg")},
        )
        assert upload.status_code == 202
        assert client.post(f"/api/v1/worklist/contexts/{context_id}/complete").status_code == 202
        completion = runtime.worklist_completion
        assert completion.release_abandoned() == 0  # an hour has not passed
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        assert completion.release_abandoned(now=later) == 1
        assert completion.release_abandoned(now=later) == 0  # once
    progress = _value(_item(sandbox, left), "00741002")
    assert _value(_item(sandbox, left), "00741000") == "CANCELED"
    assert "left open on capture" in _value(progress, "00741238")
    assert _value(_value(progress, "0074100E"), "00080100") == "110529"
    assert _value(_item(sandbox, finished), "00741000") == "IN PROGRESS"
