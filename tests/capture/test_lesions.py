"""Lesions end to end: real uploads, the local archive, two capture installs on one archive.

A lesion pinned in one visit is the patient's in the next; its photos carry its identity, so
a fresh install (its own empty database) in front of the same archive finds it again; a
dermoscopic photo of it is its own SOP class and points to the visit's overview and close-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from pydicom.uid import VLPhotographicImageStorage

from capture_api.api.app import create_app
from capture_api.config import Settings
from capture_api.encode.dermoscopy import DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE
from tests.capture.test_timeline import _photo, _wait
from tests.conftest import dciodvfy_errors

CHEEK = "36141000"  # Skin of cheek (CID 4029), paired
BACK = "244111001"  # Skin of posterior surface of thorax, unpaired
PATIENT = {"id": "MRN-LES", "name": {"family": "Lee", "given": "Sam"}, "sex": "F"}
OTHER = {"id": "MRN-LES-2", "name": {"family": "Kay", "given": "Jo"}}


def _app(archive: Path, database: Path) -> TestClient:
    settings = Settings(
        data_dir=archive,
        database_url=SecretStr(f"sqlite:///{database}"),
        poll_seconds=0.05,
        retry_base_seconds=0.05,
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _app(tmp_path / "data", tmp_path / "first.db") as c:
        yield c


def _context(client: TestClient, admission: str, patient: dict[str, Any] = PATIENT) -> str:
    encounter = {"admission_id": admission, "description": f"Skin clinic {admission}"}
    response = client.post("/api/v1/contexts", json={"patient": patient, "encounter": encounter})
    assert response.status_code == 201, response.text
    return str(response.json()["context_id"])


def _pin(client: TestClient, context_id: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/contexts/{context_id}/lesions", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _lesions(client: TestClient, context_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/contexts/{context_id}/lesions")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    found: list[dict[str, Any]] = response.json()
    return found


def _photograph(
    client: TestClient, context_id: str, capture_id: str, lesion: str, **form: str
) -> dict[str, Any]:
    fields = {
        "capture_id": capture_id,
        "context_id": context_id,
        "body_site": CHEEK,
        "laterality": "L",
        "lesion": lesion,
        "captured_at": "2026-03-02T10:00:00+01:00",
    } | form
    response = client.post(
        "/api/v1/captures", data=fields, files={"photo": ("p.jpg", _photo(7), "image/jpeg")}
    )
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_lesions_are_the_patients_across_visits_and_installs(
    client: TestClient, tmp_path: Path
) -> None:
    visit1 = _context(client, "V-1")
    l1 = _pin(
        client,
        visit1,
        view="head",
        x=0.3,
        y=0.52,
        body_site=CHEEK,
        laterality="L",
        description="pigmented, irregular border",
    )
    l2 = _pin(client, visit1, view="back", x=0.45, y=0.3, body_site=BACK)
    assert (l1["label"], l2["label"]) == ("L1", "L2")
    assert l1["body_site_name"] == "Skin of cheek, left"
    overview = _photograph(client, visit1, "ov", l1["tracking_uid"], view="overview")
    close = _photograph(client, visit1, "cu", l1["tracking_uid"], view="close-up")
    scope = _photograph(
        client,
        visit1,
        "ds",
        l1["tracking_uid"],
        view="dermoscopy",
        dermoscopic="true",
        polarization="POLARIZED",
        contact="CONTACT",
        immersion="ALCOHOL",
    )
    assert scope["dermoscopic"] and not overview["dermoscopic"]
    assert scope["lesion"] == l1["tracking_uid"]
    _wait(client, "ov", "cu", "ds")

    # the dermoscopic image in the archive: its own SOP class, linked to the visit's photos
    archive = tmp_path / "data" / "archive"
    files = {pydicom.dcmread(p).SOPInstanceUID: p for p in archive.rglob("IM*")}
    ds = pydicom.dcmread(files[scope["sop_instance_uid"]])
    assert ds.SOPClassUID == DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE and ds.Modality == "DMS"
    assert dciodvfy_errors(files[scope["sop_instance_uid"]]) == []
    links = [
        (
            r.ReferencedSOPClassUID,
            r.ReferencedSOPInstanceUID,
            r.PurposeOfReferenceCodeSequence[0].CodeMeaning,
        )
        for r in ds.ReferencedImageSequence
    ]
    assert links == [
        (VLPhotographicImageStorage, overview["sop_instance_uid"], "Localizer"),
        (VLPhotographicImageStorage, close["sop_instance_uid"], "Other partial views"),
    ]
    assert (ds.TrackingID, ds.TrackingUID) == ("L1", l1["tracking_uid"])

    # the next visit: the same lesions, and the lesion's timeline with all three photos
    visit2 = _context(client, "V-2")
    assert [(les["label"], les["view"]) for les in _lesions(client, visit2)] == [
        ("L1", "head"),
        ("L2", "back"),
    ]
    timeline = client.get(f"/api/v1/contexts/{visit2}/timeline?lesion={l1['tracking_uid']}")
    assert timeline.status_code == 200, timeline.text
    items = timeline.json()["items"]
    assert sorted(i["sop_instance_uid"] for i in items) == sorted(
        c["sop_instance_uid"] for c in (overview, close, scope)
    )
    assert sorted(i["modality"] for i in items) == ["DMS", "XC", "XC"]
    assert client.get(f"/api/v1/contexts/{visit2}/timeline").status_code == 422

    # a fresh install (its own empty database) on the same archive finds L1 from its photos;
    # L2 has no photo yet, so only the install that pinned it knows it
    with _app(tmp_path / "data", tmp_path / "second.db") as fresh:
        visit3 = _context(fresh, "V-3")
        found = _lesions(fresh, visit3)
        assert [(f["label"], f["tracking_uid"], f["source"]) for f in found] == [
            ("L1", l1["tracking_uid"], "archive"),
        ]
        assert (found[0]["view"], found[0]["x"], found[0]["y"]) == ("head", 0.3, 0.52)
        assert found[0]["description"] == "pigmented, irregular border"
        assert found[0]["body_site_name"] == "Skin of cheek, left"
        again = _photograph(fresh, visit3, "again", l1["tracking_uid"])
        assert again["lesion"] == l1["tracking_uid"]
        assert _pin(fresh, visit3, view="front", x=0.5, y=0.5)["label"] == "L2"


def test_a_photo_names_only_its_own_patients_lesion(client: TestClient) -> None:
    mine = _context(client, "V-9")
    theirs = _context(client, "V-10", OTHER)
    lesion = _pin(client, theirs, view="front", x=0.5, y=0.4)
    response = client.post(
        "/api/v1/captures",
        data={"capture_id": "wrong", "context_id": mine, "lesion": lesion["tracking_uid"]},
        files={"photo": ("p.jpg", _photo(3), "image/jpeg")},
    )
    assert response.status_code == 422
    assert "not one of this patient's lesions" in response.json()["detail"]
    assert _lesions(client, mine) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"view": "elbow", "x": 0.5, "y": 0.5}, 422),
        ({"view": "front", "x": 1.5, "y": 0.5}, 422),
        ({"view": "head", "x": 0.5, "y": 0.5, "body_site": CHEEK}, 422),  # paired: which side?
        ({"view": "front", "x": 0.5, "y": 0.5, "description": "x" * 65}, 422),
    ],
)
def test_a_bad_pin_is_refused_with_a_reason(
    client: TestClient, body: dict[str, Any], status: int
) -> None:
    context = _context(client, "V-11")
    response = client.post(f"/api/v1/contexts/{context}/lesions", json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"]
