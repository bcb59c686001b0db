"""Photos another system stored in a real PACS (Orthanc, DICOMweb): capture has no database
row for them, so their level comes from the private sensitivity block in the series metadata
(WADO-RS). A clinician never sees a very-restricted one; a sensitive viewer sees it blurred and
can break the glass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from capture_api.deliver.archive import InstanceRef
from ehr_sandbox.server import SandboxServer
from tests.capture.test_timeline import _archive_copy, _laplacian_variance, _wait
from tests.orthanc import OrthancServer
from tests.privacy.people import NINA, VERA, browser, send_photo, sign_in, stored_capture
from tests.security.conftest import AppFactory, registration


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


def _store_foreign(nina: TestClient, capture_id: str) -> dict[str, InstanceRef]:
    """Copies of our photo as another system would store them: unmarked, R and V."""
    ours = stored_capture(nina, capture_id)
    assert ours is not None and ours.dicom_path
    archive = nina.app.state.runtime.archive  # type: ignore[attr-defined]
    refs = {}
    for name, code in (("unmarked", None), ("R", "R"), ("V", "V")):
        part10, ref = _archive_copy(Path(ours.dicom_path), code)
        archive.store(part10, ref)
        refs[name] = ref
    return refs


def test_foreign_pacs_photos_are_shown_by_their_private_block(
    make_app: AppFactory, ehr: SandboxServer, orthanc: OrthancServer
) -> None:
    nina = make_app(
        ehrs=[registration(ehr)],
        worker_enabled=True,
        poll_seconds=0.05,
        dicomweb_url=orthanc.base_url,
        spool_retention_seconds=3600,  # keep our Part 10 file to copy it
    )
    ctx = sign_in(nina, ehr, NINA)["context_id"]
    assert send_photo(nina, ctx, "ours", seed=5).status_code == 202
    _wait(nina, "ours")
    refs = _store_foreign(nina, "ours")
    sops = {name: ref.sop_instance_uid for name, ref in refs.items()}

    shown = {p["sop_instance_uid"]: p for p in nina.get(f"/api/v1/contexts/{ctx}/priors").json()}
    assert (shown[sops["unmarked"]]["sensitivity"], shown[sops["unmarked"]]["blurred"]) == (
        "normal",
        False,
    )
    assert (shown[sops["R"]]["sensitivity"], shown[sops["R"]]["blurred"]) == ("restricted", True)
    assert sops["V"] not in shown
    ref = refs["V"]
    hidden = (
        f"/api/v1/contexts/{ctx}/priors/{ref.study_uid}/{ref.series_uid}/"
        f"{ref.sop_instance_uid}/thumbnail"
    )
    assert nina.get(hidden).status_code == 404

    vera = browser(nina)
    vera_ctx = sign_in(vera, ehr, VERA)["context_id"]
    listed = {
        p["sop_instance_uid"]: p for p in vera.get(f"/api/v1/contexts/{vera_ctx}/priors").json()
    }
    very = listed[sops["V"]]
    assert (very["sensitivity"], very["blurred"]) == ("very-restricted", True)
    archive = nina.app.state.runtime.archive  # type: ignore[attr-defined]
    clear = archive.thumbnail(ref, 256)
    blurred = vera.get(very["thumbnail_url"]).content
    assert _laplacian_variance(blurred) < _laplacian_variance(clear) / 20
    unblurred = vera.post(
        very["unblur_url"], json={"reason": "Forensic review requested", "size": 256}
    )
    assert unblurred.status_code == 200 and unblurred.content == clear
