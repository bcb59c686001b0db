"""Issue 18 on the phone, in real Chromium: a sent photo is taken back as of the wrong patient,
then filed for the right one.

After the archive verified the photo, its row offers "Wrong patient" and "Bad photo (blurred,
duplicate)". The confirmation names the patient on the banner; confirming rejects the photo
(the service sends Orthanc a KOS titled "Rejected for Patient Safety Reasons"), the row says
so, and the patient's earlier photos no longer list it. "Keep it" changes nothing. The nurse
then opens the right patient from the EHR: the site screen offers the photo taken back, and
"File it here" (confirmed against the banner) puts it in Orthanc for that patient, with the
same JPEG bitstream.
"""

from __future__ import annotations

import time

from pydicom.encaps import generate_frames

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

    # The right patient, opened from the EHR: the photo is offered there, and filed.
    nurse.launch(stack.launch_url("enc-ngata"))
    offer = nurse.page.locator("#refile-offer")
    offer.wait_for()
    assert "Skin of anterior surface of forearm, left" in offer.inner_text()
    offer.get_by_role("button", name="File it for NGATA, Aroha").click()
    confirm = nurse.page.locator("dialog#refile-confirm")
    confirm.wait_for()
    assert "MRN 100005" in nurse.page.inner_text("#refile-patient")
    _audit(nurse, "re-file confirmation", controls=2)
    confirm.get_by_role("button", name="File it here").click()
    nurse.wait_text("#refile-offer .refile-status", "Filed for NGATA, Aroha")
    nurse.shot("refile-done")
    (refiled,) = nurse.captures()
    deadline = time.monotonic() + 30
    while refiled["status"] != "verified":
        assert time.monotonic() < deadline, refiled
        time.sleep(0.1)
        refiled = nurse.api(f"/api/v1/captures/{refiled['capture_id']}")
    new = stack.archived(refiled["sop_instance_uid"])
    old = stack.archived(capture["sop_instance_uid"])
    assert new.PatientID == "100005" and old.PatientID == "100004"
    assert next(generate_frames(new.PixelData, number_of_frames=1)) == next(
        generate_frames(old.PixelData, number_of_frames=1)
    )
    assert nurse.api(f"/api/v1/contexts/{refiled['context_id']}/refilable") == []
