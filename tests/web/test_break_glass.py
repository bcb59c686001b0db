"""Break-the-glass in the phone: a sensitive viewer sees a blurred earlier photo clearly after
typing why (the service judges the reason and audits every attempt); a clinician without the
role is never offered it, and the clear image is gone once the screen changes."""

from __future__ import annotations

import base64
import csv
import io
from urllib.parse import urlencode

from playwright.sync_api import Browser, Locator, Playwright

from tests.conftest import SAMPLES
from tests.web.browser import Phone, phone, requires_chromium
from tests.web.stack import WebStack
from tests.web.test_access import _audit
from tests.web.test_sensitive import _image_url, _sharpness

pytestmark = requires_chromium

SKIN_OF_UPPER_BACK = "244111001"  # not paired, photographed by no other web test
PHOTO = SAMPLES / "orientation" / "landscape_1.jpg"
VERA = "prac-vera"  # the sandbox's dermatologist: clinician + sensitive-viewer
OTTO = "prac-otto"  # the sandbox's privacy officer: auditor
REASON = "compare the wound edges before debridement"
#: Whether an object URL still loads as an image (the CSP keeps fetch() away from blob:).
BLOB_STATE = """url => new Promise(done => {
  const probe = new Image();
  probe.onload = () => done('readable');
  probe.onerror = () => done('revoked');
  probe.src = url;
})"""
#: The shown image's pixels, as a PNG data URL (drawn on a canvas in the page).
SHOWN_PNG = """() => {
  const image = document.querySelector('#unblur-image');
  const canvas = document.createElement('canvas');
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  canvas.getContext('2d').drawImage(image, 0, 0);
  return canvas.toDataURL('image/png');
}"""


def _launch_url(stack: WebStack, encounter: str, user: str) -> str:
    """The sandbox EHR's "Launch capture" link, signed in there as ``user``."""
    return f"{stack.sandbox.state.base_url}/ehr/launch/{encounter}?{urlencode({'user': user})}"


def _blurred_prior(nurse: Phone) -> Locator:
    """Photograph the upper back as restricted, then open it again: its blurred prior."""
    nurse.tap_region(SKIN_OF_UPPER_BACK, view="back")
    nurse.page.check('input[name="sensitivity"][value="restricted"]')
    nurse.take_photo(PHOTO)
    nurse.send()
    nurse.wait_states("verified")
    nurse.page.click("#send-other")
    nurse.wait_screen("site")
    nurse.tap_region(SKIN_OF_UPPER_BACK, view="back")
    prior = nurse.page.locator("#priors li").first
    prior.locator("img").wait_for()
    assert prior.get_attribute("data-blurred") == "true"
    return prior


def _audit_rows(
    stack: WebStack, playwright: Playwright, browser: Browser, mrn: str
) -> list[dict[str, str]]:
    """The trail's events for a patient, as the auditor (Otto, launched from the EHR) exports
    them (CSV)."""
    with phone(playwright, browser) as auditor:
        auditor.page.goto(_launch_url(stack, "enc-muller", OTTO))
        auditor.page.wait_for_url(f"{stack.api.url}/**")
        query = urlencode({"patient": mrn, "format": "csv"})
        answer = auditor.page.request.get(f"{stack.api.url}/api/v1/audit?{query}")
        assert answer.ok, (answer.status, answer.text())
        text = answer.body().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_a_sensitive_viewer_sees_a_blurred_prior_clearly_for_a_typed_reason(
    stack: WebStack, nurse: Phone, playwright: Playwright, browser: Browser
) -> None:
    nurse.launch(_launch_url(stack, "enc-smith-a", VERA))
    assert "sensitive-viewer" in nurse.api("/api/v1/session")["roles"]
    prior = _blurred_prior(nurse)
    sop = prior.get_attribute("data-sop")
    show = prior.locator("button.unblur")
    assert show.inner_text() == "Show clearly"
    assert "clearly" in (show.get_attribute("aria-label") or "")
    show.click()
    box = nurse.page.locator("#unblur-box")
    assert box.is_visible()
    assert "At least 10 characters" in nurse.page.inner_text("#unblur-hint")
    _audit(nurse, "break-the-glass reason")

    # Too short: the service refuses (422) and the phone shows its sentence; nothing is shown.
    nurse.page.fill("#unblur-reason", "  need it ")
    nurse.page.click("#unblur-form button[type=submit]")
    nurse.page.wait_for_selector("#unblur-message[data-kind='error']")
    assert "at least 10 characters" in nurse.page.inner_text("#unblur-message")
    assert nurse.page.is_hidden("#unblur-image")

    nurse.page.fill("#unblur-reason", REASON)
    nurse.page.click("#unblur-form button[type=submit]")
    image = nurse.page.locator("#unblur-image")
    nurse.page.wait_for_function(
        "() => { const i = document.querySelector('#unblur-image');"
        " return !i.hidden && i.complete && i.naturalWidth > 0; }"
    )
    url = image.get_attribute("src") or ""
    assert url.startswith("blob:")
    assert "shown clearly" in (image.get_attribute("alt") or "")
    # Done: the reason form is closed and emptied; the clear photo and "Hide" stay.
    assert nurse.page.is_hidden("#unblur-form")
    assert nurse.page.input_value("#unblur-reason") == ""
    assert nurse.page.inner_text("#unblur-message").startswith("Shown clearly for you")
    assert nurse.page.is_visible("#unblur-hide")
    assert nurse.page.evaluate(BLOB_STATE, url) == "readable"
    shown = nurse.page.evaluate(SHOWN_PNG)
    clear = _sharpness(base64.b64decode(shown.split(",", 1)[1]))
    blurred = _sharpness(nurse.page.request.get(_image_url(prior)).body())
    assert clear > 2 * blurred, (clear, blurred)
    _audit(nurse, "break-the-glass clear image")
    image.scroll_into_view_if_needed()
    nurse.shot("14-unblurred")

    # The screen changes: the clear image and its object URL are gone.
    nurse.page.click("#details-change")
    nurse.wait_screen("site")
    assert nurse.page.evaluate(BLOB_STATE, url) == "revoked"
    assert image.get_attribute("src") is None and box.is_hidden()
    cached = [path for paths in nurse.storage()["caches"].values() for path in paths]
    assert not [path for path in cached if path.startswith("/api/")]  # never stored

    # The trail: the break-glass events (the reason in their detail), beside the HTTP requests.
    rows = _audit_rows(stack, playwright, browser, "100002")
    glass = [r for r in rows if r["action"] == "unblur" and not r["route"]]
    assert [(r["outcome"], r["sop_instance_uid"]) for r in glass] == [
        ("refused", sop),
        ("success", sop),
    ], glass
    requests = [r for r in rows if r["action"] == "unblur" and r["route"]]
    assert [r["http_status"] for r in requests] == ["422", "200"]
    refused, granted = glass
    assert "no usable reason" in refused["detail"] and "need it" in refused["detail"]
    assert granted["detail"] == f"reason: {REASON}"
    assert granted["actor"].endswith(f"/Practitioner/{VERA}")


def test_a_clinician_is_not_offered_to_unblur(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-okada"))  # Nurse Nina: clinician only
    assert "sensitive-viewer" not in nurse.api("/api/v1/session")["roles"]
    prior = _blurred_prior(nurse)
    assert "blurred" in (prior.locator("img").get_attribute("alt") or "")
    assert nurse.page.locator("#priors button").count() == 0
    assert nurse.page.is_hidden("#unblur-box")
