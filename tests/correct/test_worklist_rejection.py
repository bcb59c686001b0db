"""A worklist item reports only the photos that were not taken back (issue 18).

The sandbox's UPS-RS worklist: a photo rejected before the workitem is completed is not among
its produced instances (Output Information Sequence); an encounter whose every photo was taken
back is not completed at all (409, in words).
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from ehr_sandbox.server import SandboxServer
from ehr_sandbox.ups_server import workitem_uid
from tests.conftest import phone_jpeg
from tests.context.test_worklist import _app, _upload, _value, _wait_verified, _workitem, sandbox

__all__ = ["sandbox"]  # the fixture: a sandbox UPS-RS worklist of this module's own


def test_a_rejected_photo_is_not_reported_as_produced(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    uid = workitem_uid("enc-muller")
    with TestClient(_app(tmp_path, sandbox)) as c:
        context_id = c.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
        assert _upload(c, context_id, "wl-keep", phone_jpeg(320, 240, seed=1)).status_code == 202
        assert _upload(c, context_id, "wl-gone", phone_jpeg(320, 240, seed=2)).status_code == 202
        kept = _wait_verified(c, "wl-keep")
        _wait_verified(c, "wl-gone")
        taken = c.post("/api/v1/captures/wl-gone/rejection", json={"reason": "quality"})
        assert taken.status_code == 201
        done = c.post(f"/api/v1/worklist/contexts/{context_id}/complete")
        assert done.status_code == 200, done.text
        assert done.json()["sop_instance_uids"] == [kept["sop_instance_uid"]]
    item = _workitem(sandbox, uid)
    assert _value(item, "00741000") == "COMPLETED"
    output = _value(item, "00741216")["00404033"]["Value"]
    referenced = [ref["00081155"]["Value"][0] for o in output for ref in o["00081199"]["Value"]]
    assert referenced == [kept["sop_instance_uid"]]


def test_an_encounter_whose_photos_were_all_taken_back_is_not_completed(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    uid = workitem_uid("enc-ngata")
    with TestClient(_app(tmp_path, sandbox)) as c:
        context_id = c.post(f"/api/v1/worklist/{uid}/claim").json()["context_id"]
        assert _upload(c, context_id, "wl-only").status_code == 202
        _wait_verified(c, "wl-only")
        taken = c.post("/api/v1/captures/wl-only/rejection", json={"reason": "wrong-patient"})
        assert taken.status_code == 201
        refused = c.post(f"/api/v1/worklist/contexts/{context_id}/complete")
        assert refused.status_code == 409 and "taken back" in refused.json()["detail"]
    assert _value(_workitem(sandbox, uid), "00741000") == "IN PROGRESS"
