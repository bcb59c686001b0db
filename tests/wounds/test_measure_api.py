"""The measurement API end to end on the embedded archive (issue 16).

Oracle: phantom photos of known geometry (tests/measure/phantom.py). The photo is uploaded,
encoded and verified (its spooled bytes are purged, so the server must read it back from the
archive); the tracing is sent; the server's stored area must match the phantom's truth. The
SR the server queues is delivered and verified by the real outbox worker and read back.
"""

from __future__ import annotations

import cv2
import numpy as np
from fastapi.testclient import TestClient

from capture_api.deliver import InstanceRef
from capture_api.store import CaptureStatus, ObjectKind
from capture_api.store import captures as capture_rows
from tests.conftest import phone_jpeg
from tests.wounds.conftest import until, upload_verified, wound_phantom

HEEL = "84607009"  # SCT Skin of heel (CID 4029)


def _context(client: TestClient, patient: str = "P-WOUND") -> str:
    answer = client.post("/api/v1/contexts", json={"patient": {"id": patient}})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["context_id"])


def _tracing() -> list[list[float]]:
    return [[float(x), float(y)] for x, y in wound_phantom().tracing_px]


def test_a_traced_wound_is_measured_archived_and_listed(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    phantom = wound_phantom()
    context_id = _context(client)
    upload_verified(client, context_id, "w-1", phantom.jpeg, body_site=HEEL, laterality="L")
    photo = capture_rows.get(runtime.engine, "w-1")
    assert photo is not None and photo.spool_deleted_at is not None  # read back from the archive

    answer = client.post(
        "/api/v1/captures/w-1/measurements", json={"outline": _tracing(), "phone_area_cm2": 7.9}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["method"] == "marker-homography" and body["perspective_corrected"] is True
    assert abs(body["area_cm2"] - phantom.area_cm2) / phantom.area_cm2 < 0.05
    assert abs(body["length_mm"] - phantom.length_mm) < 2.0
    assert abs(body["width_mm"] - phantom.width_mm) < 2.0
    assert abs(body["tilt_deg"] - phantom.pose.tilt_deg) < 5.0
    assert body["phone_area_cm2"] == 7.9  # kept for comparison, never the stored number
    assert body["tracking_id"] == "wound, Skin of heel, left"

    again = client.post(
        "/api/v1/captures/w-1/measurements", json={"outline": _tracing(), "phone_area_cm2": 7.9}
    )
    assert again.status_code == 201 and again.json()["measurement_id"] == body["measurement_id"]

    sr_row_id = body["sr_capture_id"]

    def sr_verified() -> bool:
        row = capture_rows.get(runtime.engine, sr_row_id)
        return row is not None and row.status == CaptureStatus.VERIFIED

    until(sr_verified, "the SR verified")
    sr_row = capture_rows.get(runtime.engine, sr_row_id)
    assert sr_row is not None and sr_row.object_kind == ObjectKind.SR.value
    assert sr_row.stow_requests == 1
    sr = runtime.archive.header(
        InstanceRef(sr_row.study_uid or "", sr_row.series_uid or "", body["sr_sop_instance_uid"])
    )
    assert sr is not None and sr.Modality == "SR"
    assert sr.PatientID == "P-WOUND" and sr.StudyInstanceUID == photo.study_uid
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    referenced = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == photo.sop_instance_uid

    listed = client.get("/api/v1/captures/w-1/measurements").json()
    assert [m["measurement_id"] for m in listed] == [body["measurement_id"]]

    # Measured again (a corrected tracing): the new one is current, the first superseded,
    # and each has its own SR (the archive keeps both; the trend counts the photo once).
    shifted = [[x + 0.5, y] for x, y in _tracing()]
    second = client.post("/api/v1/captures/w-1/measurements", json={"outline": shifted}).json()
    assert second["measurement_id"] != body["measurement_id"]
    assert second["sr_sop_instance_uid"] != body["sr_sop_instance_uid"]
    listed = client.get("/api/v1/captures/w-1/measurements").json()
    assert [(m["measurement_id"], m["status"]) for m in listed] == [
        (second["measurement_id"], "recorded"),
        (body["measurement_id"], "superseded"),
    ]
    photos = client.get("/api/v1/captures", params={"context_id": context_id}).json()
    assert [p["capture_id"] for p in photos] == ["w-1"]  # the SR is not a photo


def test_a_photo_without_a_marker_is_refused_with_the_reason_and_nothing_is_written(
    client: TestClient,
) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    context_id = _context(client, "P-NOMARK")
    upload_verified(client, context_id, "plain-1", phone_jpeg(800, 600))
    square = [[100.0, 100.0], [300.0, 100.0], [300.0, 300.0], [100.0, 300.0]]
    answer = client.post("/api/v1/captures/plain-1/measurements", json={"outline": square})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "no-marker"
    assert "marker" in answer.json()["detail"]
    assert client.get("/api/v1/captures/plain-1/measurements").json() == []
    assert capture_rows.for_context(runtime.engine, context_id)[0].id == "plain-1"

    ruler = {"start": [100, 500], "end": [500, 500], "distance_mm": 40}
    measured = client.post(
        "/api/v1/captures/plain-1/measurements", json={"outline": square, "ruler": ruler}
    )
    assert measured.status_code == 201, measured.text
    body = measured.json()
    assert body["method"] == "ruler-two-point" and body["perspective_corrected"] is False
    assert abs(body["area_cm2"] - 4.0) < 1e-6  # 200 px = 20 mm a side
    assert any("tilt is not corrected" in note for note in body["notes"])


def test_bad_outlines_are_refused_with_a_clear_message(client: TestClient) -> None:
    context_id = _context(client, "P-BAD")
    upload_verified(client, context_id, "bad-1", wound_phantom().jpeg)
    cases = {
        "outline-too-few-points": [[10, 10], [50, 50]],
        "outline-self-intersecting": [[100, 100], [300, 300], [300, 100], [100, 300]],
        "outline-outside-image": [[100, 100], [5000, 100], [100, 300]],
    }
    for code, outline in cases.items():
        answer = client.post("/api/v1/captures/bad-1/measurements", json={"outline": outline})
        assert answer.status_code == 422, (code, answer.text)
        assert answer.json()["code"] == code
    assert client.get("/api/v1/captures/bad-1/measurements").json() == []


def test_snap_refines_a_rough_tracing_towards_the_edge(client: TestClient) -> None:
    phantom = wound_phantom()
    context_id = _context(client, "P-SNAP")
    upload_verified(client, context_id, "snap-1", phantom.jpeg)
    centre = phantom.outline_px.mean(axis=0)
    rough = centre + (phantom.outline_px - centre) * 1.12  # traced 12 % too wide
    answer = client.post(
        "/api/v1/captures/snap-1/snap", json={"outline": rough[::3].round(1).tolist()}
    )
    assert answer.status_code == 200, answer.text
    snapped = np.array(answer.json()["outline"])

    def area(p: np.ndarray) -> float:
        x, y = p[:, 0], p[:, 1]
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)

    truth = area(phantom.outline_px)
    assert abs(area(snapped) - truth) < abs(area(rough) - truth) / 2


def test_a_document_row_cannot_be_measured_and_unknown_ids_are_404(client: TestClient) -> None:
    answer = client.post("/api/v1/captures/nope/measurements", json={"outline": [[1, 1]] * 3})
    assert answer.status_code == 404
    assert client.get("/api/v1/captures/nope/measurements").status_code == 404


def test_calibration_and_image_let_the_phone_compute_numbers_while_tracing(
    client: TestClient,
) -> None:
    phantom = wound_phantom()
    context_id = _context(client, "P-CAL")
    upload_verified(client, context_id, "cal-1", phantom.jpeg)
    found = client.get("/api/v1/captures/cal-1/calibration")
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["method"] == "marker-homography" and body["image_size"] == [1600, 1200]
    matrix = np.array(body["image_to_plane"])
    points = np.column_stack([phantom.tracing_px, np.ones(len(phantom.tracing_px))]) @ matrix.T
    plane = points[:, :2] / points[:, 2:]
    x, y = plane[:, 0], plane[:, 1]
    area_cm2 = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 200
    assert abs(area_cm2 - phantom.area_cm2) / phantom.area_cm2 < 0.05

    image = client.get("/api/v1/captures/cal-1/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "no-store"
    decoded = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape[:2] == (1200, 1600)

    upload_verified(client, context_id, "cal-plain", phone_jpeg(640, 480))
    refused = client.get("/api/v1/captures/cal-plain/calibration")
    assert refused.status_code == 422 and refused.json()["code"] == "no-marker"

    upload_verified(client, context_id, "cal-private", phantom.jpeg, sensitivity="restricted")
    assert client.get("/api/v1/captures/cal-private/image").status_code == 409
