"""Re-filing a wrong patient's photo for the right patient, losslessly (issue 18, step 3).

Patient A's photo is rejected as of the wrong patient and re-filed to patient B's context:
the new instance in Orthanc has new SOP, series and study UIDs, B's demographics and the very
same JPEG bitstream (compared byte for byte on what Orthanc serves), passes dciodvfy, and the
trail names both patients. Re-filing to A again, a quality rejection and a second re-file to
another patient are refused in words.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydicom.encaps import generate_frames

from capture_api.store import rejections
from tests.audit.conftest import audit_rows
from tests.conftest import dciodvfy_errors
from tests.correct.conftest import (
    PATIENT_A,
    PATIENT_B,
    engine_of,
    open_context,
    send_photo,
    wait_status,
)
from tests.correct.test_reject_orthanc import orthanc_file
from tests.orthanc import OrthancServer

#: A camera photo with an ICC profile and EXIF orientation 6 (turned upright once on intake).
SAMPLE = Path("/work/shared/samples/photos/orientation/landscape_6.jpg")


def test_a_wrong_patient_photo_is_refiled_losslessly_with_both_patients_in_the_trail(
    client: TestClient, orthanc: OrthancServer, tmp_path: Path
) -> None:
    context_a = open_context(client, PATIENT_A)
    context_b = open_context(client, PATIENT_B)
    old = send_photo(client, context_a, "refile-src", SAMPLE.read_bytes())
    early = client.post(
        "/api/v1/captures/refile-src/rejection/refile", json={"context_id": context_b}
    )
    assert early.status_code == 409 and "reject" in early.json()["detail"]
    rejected = client.post(
        "/api/v1/captures/refile-src/rejection", json={"reason": "wrong-patient"}
    )
    assert rejected.status_code == 201, rejected.text

    same = client.post(
        "/api/v1/captures/refile-src/rejection/refile", json={"context_id": context_a}
    )
    assert same.status_code == 409 and "patient" in same.json()["detail"]
    answer = client.post(
        "/api/v1/captures/refile-src/rejection/refile", json={"context_id": context_b}
    )
    assert answer.status_code == 202, answer.text
    new = answer.json()
    again = client.post(
        "/api/v1/captures/refile-src/rejection/refile", json={"context_id": context_b}
    )
    assert again.status_code == 202 and again.json()["capture_id"] == new["capture_id"]
    other = open_context(client, {"id": "MRN-IOCM-C", "issuer": {"namespace": "HOSP"}})
    elsewhere = client.post(
        "/api/v1/captures/refile-src/rejection/refile", json={"context_id": other}
    )
    assert elsewhere.status_code == 409 and "already" in elsewhere.json()["detail"]
    wait_status(client, new["capture_id"], "verified")
    new = client.get(f"/api/v1/captures/{new['capture_id']}").json()

    for key in ("sop_instance_uid", "series_uid", "study_uid"):
        assert new[key] != old[key]
    assert new["context_id"] == context_b and new["body_site"] == old["body_site"]
    before = orthanc_file(orthanc, old["sop_instance_uid"])
    after = orthanc_file(orthanc, new["sop_instance_uid"])
    after.save_as(tmp_path / "refiled.dcm")
    assert dciodvfy_errors(tmp_path / "refiled.dcm") == []
    frame_before = next(generate_frames(before.PixelData, number_of_frames=1))
    frame_after = next(generate_frames(after.PixelData, number_of_frames=1))
    assert frame_after == frame_before  # the JPEG bitstream, byte for byte
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert after.ICCProfile == before.ICCProfile
    assert (after.PatientID, str(after.PatientName)) == (PATIENT_B["id"], "Right^Bert")
    assert after.PatientBirthDate == "19610203" and after.PatientSex == "M"
    assert after.AcquisitionDateTime[:14] == before.AcquisitionDateTime[:14]
    assert after.StudyInstanceUID == new["study_uid"]

    row = rejections.get(engine_of(client), "refile-src")
    assert row is not None and row.refiled_capture_id == new["capture_id"]
    assert (
        client.get("/api/v1/captures/refile-src/rejection").json()["refiled_capture_id"]
        == (new["capture_id"])
    )
    priors_a = client.get(f"/api/v1/contexts/{context_a}/priors").json()
    priors_b = client.get(f"/api/v1/contexts/{context_b}/priors").json()
    assert old["sop_instance_uid"] not in {p["sop_instance_uid"] for p in priors_a}
    assert [p["sop_instance_uid"] for p in priors_b] == [new["sop_instance_uid"]]

    refiles = [r for r in audit_rows(client) if r.action == "refile" and r.method is None]
    by_patient = {r.patient: r for r in refiles}
    assert set(by_patient) == {PATIENT_A["id"], PATIENT_B["id"]}
    assert old["sop_instance_uid"] in (by_patient[PATIENT_B["id"]].detail or "")
    assert new["capture_id"] in (by_patient[PATIENT_A["id"]].detail or "")
    for patient, wanted in ((PATIENT_A, {"D", "C"}), (PATIENT_B, {"C"})):
        bundle = client.get("/api/v1/audit", params={"patient": patient["id"]}).json()
        instance_events = {
            e["resource"]["action"]
            for e in bundle["entry"]
            if e["resource"]["type"]["code"] == "110103"
        }
        assert wanted <= instance_events, (patient["id"], instance_events)


def test_a_photo_rejected_for_quality_is_not_refiled(client: TestClient) -> None:
    context_a = open_context(client, PATIENT_A)
    context_b = open_context(client, PATIENT_B)
    send_photo(client, context_a, "refile-quality")
    client.post("/api/v1/captures/refile-quality/rejection", json={"reason": "quality"})
    refused = client.post(
        "/api/v1/captures/refile-quality/rejection/refile", json={"context_id": context_b}
    )
    assert refused.status_code == 409 and "quality" in refused.json()["detail"]
