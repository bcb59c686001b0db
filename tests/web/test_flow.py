"""Issue 5, the main path, in real Chromium on a phone: EHR launch -> "left forearm" on the body
map -> a photo -> send -> the instance is in Orthanc with the right patient, site and side,
and nothing is left on the phone."""

from __future__ import annotations

from ehr_sandbox.ups_server import PATIENT_ID, STATE, workitems
from tests.conftest import SAMPLES
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

SKIN_OF_ANTERIOR_FOREARM = "70559009"  # CID 4029: the front view's forearm
SCT_LEFT = "7771000"  # CID 244 Left


def test_left_forearm_from_the_map_reaches_orthanc_with_patient_site_and_side(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    banner = nurse.banner()
    assert "MÜLLER, Jürgen" in banner and "MRN 100001" in banner
    assert "1950-03-14" in banner and "V-5001" in banner
    nurse.shot("01-site-front")

    # Facing the patient, their left forearm is on the viewer's right.
    forearm = nurse.page.locator(
        f'#bodymap [data-code="{SKIN_OF_ANTERIOR_FOREARM}"][data-side="L"]'
    )
    box, middle = (
        forearm.bounding_box(),
        nurse.page.locator("#bodymap svg:visible").first.bounding_box(),
    )
    assert box and middle and box["x"] > middle["x"] + middle["width"] / 2
    assert forearm.get_attribute("aria-label") == "Skin of anterior surface of forearm, left"
    forearm.click()
    nurse.wait_screen("details")
    assert nurse.page.inner_text("#details-site") == "Skin of anterior surface of forearm, left"
    assert nurse.page.is_checked('input[name="side"][value="L"]')
    assert nurse.page.is_checked('input[name="sensitivity"][value="normal"]')
    assert nurse.page.is_hidden("#sensitivity-suggested")
    nurse.shot("03-details")

    nurse.page.click("#details-take")
    nurse.wait_screen("camera")
    nurse.shot("04-camera")
    nurse.take_photo(SAMPLES / "mobile" / "jolla.jpg")
    nurse.page.fill("#review-list textarea", "wound edge, 2 cm")
    nurse.page.fill('#review-list input[list="views"]', "close-up")
    nurse.shot("05-review")
    nurse.send()
    nurse.wait_states("verified")
    assert nurse.states() == ["verified"]
    nurse.shot("07-verified")

    (capture,) = nurse.captures()
    assert capture["status"] == "verified"
    ds = stack.archived(capture["sop_instance_uid"])
    assert ds.PatientID == "100001" and str(ds.PatientName) == "Müller^Jürgen"
    assert ds.AdmissionID == "V-5001"
    (region,) = ds.AnatomicRegionSequence
    assert (region.CodeValue, region.CodingSchemeDesignator) == (SKIN_OF_ANTERIOR_FOREARM, "SCT")
    assert region.AnatomicRegionModifierSequence[0].CodeValue == SCT_LEFT
    assert ds.ImageLaterality == "L"
    assert ds.SeriesDescription == "Skin of anterior surface of forearm, left"  # the same name
    assert "wound edge, 2 cm" in ds.ImageComments
    assert stack.patient_sop_uids("100001").count(capture["sop_instance_uid"]) == 1

    # No residue: the queue is empty once verified, and nothing went anywhere else.
    assert nurse.queued() == []
    kept = nurse.storage()
    assert kept["localStorage"] == [] and kept["sessionStorage"] == []
    assert all(not path.startswith("/api/") for paths in kept["caches"].values() for path in paths)

    nurse.page.click("#send-finish")
    nurse.page.wait_for_selector("#patient-message:not([hidden])")
    assert nurse.page.inner_text("#patient-message") == (
        "Signed out. Nothing from this session is left on this phone."
    )
    assert "No patient selected" in nurse.banner()
    assert nurse.page.request.get(f"{stack.api.url}/api/v1/session").status == 401


def test_a_heic_photo_from_a_computer_is_sent_without_a_preview(
    stack: WebStack, nurse: Phone
) -> None:
    """Desktop browsers cannot show HEIC (iPhones convert it on upload themselves): the phone
    says so and sends it; the service converts it once."""
    nurse.launch(stack.launch_url("enc-muller"))
    nurse.tap_region("45981001", "R")  # front of the right upper arm
    nurse.take_photo(SAMPLES / "heic" / "IMG_5195.HEIC")
    assert "HEIC photo: no preview" in nurse.page.inner_text("#review-list")
    nurse.send()
    nurse.wait_states("verified")
    (capture,) = [c for c in nurse.captures() if c["body_site"] == "45981001"]
    assert stack.archived(capture["sop_instance_uid"]).LossyImageCompressionMethod == [
        "ISO_23008_2",
        "ISO_10918_1",
    ]


def test_search_with_a_synonym_and_recent_sites(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    nurse.page.fill("#site-search", "R shin")
    hit = nurse.page.locator("#site-results").get_by_role(
        "button", name="Skin of anterior surface of lower leg, right"
    )
    hit.wait_for()
    nurse.shot("02-site-search")
    hit.click()
    nurse.wait_screen("details")
    assert nurse.page.is_checked('input[name="side"][value="R"]')
    nurse.page.click("#details-change")
    nurse.wait_screen("site")
    recent = nurse.page.locator("#recent-sites button")
    assert recent.all_inner_texts() == ["Skin of anterior surface of lower leg, right"]
    recent.first.click()
    nurse.wait_screen("details")
    assert nurse.page.inner_text("#details-site") == "Skin of anterior surface of lower leg, right"


def test_the_back_view_is_not_mirrored(stack: WebStack, nurse: Phone) -> None:
    """Seen from behind, the patient's right forearm is on the viewer's right."""
    nurse.launch(stack.launch_url("enc-muller"))
    nurse.page.click("#view-back")
    svg = nurse.page.locator("#bodymap svg:visible").first.bounding_box()
    assert svg is not None
    middle = svg["x"] + svg["width"] / 2
    shapes = nurse.page.locator('#bodymap [data-code="41550009"]').all()  # posterior forearm
    (on_right,) = [s for s in shapes if (b := s.bounding_box()) and b["x"] > middle]
    on_right.click()
    nurse.wait_screen("details")
    assert nurse.page.inner_text("#details-site") == "Skin of posterior surface of forearm, right"
    assert nurse.page.is_checked('input[name="side"][value="R"]')


def test_without_a_patient_from_the_ehr_the_wristband_or_worklist_opens_one(
    stack: WebStack, nurse: Phone
) -> None:
    """A standalone launch (capture opened from the phone's home screen, no patient chosen):
    the phone offers the wristband scan and the station's worklist, and shows the banner to
    confirm before anything else."""
    nurse.page.goto(f"{stack.api.url}/launch")
    nurse.page.wait_for_selector("#patient-choose:not([hidden])")
    # Up to one worklist timeout and a poll on a loaded machine; a timeout says what showed.
    nurse.wait_text("#worklist", "100004", timeout=30_000)
    assert "No patient selected" in nurse.banner()
    items = nurse.page.locator("#worklist button").all_inner_texts()
    assert any("100004" in item for item in items), items  # Okada: wound care, this station
    nurse.shot("00-choose-patient")

    nurse.page.fill("#scan-input", "100001")
    nurse.page.click("#scan-form button[type=submit]")
    nurse.page.wait_for_selector("#patient-confirm:not([hidden])")
    assert "MÜLLER, Jürgen" in nurse.banner()
    nurse.shot("00-confirm-patient")
    nurse.page.click("#patient-no")  # not the patient in the bed
    assert "No patient selected" in nurse.banner()

    nurse.page.locator("#worklist button", has_text="100004").click()
    nurse.page.wait_for_selector("#patient-confirm:not([hidden])")
    assert "岡田, 花子" in nurse.banner() and "MRN 100004" in nurse.banner()
    nurse.page.click("#patient-yes")
    nurse.wait_screen("site")
    assert "岡田, 花子" in nurse.banner()

    # Photographed and finished: the worklist shows the encounter COMPLETED.
    nurse.tap_region("84607009", "L", view="back")  # left heel
    nurse.take_photo(SAMPLES / "orientation" / "landscape_2.jpg")
    nurse.send()
    nurse.wait_states("verified")
    nurse.page.click("#send-finish")
    nurse.wait_text("#patient-message", "Signed out")
    (item,) = [
        w for w in workitems(stack.sandbox.state).values() if w[PATIENT_ID]["Value"] == ["100004"]
    ]
    assert item[STATE]["Value"] == ["COMPLETED"]


def test_integration_mode_opens_the_context_a_trusted_system_made(
    stack: WebStack, nurse: Phone
) -> None:
    """No EHR registered: the hospital's own system creates the context and opens
    /?context=<id> on the phone (README "Integration mode")."""
    with stack.another_api("integration", CAPTURE_EHRS="[]") as api:
        patient = {"id": "INT-7", "name": {"family": "Tester", "given": "Ina"}, "sex": "F"}
        created = api.client.post("/api/v1/contexts", json={"patient": patient}).json()
        context_id = created["context_id"]
        nurse.page.goto(f"{api.url}/?context={context_id}")
        nurse.wait_screen("site")
        assert "TESTER, Ina" in nurse.banner() and "MRN INT-7" in nurse.banner()
        nurse.tap_region("22180002", "R", view="back")  # right buttock: suggested restricted
        nurse.take_photo(SAMPLES / "orientation" / "portrait_1.jpg")
        nurse.send()
        nurse.wait_states("verified")
        (capture,) = api.client.get("/api/v1/captures", params={"context_id": context_id}).json()
        assert (capture["laterality"], capture["sensitivity"]) == ("R", "restricted")


def test_review_keeps_several_photos_and_lets_one_be_retaken_or_deleted(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-smith-a"))
    nurse.tap_region("70887009", "L")  # palm of the left hand
    for name in ("portrait_1.jpg", "portrait_2.jpg", "portrait_3.jpg"):
        nurse.take_photo(SAMPLES / "orientation" / name)
        nurse.page.click("#review-more")
        nurse.wait_screen("camera")
    nurse.page.click("#camera-review")
    cards = nurse.page.locator("#review-list li")
    assert cards.count() == 3
    first_id = cards.nth(0).get_attribute("data-id")
    cards.nth(1).get_by_role("button", name="Delete").click()
    assert cards.count() == 2
    cards.nth(0).get_by_role("button", name="Retake").click()
    nurse.wait_screen("camera")
    nurse.take_photo(SAMPLES / "orientation" / "portrait_4.jpg")
    assert cards.count() == 2 and cards.nth(0).get_attribute("data-id") != first_id
    assert nurse.page.inner_text("#review-send") == "Send 2 photos"
    nurse.send()
    nurse.wait_states("verified", count=2)
    assert len([c for c in nurse.captures() if c["body_site"] == "70887009"]) == 2
