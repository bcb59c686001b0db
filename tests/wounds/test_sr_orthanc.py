"""The wound's SR reaches a real Orthanc through the outbox and reads back right (issue 16).

The photo is archived in Orthanc (DICOMweb plugin) and verified, so its spooled bytes are gone
and the server measures it on the pixels it retrieves from Orthanc (WADO-RS). The SR it makes
is STOWed and verified by the outbox worker; the test then retrieves it over WADO-RS with its
own HTTP client and multipart reading, and checks it with independent oracles: dciodvfy
(Clunie's validator), DCMTK's dsrdump, and highdicom's SR reader (numbers, outline, photo).
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import highdicom as hd
import httpx
import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.config import Settings
from capture_api.encode import vl_photo
from capture_api.store import CaptureStatus
from capture_api.store import captures as capture_rows
from tests.conftest import dciodvfy_errors, require_tool
from tests.orthanc import OrthancServer
from tests.wounds.conftest import until, upload_verified, wound_phantom

FOOT = "56459004"  # SCT Foot (CID 4031)


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def client(orthanc: OrthancServer, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "capture",
        dicomweb_url=orthanc.base_url,
        poll_seconds=0.05,
        retry_base_seconds=0.05,
        retry_max_seconds=0.5,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _wado_instance(base: str, study: str, series: str, sop: str) -> bytes:
    """WADO-RS Retrieve Instance, multipart read here (not with capture's own client)."""
    answer = httpx.get(
        f"{base}/studies/{study}/series/{series}/instances/{sop}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    boundary = re.search(r'boundary="?([^";]+)"?', answer.headers["Content-Type"])
    assert boundary is not None
    part = answer.content.split(b"--" + boundary.group(1).encode())[1]
    body = part.split(b"\r\n\r\n", 1)[1]
    return body[:-2] if body.endswith(b"\r\n") else body


def test_the_sr_is_stowed_verified_and_valid_in_orthanc(
    client: TestClient, orthanc: OrthancServer, tmp_path: Path
) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    phantom = wound_phantom()
    context = client.post("/api/v1/contexts", json={"patient": {"id": "P-ORTHANC-WOUND"}})
    context_id = context.json()["context_id"]
    upload_verified(
        client,
        context_id,
        "ow-1",
        phantom.jpeg,
        body_site=FOOT,
        laterality="R",
        sensitivity="restricted",
    )
    photo = capture_rows.get(runtime.engine, "ow-1")
    assert photo is not None and photo.spool_deleted_at is not None

    tracing = [[float(x), float(y)] for x, y in phantom.tracing_px]
    answer = client.post("/api/v1/captures/ow-1/measurements", json={"outline": tracing})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert abs(body["area_cm2"] - phantom.area_cm2) / phantom.area_cm2 < 0.05

    def verified() -> bool:
        row = capture_rows.get(runtime.engine, body["sr_capture_id"])
        return row is not None and row.status == CaptureStatus.VERIFIED

    until(verified, "the SR verified in Orthanc", seconds=60)
    assert body["sr_sop_instance_uid"] in orthanc.sop_uids()
    sr_row = capture_rows.get(runtime.engine, body["sr_capture_id"])
    assert sr_row is not None and sr_row.stow_requests == 1

    data = _wado_instance(
        orthanc.base_url,
        photo.study_uid or "",
        sr_row.series_uid or "",
        body["sr_sop_instance_uid"],
    )
    sr_file = tmp_path / "sr.dcm"
    sr_file.write_bytes(data)
    assert dciodvfy_errors(sr_file) == []
    dumped = subprocess.run(
        [require_tool("dsrdump"), str(sr_file)], capture_output=True, text=True, check=False
    )
    assert dumped.returncode == 0 and "Imaging Measurement Report" in dumped.stdout

    report = pydicom.dcmread(io.BytesIO(data))
    assert report.PatientID == "P-ORTHANC-WOUND"
    assert report.StudyInstanceUID == photo.study_uid
    block = report.private_block(vl_photo.SENSITIVITY_GROUP, vl_photo.SENSITIVITY_CREATOR)
    assert block[vl_photo.CONFIDENTIALITY_ELEMENT].value == "R"  # as restricted as the photo

    document = hd.sr.srread(sr_file)
    assert isinstance(document.content, hd.sr.MeasurementReport)
    (group,) = document.content.get_planar_roi_measurement_groups()
    values = {m.name.value: m.value for m in group.get_measurements()}
    assert values["42798000"] == pytest.approx(body["area_cm2"], abs=1e-3)
    assert values["410668003"] == pytest.approx(body["length_mm"], abs=1e-2)
    assert values["103355008"] == pytest.approx(body["width_mm"], abs=1e-2)
    assert group.tracking_uid == body["tracking_uid"]
    region = group.roi
    assert region is not None
    assert np.allclose(region.value[:-1], np.array(body["outline"]), atol=0.01)
    reference = region.ContentSequence[0].ReferencedSOPSequence[0]
    assert reference.ReferencedSOPInstanceUID == photo.sop_instance_uid
    (site,) = group.finding_sites
    assert site.value.value == FOOT
