"""The wound-care timeline end to end: real uploads, the local archive, sensitivity applied."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydicom.uid import generate_uid

from capture_api.api.app import create_app
from capture_api.api.routes import timeline
from capture_api.capture.anatomy import resolve
from capture_api.capture.sensitivity import SensitivityLevel
from capture_api.config import Settings
from capture_api.deliver.archive import InstanceRef
from capture_api.deliver.instance_labels import labels_from_json
from capture_api.encode.vl_photo import SENSITIVITY_CREATOR, SENSITIVITY_GROUP
from capture_api.review.timeline import extras_from_labels, level_from_code, parse_acquired
from capture_api.store.spool_source import FolderReader

FOREARM, _LEFT = resolve("left forearm")
SACRUM, _UNPAIRED = resolve("sacrum")
PATIENT = {"id": "MRN-TL", "name": {"family": "Roe", "given": "Ann"}, "sex": "F"}
OTHER = {"id": "MRN-OTHER", "name": {"family": "Poe", "given": "Ed"}}


def _photo(seed: int, width: int = 640, height: int = 480) -> bytes:
    """A detailed JPEG with no EXIF at all (so ``captured_at`` dates the photo)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    pixels = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))
    pixels = (pixels.astype(np.int16) + rng.integers(-40, 41, pixels.shape)).clip(0, 255)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, "JPEG", quality=92)
    return out.getvalue()


def _settings(tmp: Path) -> Settings:
    return Settings(data_dir=tmp, poll_seconds=0.05, retry_base_seconds=0.05)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(_settings(tmp_path))
    app.include_router(timeline.router, prefix="/api/v1")  # app.py does not mount it (yet)
    with TestClient(app) as c:
        yield c


def _context(client: TestClient, admission: str, patient: dict[str, Any] = PATIENT) -> str:
    encounter = {"admission_id": admission, "description": f"Wound clinic {admission}"}
    response = client.post("/api/v1/contexts", json={"patient": patient, "encounter": encounter})
    assert response.status_code == 201, response.text
    return str(response.json()["context_id"])


def _capture(
    client: TestClient,
    context_id: str,
    capture_id: str,
    when: str,
    *,
    site: str = FOREARM.code_value,
    side: str | None = "L",
    seed: int = 0,
    **form: str,
) -> str:
    fields = {
        "capture_id": capture_id,
        "context_id": context_id,
        "body_site": site,
        "captured_at": when,
        "note": f"note {capture_id}",
    } | form
    if side:
        fields["laterality"] = side
    response = client.post(
        "/api/v1/captures",
        data=fields,
        files={"photo": ("p.jpg", _photo(seed), "image/jpeg")},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["sop_instance_uid"])


def _wait(client: TestClient, *capture_ids: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for capture_id in capture_ids:
        while True:
            body = client.get(f"/api/v1/captures/{capture_id}").json()
            if body["status"] == "verified":
                break
            assert body["status"] != "failed", body
            assert time.monotonic() < deadline, f"{capture_id} stayed {body['status']}"
            time.sleep(0.05)


def _timeline(client: TestClient, context_id: str, query: str) -> Any:
    response = client.get(f"/api/v1/contexts/{context_id}/timeline?{query}")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def _laplacian_variance(jpeg: bytes) -> float:
    grey = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.float64)
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


@pytest.fixture
def three_visits(client: TestClient) -> dict[str, Any]:
    """Three encounters of one patient; left forearm in each, plus right forearm and sacrum."""
    v1, v2, v3 = (_context(client, a) for a in ("V-1", "V-2", "V-3"))
    sops = {
        "lf1": _capture(client, v1, "lf1", "2026-01-10T09:00:00+01:00", seed=1),
        "lf2": _capture(client, v2, "lf2", "2026-01-03T16:30:00+01:00", seed=2),
        "lf3": _capture(client, v3, "lf3", "2026-01-24T08:15:00+01:00", seed=3),
        "rf": _capture(client, v1, "rf", "2026-01-10T09:05:00+01:00", side="R", seed=4),
        "sac": _capture(
            client, v2, "sac", "2026-01-03T16:40:00+01:00", site=SACRUM.code_value, seed=5
        ),
    }
    other = _context(client, "X-1", OTHER)
    sops["foreign"] = _capture(client, other, "foreign", "2026-01-05T10:00:00+01:00", seed=6)
    _wait(client, *sops)
    return {"contexts": (v1, v2, v3), "other": other, "sops": sops}


def test_timeline_lists_the_site_in_date_order_across_encounters(
    client: TestClient, three_visits: dict[str, Any]
) -> None:
    v1, _, v3 = three_visits["contexts"]
    sops = three_visits["sops"]
    body = _timeline(client, v3, f"body_site={FOREARM.code_value}&laterality=L")
    items = body["items"]
    assert [i["sop_instance_uid"] for i in items] == [sops["lf2"], sops["lf1"], sops["lf3"]]
    assert [i["acquired"][:8] for i in items] == ["20260103", "20260110", "20260124"]
    assert len({i["study_uid"] for i in items}) == 3  # three encounters, three studies
    assert [i["encounter"]["admission_id"] for i in items] == ["V-2", "V-1", "V-3"]
    assert items[0]["encounter"]["description"] == "Wound clinic V-2"
    first = items[0]
    assert first["body_site_code"] == FOREARM.code_value and first["laterality"] == "L"
    assert first["note"] == "note lf2" and first["body_site_meaning"]
    assert first["sensitivity"] == "normal" and first["blurred"] is False
    assert first["thumbnail_url"].endswith("/image?size=256")
    assert first["preview_url"].endswith("/image?size=1024")
    assert first["thumbnail_url"].startswith(f"/api/v1/contexts/{v3}/timeline/")

    thumb = client.get(first["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["cache-control"] == "no-store"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 256
    preview = client.get(first["preview_url"])
    assert preview.status_code == 200
    assert max(Image.open(io.BytesIO(preview.content)).size) == 640  # never larger than the photo
    assert client.get(first["thumbnail_url"].replace("256", "300")).status_code == 422

    both_sides = _timeline(client, v1, f"body_site={FOREARM.code_value}")["items"]
    assert {i["sop_instance_uid"] for i in both_sides} == {
        sops[k] for k in ("lf1", "lf2", "lf3", "rf")
    }
    right = _timeline(client, v1, f"body_site={FOREARM.code_value}&laterality=R")["items"]
    assert [i["sop_instance_uid"] for i in right] == [sops["rf"]]
    sacral = _timeline(client, v1, f"body_site={SACRUM.code_value}")["items"]
    assert [i["sop_instance_uid"] for i in sacral] == [sops["sac"]]
    assert sops["foreign"] not in {i["sop_instance_uid"] for i in both_sides}


def test_compare_two_photos_with_the_days_between(
    client: TestClient, three_visits: dict[str, Any]
) -> None:
    v1 = three_visits["contexts"][0]
    sops = three_visits["sops"]
    response = client.get(f"/api/v1/contexts/{v1}/timeline/compare?a={sops['lf2']}&b={sops['lf3']}")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["a"]["sop_instance_uid"] == sops["lf2"]
    assert body["b"]["sop_instance_uid"] == sops["lf3"]
    assert body["days_between"] == 21
    assert body["a"]["encounter"]["admission_id"] == "V-2"
    assert client.get(body["b"]["preview_url"]).status_code == 200


def test_another_patients_photo_is_never_reachable(
    client: TestClient, three_visits: dict[str, Any]
) -> None:
    v1 = three_visits["contexts"][0]
    other = three_visits["other"]
    sops = three_visits["sops"]
    foreign = client.get(f"/api/v1/contexts/{other}/timeline?body_site={FOREARM.code_value}")
    (stranger,) = foreign.json()["items"]
    assert stranger["sop_instance_uid"] == sops["foreign"]

    compare = client.get(
        f"/api/v1/contexts/{v1}/timeline/compare?a={sops['lf1']}&b={sops['foreign']}"
    )
    assert compare.status_code == 404
    assert compare.headers["cache-control"] == "no-store"
    # the other patient's image URL, under our context: not ours, so not found
    stolen = stranger["thumbnail_url"].replace(f"/contexts/{other}/", f"/contexts/{v1}/")
    assert client.get(stolen).status_code == 404
    # our study and series, their SOP UID: all three UIDs must match one of our photos
    ours = _timeline(client, v1, f"body_site={FOREARM.code_value}&laterality=L")["items"][0]
    mixed = ours["thumbnail_url"].replace(ours["sop_instance_uid"], sops["foreign"])
    assert client.get(mixed).status_code == 404
    missing = client.get("/api/v1/contexts/no-such/timeline?body_site=12345")
    assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"


def test_restricted_and_very_restricted_are_only_blurred(client: TestClient) -> None:
    """Integration mode: the trusted caller holds every role, so very-restricted photos are
    listed too, blurred (a clinician without the sensitive-viewer role does not see them at
    all: tests/privacy/test_sensitive_photos.py)."""
    v1, v2 = _context(client, "V-1"), _context(client, "V-2")
    clear = _capture(client, v1, "clear", "2026-02-01T10:00:00+00:00", seed=11)
    secret = _capture(
        client, v1, "secret", "2026-02-08T10:00:00+00:00", seed=12, sensitivity="restricted"
    )
    hidden = _capture(
        client, v2, "hidden", "2026-02-15T10:00:00+00:00", seed=13, sensitivity="very-restricted"
    )
    _wait(client, "clear", "secret", "hidden")

    items = _timeline(client, v2, f"body_site={FOREARM.code_value}&laterality=L")["items"]
    assert [i["sop_instance_uid"] for i in items] == [clear, secret, hidden]
    assert [(i["sensitivity"], i["blurred"]) for i in items] == [
        ("normal", False),
        ("restricted", True),
        ("very-restricted", True),
    ]

    # what the archive would serve clear, and what we serve
    archive = client.app.state.runtime.archive  # type: ignore[attr-defined]
    ref = InstanceRef(items[1]["study_uid"], items[1]["series_uid"], secret)
    clear_thumb = archive.thumbnail(ref, 256)
    served = client.get(items[1]["thumbnail_url"])
    assert served.status_code == 200 and served.headers["cache-control"] == "no-store"
    assert served.content != clear_thumb
    assert _laplacian_variance(served.content) < _laplacian_variance(clear_thumb) / 20
    served_preview = client.get(items[1]["preview_url"]).content
    clear_preview = archive.thumbnail(ref, 1024)
    assert _laplacian_variance(served_preview) < _laplacian_variance(clear_preview) / 20
    normal = client.get(items[0]["thumbnail_url"]).content
    assert _laplacian_variance(normal) > _laplacian_variance(served.content) * 20

    compare = client.get(f"/api/v1/contexts/{v1}/timeline/compare?a={clear}&b={secret}").json()
    assert compare["b"]["blurred"] is True and compare["days_between"] == 7

    # very-restricted: its images are only ever blurred too
    hidden_ref = InstanceRef(items[2]["study_uid"], items[2]["series_uid"], hidden)
    for size in (256, 1024):
        response = client.get(f"{items[2]['thumbnail_url'].split('?')[0]}?size={size}")
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        clear_hidden = archive.thumbnail(hidden_ref, size)
        assert _laplacian_variance(response.content) < _laplacian_variance(clear_hidden) / 20
    pair = client.get(f"/api/v1/contexts/{v2}/timeline/compare?a={clear}&b={hidden}")
    assert pair.status_code == 200 and pair.json()["b"]["blurred"] is True


def _archive_copy(path: Path, level_code: str | None) -> tuple[bytes, InstanceRef]:
    """Another instance (as another system would store it), with or without our block; from
    the Part 10 file at ``path``, or the spooled object there (``FolderReader``: an upright
    photo's object is spooled as references to its photo, ``store.composed``)."""
    ds = pydicom.dcmread(io.BytesIO(FolderReader().source(str(path)).read()))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for tag in [elem.tag for elem in ds if elem.tag.group == SENSITIVITY_GROUP]:
        del ds[tag]
    if level_code is not None:
        block = ds.private_block(SENSITIVITY_GROUP, SENSITIVITY_CREATOR, create=True)
        block.add_new(0x10, "CS", level_code)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), InstanceRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


def test_instances_we_did_not_capture_use_the_archives_private_block(
    client: TestClient, tmp_path: Path
) -> None:
    """Not in our database: the level comes from the header; no block means normal."""
    ctx = _context(client, "V-1")
    _capture(client, ctx, "ours", "2026-03-01T10:00:00+00:00", seed=21)
    _wait(client, "ours")
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    (ours_file,) = [p for p in (tmp_path / "archive").rglob("*") if p.name.startswith("IM")]
    stored = {}
    for name, code in (("unmarked", None), ("r", "R"), ("v", "V")):
        part10, ref = _archive_copy(ours_file, code)
        runtime.archive.store(part10, ref)
        stored[name] = ref.sop_instance_uid
    items = _timeline(client, ctx, f"body_site={FOREARM.code_value}")["items"]
    levels = {i["sop_instance_uid"]: (i["sensitivity"], i["blurred"]) for i in items}
    assert levels[stored["unmarked"]] == ("normal", False)
    assert levels[stored["r"]] == ("restricted", True)
    assert levels[stored["v"]] == ("very-restricted", True)  # integration mode: every role
    admission = {i["sop_instance_uid"]: i["encounter"]["admission_id"] for i in items}
    assert admission[stored["unmarked"]] == "V-1"  # read from the header, not our database


def test_private_block_in_dicom_json_and_codes() -> None:
    attrs = {
        "00111000": {"vr": "LO", "Value": ["SOMEONE ELSE"]},
        "00111010": {"vr": "CS", "Value": ["N"]},
        "00110011": {"vr": "LO", "Value": [SENSITIVITY_CREATOR]},
        "00111110": {"vr": "CS", "Value": ["V"]},
        "00380010": {"vr": "LO", "Value": ["ADM-9"]},
        "00110010": {"vr": "LO", "Value": ["SOMEONE ELSE"]},
    }
    extras = extras_from_labels(labels_from_json(attrs))
    assert extras.sensitivity is SensitivityLevel.VERY_RESTRICTED
    assert extras.encounter.admission_id == "ADM-9"
    assert extras_from_labels(labels_from_json({})).sensitivity is SensitivityLevel.NORMAL
    assert level_from_code("R") is SensitivityLevel.RESTRICTED
    assert level_from_code("Q") is SensitivityLevel.RESTRICTED  # unknown: never clear
    assert level_from_code(None, "very-restricted") is SensitivityLevel.VERY_RESTRICTED
    assert level_from_code(None, None) is SensitivityLevel.RESTRICTED
    moment = parse_acquired("20260110090000.000000+0100")
    assert moment is not None and moment.utcoffset() is not None and moment.hour == 9
    assert parse_acquired("garbage") is None and parse_acquired(None) is None


def test_dicomweb_metadata_failure_is_restricted_and_silence_is_normal() -> None:
    from capture_api.deliver.dicomweb import DicomWebArchive
    from capture_api.exceptions import ArchiveUnavailable
    from capture_api.review.timeline import archive_extras

    class _Server(DicomWebArchive):
        def __init__(self) -> None:  # no HTTP client: metadata answers are canned
            pass

        def series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
            if series_uid == "9.9":
                raise ArchiveUnavailable("down")
            if series_uid == "8.8":
                return []  # no metadata resource: the server cannot say
            marked = {
                "00080018": {"vr": "UI", "Value": ["1.1.1"]},
                "00110010": {"vr": "LO", "Value": [SENSITIVITY_CREATOR]},
                "00111010": {"vr": "CS", "Value": ["R"]},
            }
            return [marked, {"00080018": {"vr": "UI", "Value": ["1.1.2"]}}]

    found = archive_extras(
        _Server(),
        [
            InstanceRef("1", "1.1", "1.1.1"),
            InstanceRef("1", "1.1", "1.1.2"),
            InstanceRef("1", "9.9", "9.9.1"),
            InstanceRef("1", "8.8", "8.8.1"),
        ],
    )
    assert found["1.1.1"].sensitivity is SensitivityLevel.RESTRICTED
    assert found["1.1.2"].sensitivity is SensitivityLevel.NORMAL
    assert found["9.9.1"].sensitivity is SensitivityLevel.RESTRICTED
    assert "8.8.1" not in found  # the timeline then treats it as normal
