"""Taking a photo back against a real Orthanc (issue 18): the KOS rejection note, once.

A photo is sent to patient A and verified in Orthanc; rejecting it queues a Key Object
Selection document that the outbox stores and verifies in Orthanc like a photo. The note is
checked by independent readers: dciodvfy (David Clunie's validator), and pydicom on the bytes
Orthanc itself serves (its native REST API). Double taps, unknown reasons and rejections while
the archive is down are covered here too.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from pydicom import Dataset, dcmread

from capture_api.api.app import create_app
from capture_api.store import CaptureStatus, captures, rejections
from capture_api.store.records import AuditEventRecord
from tests.audit.conftest import audit_rows, settings_for
from tests.conftest import dciodvfy_errors, phone_jpeg
from tests.correct.conftest import (
    PATIENT_A,
    engine_of,
    open_context,
    send_photo,
    wait_status,
)
from tests.orthanc import OrthancServer


def orthanc_file(orthanc: OrthancServer, sop_uid: str) -> Dataset:
    """The stored instance as Orthanc serves it (native REST: /tools/lookup, /file)."""
    found = httpx.post(f"{orthanc.rest_url}/tools/lookup", content=sop_uid, auth=orthanc.auth)
    found.raise_for_status()
    (hit,) = [h for h in found.json() if h["Type"] == "Instance"]
    data = httpx.get(f"{orthanc.rest_url}/instances/{hit['ID']}/file", auth=orthanc.auth)
    data.raise_for_status()
    return dcmread(io.BytesIO(data.content))


def _rejects(client: TestClient, sop: str) -> list[AuditEventRecord]:
    """The domain events (the requests' own rows carry their method)."""
    return [
        r
        for r in audit_rows(client)
        if r.action == "reject" and r.sop_instance_uid == sop and r.method is None
    ]


def test_a_wrong_patient_photo_is_rejected_once_with_a_valid_kos_in_its_study(
    client: TestClient, orthanc: OrthancServer, tmp_path: Path
) -> None:
    context_a = open_context(client, PATIENT_A)
    photo = send_photo(client, context_a, "iocm-1")
    sop = photo["sop_instance_uid"]

    first = client.post(
        "/api/v1/captures/iocm-1/rejection", json={"reason": "wrong-patient", "comment": "bed 4"}
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["reason_code"] == "113037" and body["sop_instance_uid"] == sop
    again = client.post("/api/v1/captures/iocm-1/rejection", json={"reason": "wrong-patient"})
    assert (
        again.status_code == 200
        and again.json()["kos_sop_instance_uid"] == body["kos_sop_instance_uid"]
    )
    row = rejections.get(engine_of(client), "iocm-1")
    assert row is not None
    wait_status(client, row.kos_capture_id, "verified")
    kos_row = captures.get(engine_of(client), row.kos_capture_id)
    assert kos_row is not None and kos_row.stow_requests == 1
    assert kos_row.status == CaptureStatus.VERIFIED

    kos_uid = body["kos_sop_instance_uid"]
    assert {sop, kos_uid} <= orthanc.sop_uids()
    kos = orthanc_file(orthanc, kos_uid)
    kos.save_as(tmp_path / "kos.dcm")
    assert dciodvfy_errors(tmp_path / "kos.dcm") == []
    assert kos.Modality == "KO"
    assert kos.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    title = kos.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("113037", "DCM")
    assert title.CodeMeaning == "Rejected for Patient Safety Reasons"
    # IOCM: in the rejected instance's study, same patient, referencing it with its series.
    assert kos.StudyInstanceUID == photo["study_uid"] and kos.PatientID == PATIENT_A["id"]
    assert kos.SeriesInstanceUID != photo["series_uid"]
    (study,) = kos.CurrentRequestedProcedureEvidenceSequence
    assert study.StudyInstanceUID == photo["study_uid"]
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == photo["series_uid"]
    (instance,) = series.ReferencedSOPSequence
    assert instance.ReferencedSOPInstanceUID == sop
    referenced = [
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for item in kos.ContentSequence
        if item.ValueType == "IMAGE"
    ]
    assert referenced == [sop]

    (event,) = _rejects(client, sop)
    assert (event.outcome, event.balp_action, event.event_code) == ("success", "D", "110103")
    assert event.patient == PATIENT_A["id"] and "113037" in (event.detail or "")
    read = client.get("/api/v1/captures/iocm-1/rejection")
    assert read.status_code == 200 and read.json()["kos_status"] == "verified"

    # The views leave it out, though Orthanc (which does not act on a KOS) still lists it.
    priors = client.get(f"/api/v1/contexts/{context_a}/priors").json()
    assert sop not in {p["sop_instance_uid"] for p in priors}
    assert sop in orthanc.sop_uids()


def test_bad_requests_are_refused_in_words(client: TestClient) -> None:
    context_a = open_context(client, PATIENT_A)
    send_photo(client, context_a, "iocm-bad")
    unknown = client.post("/api/v1/captures/iocm-bad/rejection", json={"reason": "113099"})
    assert unknown.status_code == 422
    assert rejections.get(engine_of(client), "iocm-bad") is None
    missing = client.post("/api/v1/captures/nope/rejection", json={"reason": "quality"})
    assert missing.status_code == 404
    assert client.get("/api/v1/captures/iocm-bad/rejection").status_code == 404
    quality = client.post("/api/v1/captures/iocm-bad/rejection", json={"reason": "quality"})
    assert quality.status_code == 201 and quality.json()["reason_code"] == "113001"
    # Rejecting again, even naming another reason, is the first rejection.
    again = client.post("/api/v1/captures/iocm-bad/rejection", json={"reason": "wrong-patient"})
    assert again.status_code == 200 and again.json()["reason_code"] == "113001"


def test_a_rejection_while_the_archive_is_down_is_delivered_when_it_is_back(
    client: TestClient, orthanc: OrthancServer, tmp_path: Path
) -> None:
    context_a = open_context(client, PATIENT_A)
    photo = send_photo(client, context_a, "iocm-down")
    orthanc.stop()
    answer = client.post("/api/v1/captures/iocm-down/rejection", json={"reason": "quality"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["kos_status"] == "encoded"
    row = rejections.get(engine_of(client), "iocm-down")
    assert row is not None
    orthanc.start()
    wait_status(client, row.kos_capture_id, "verified")
    kos = orthanc_file(orthanc, row.kos_sop_instance_uid)
    kos.save_as(tmp_path / "kos-down.dcm")
    assert dciodvfy_errors(tmp_path / "kos-down.dcm") == []
    assert kos.ConceptNameCodeSequence[0].CodeValue == "113001"
    assert kos.StudyInstanceUID == photo["study_uid"] and kos.PatientID == PATIENT_A["id"]


def test_with_delete_rejected_on_orthanc_loses_the_instance_after_the_kos(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    settings = settings_for(
        tmp_path / "deleting",
        dicomweb_url=orthanc.base_url,
        retry_max_seconds=0.3,
        archive_delete_rejected=True,
    )
    with TestClient(create_app(settings)) as client:
        context_a = open_context(client, PATIENT_A)
        kept = send_photo(client, context_a, "iocm-kept")
        gone = send_photo(client, context_a, "iocm-gone", phone_jpeg(320, 240, seed=9))
        answer = client.post("/api/v1/captures/iocm-gone/rejection", json={"reason": "quality"})
        assert answer.status_code == 201
        kos_uid = answer.json()["kos_sop_instance_uid"]
        deadline = time.monotonic() + 30
        while gone["sop_instance_uid"] in orthanc.sop_uids():
            assert time.monotonic() < deadline, "the rejected instance is still in Orthanc"
            time.sleep(0.1)
        held = orthanc.sop_uids()
        assert kos_uid in held and kept["sop_instance_uid"] in held
        row = rejections.get(engine_of(client), "iocm-gone")
        assert row is not None and row.archive_removed_at is not None
        details = [r.detail for r in _rejects(client, gone["sop_instance_uid"])]
        assert any("deleted from the archive" in (d or "") for d in details)
