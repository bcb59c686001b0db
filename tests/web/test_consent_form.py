"""The consent step with a photo of the signed form: the form is stored as an ordinary capture
of the same patient session (view "consent form", which never waits for consent) and the
recorded consent points at it."""

from __future__ import annotations

from playwright.sync_api import Browser, Playwright

from tests.conftest import SAMPLES
from tests.web.browser import phone, requires_chromium
from tests.web.stack import WebStack
from tests.web.test_access import _audit

pytestmark = requires_chromium

SKIN_OF_FOREARM = "70559009"
PHOTO = SAMPLES / "orientation" / "portrait_2.jpg"
FORM = SAMPLES / "orientation" / "portrait_5.jpg"


def test_a_photo_of_the_signed_form_goes_with_written_consent(
    stack: WebStack, playwright: Playwright, browser: Browser
) -> None:
    with (
        stack.another_api("consent-form", CAPTURE_CONSENT_REQUIRED="always") as api,
        phone(playwright, browser) as nurse,
    ):
        nurse.launch(stack.launch_url("enc-muller", api))
        nurse.tap_region(SKIN_OF_FOREARM, "R")
        nurse.take_photo(PHOTO)
        nurse.send()
        nurse.page.locator("#consent").wait_for()
        nurse.wait_states("consent")
        assert nurse.page.is_hidden("#consent-photo-box")  # only with written consent
        nurse.page.check('input[name="method"][value="written"]')
        assert nurse.page.is_visible("#consent-photo-box")
        nurse.page.set_input_files("#consent-photo", str(FORM))
        assert "portrait_5.jpg" in nurse.page.inner_text("#consent-photo-name")
        nurse.page.check("#consent-agree")
        _audit(nurse, "consent with a form photo")
        nurse.shot("15-consent-form")
        nurse.page.click("#consent-form button[type=submit]")
        nurse.wait_states("verified")
        assert nurse.page.is_hidden("#consent")

        context_id = nurse.api("/api/v1/session")["context_id"]
        consent = nurse.api(f"/api/v1/contexts/{context_id}/consent")
        assert consent["method"] == "written" and consent["consenter"] == "patient"
        form_id = consent["form_capture_id"]
        captures = {c["capture_id"]: c for c in nurse.captures()}
        assert form_id in captures and len(captures) == 2
        (photo_id,) = set(captures) - {form_id}
        assert captures[form_id]["body_site"] is None
        assert captures[photo_id]["body_site"] == SKIN_OF_FOREARM
        assert set(consent["captures"]) == {form_id, photo_id}  # both taken under it
        form = captures[form_id]
        assert form["status"] in {"encoded", "stored", "verified"}
        assert nurse.queued() == []
        assert nurse.errors == []
