"""Issue 18 on the phone, in real Chromium: a sent photo is taken back as of the wrong patient.

After the archive verified the photo, its row offers "Wrong patient" and "Bad photo (blurred,
duplicate)". The confirmation names the patient on the banner; confirming rejects the photo
(the service sends Orthanc a KOS titled "Rejected for Patient Safety Reasons"), the row says
so, and the patient's earlier photos no longer list it. "Keep it" changes nothing.
"""

from __future__ import annotations

import time

from tests.conftest import SAMPLES
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack
from tests.web.test_access import _audit

pytestmark = requires_chromium

SKIN_OF_ANTERIOR_FOREARM = "70559009"


def _kos_verified(nurse: Phone, capture_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body: dict[str, object] = nurse.api(f"/api/v1/captures/{capture_id}/rejection")
        if body["kos_status"] == "verified":
            return body
        time.sleep(0.1)
    raise AssertionError("the KOS never reached the archive")


def test_wrong_patient_from_the_phone_names_the_patient_and_takes_the_photo_back(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-okada"))
    nurse.tap_region(SKIN_OF_ANTERIOR_FOREARM, "L")
    nurse.wait_screen("details")
    nurse.take_photo(SAMPLES / "mobile" / "jolla.jpg")
    nurse.send()
    nurse.wait_states("verified")
    (capture,) = nurse.captures()
    row = nurse.page.locator("#send-list li").first
    assert row.locator("button[data-reason]").all_inner_texts() == [
        "Wrong patient",
        "Bad photo (blurred, duplicate)",
    ]

    row.locator("button[data-reason='wrong-patient']").click()
    dialog = nurse.page.locator("dialog#takeback")
    dialog.wait_for()
    question = nurse.page.inner_text("#takeback-patient")
    assert "岡田, 花子" in question and "MRN 100004" in question, question
    _audit(nurse, "take-back confirmation", controls=2)  # readable, large, named
    nurse.shot("takeback-confirm")
    dialog.get_by_role("button", name="Keep it").click()
    assert nurse.page.locator("dialog#takeback").count() == 0
    assert nurse.api(f"/api/v1/captures/{capture['capture_id']}")["status"] == "verified"

    row.locator("button[data-reason='wrong-patient']").click()
    nurse.page.locator("dialog#takeback").get_by_role("button", name="Take it back").click()
    nurse.wait_text("#send-list li .takeback-status", "Taken back: wrong patient")
    assert row.get_attribute("data-taken-back") == "wrong-patient"
    assert row.locator("button[data-reason]:visible").count() == 0
    nurse.shot("takeback-done")

    rejection = _kos_verified(nurse, capture["capture_id"])
    assert rejection["reason"] == "wrong-patient" and rejection["reason_code"] == "113037"
    kos = stack.archived(str(rejection["kos_sop_instance_uid"]))
    assert kos.Modality == "KO" and kos.PatientID == "100004"
    assert kos.ConceptNameCodeSequence[0].CodeValue == "113037"
    context_id = nurse.api("/api/v1/session")["context_id"]
    priors = nurse.api(f"/api/v1/contexts/{context_id}/priors")
    assert capture["sop_instance_uid"] not in {p["sop_instance_uid"] for p in priors}
