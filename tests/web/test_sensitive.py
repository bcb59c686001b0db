"""Sensitive sites and wound-care comparison: the flag is suggested for sensitive sites, prior
photos of the site are shown with sensitive ones blurred, and the latest prior is laid over
the live camera."""

from __future__ import annotations

import io
import json
import time

import numpy as np
from PIL import Image, ImageFilter
from playwright.sync_api import Locator, Route

from tests.conftest import SAMPLES
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

SKIN_OF_FACE = "73897004"
SKIN_OF_BUTTOCK = "22180002"
SKIN_OF_ANTERIOR_THIGH = "61248009"
PHOTO = SAMPLES / "orientation" / "landscape_1.jpg"
#: An earlier photo as the timeline lists it (GET .../timeline).
_STALE_ITEM = {
    "acquired": "20260101",
    "thumbnail_url": "/app/icons/icon-192.png",
    "preview_url": "/app/icons/icon-192.png",
    "blurred": False,
    "unblur_url": None,
    "sop_instance_uid": "1.2.3",
}


def _sharpness(jpeg: bytes) -> float:
    """Mean absolute Laplacian of the grey image: high for a clear photo, low once blurred."""
    grey = Image.open(io.BytesIO(jpeg)).convert("L")
    edges = np.asarray(grey.filter(ImageFilter.FIND_EDGES), dtype=np.float64)
    return float(edges[2:-2, 2:-2].mean())


def _photograph(nurse: Phone, sensitivity: str) -> None:
    """From the site screen: the left thigh, with this sensitivity, one photo, until verified."""
    nurse.tap_region(SKIN_OF_ANTERIOR_THIGH, "L")
    nurse.page.check(f'input[name="sensitivity"][value="{sensitivity}"]')
    nurse.take_photo(PHOTO)
    nurse.send()
    nurse.wait_states("verified")
    nurse.page.click("#send-other")
    nurse.wait_screen("site")


def test_sensitive_sites_suggest_the_flag(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-smith-b"))
    nurse.tap_region(SKIN_OF_FACE)
    assert nurse.page.is_checked('input[name="sensitivity"][value="restricted"]')
    notice = nurse.page.inner_text("#sensitivity-suggested")
    assert "identifiable face" in notice
    nurse.shot("08-sensitive-suggested")

    nurse.page.click("#details-change")
    nurse.tap_region(SKIN_OF_BUTTOCK, "L", view="back")
    assert nurse.page.is_checked('input[name="sensitivity"][value="restricted"]')
    assert nurse.page.is_visible("#sensitivity-suggested")

    nurse.page.click("#details-change")
    nurse.tap_region(SKIN_OF_ANTERIOR_THIGH, "R")
    assert nurse.page.is_checked('input[name="sensitivity"][value="normal"]')
    assert nurse.page.is_hidden("#sensitivity-suggested")


def test_take_photos_stays_where_it_was_when_the_earlier_photos_answer(
    stack: WebStack, nurse: Phone
) -> None:
    """The details screen asks for the site's earlier photos as it opens; "No earlier photos"
    arrived a moment later, one line above "Take photos", and pushed the button down under a
    finger about to tap it (the tap then hit nothing). The line is kept for the message, and
    an answer for a side no longer chosen is dropped."""
    held: list[Route] = []
    nurse.page.route("**/timeline?*", lambda route: held.append(route))
    nurse.page.set_viewport_size({"width": 412, "height": 2000})  # the button in its place
    nurse.launch(stack.launch_url("enc-smith-b"))
    nurse.page.click("#view-front")
    nurse.settle()
    nurse.page.click(f'#bodymap [data-code="{SKIN_OF_ANTERIOR_THIGH}"][data-side="R"]')
    nurse.wait_screen("details")
    assert nurse.page.get_attribute("#priors", "aria-busy") == "true"
    before = nurse.page.locator("#details-take").bounding_box()
    nurse.page.check('input[name="side"][value="L"]')  # the other side: a second request
    deadline = time.monotonic() + 10
    while len(held) < 2 and time.monotonic() < deadline:
        nurse.page.wait_for_timeout(20)
    assert len(held) == 2 and "laterality=L" in held[1].request.url
    held[1].continue_()  # the side now chosen answers first...
    nurse.page.wait_for_selector("#priors:not([aria-busy])", state="attached")
    message = nurse.page.inner_text("#priors-message")
    after = nurse.page.locator("#details-take").bounding_box()
    # ...then the right thigh's answer, no longer wanted (one photo, so it would show)
    stale = {"items": [_STALE_ITEM], "healing": None}
    held[0].fulfill(status=200, content_type="application/json", body=json.dumps(stale))
    nurse.page.wait_for_load_state("networkidle")
    assert message and nurse.page.inner_text("#priors-message") == message
    assert nurse.page.locator("#priors li").count() == 0
    assert before is not None and after is not None
    assert after["y"] == before["y"], (before, after)


def test_priors_of_sensitive_photos_are_blurred_and_the_latest_overlays_the_camera(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-smith-b"))
    _photograph(nurse, "normal")
    _photograph(nurse, "restricted")

    nurse.tap_region(SKIN_OF_ANTERIOR_THIGH, "L")
    priors = nurse.page.locator("#priors li")
    priors.nth(1).locator("img").wait_for()
    assert priors.count() == 2
    newest, oldest = priors.nth(0), priors.nth(1)  # shown newest first
    assert newest.get_attribute("data-blurred") == "true"
    assert oldest.get_attribute("data-blurred") == "false"
    assert "blurred" in (newest.locator("img").get_attribute("alt") or "")
    loaded = "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)"
    nurse.page.wait_for_function(f"() => ({loaded})([...document.querySelectorAll('#priors img')])")
    nurse.page.evaluate("document.querySelector('#priors').scrollIntoView({block: 'center'})")
    nurse.shot("09-priors-blurred")
    clear = _sharpness(nurse.page.request.get(_image_url(oldest)).body())
    blurred = _sharpness(nurse.page.request.get(_image_url(newest)).body())
    assert blurred < clear / 3, (blurred, clear)

    # The live camera with the latest prior (the restricted one: blurred too) over it.
    nurse.page.click("#details-take")
    nurse.wait_screen("camera")
    nurse.page.click("#live-start")
    nurse.page.wait_for_function("() => document.querySelector('#live-video').videoWidth > 0")
    overlay = nurse.page.locator("#live-overlay")
    assert overlay.is_visible()
    assert "size=1024" in (overlay.get_attribute("src") or "")
    assert "/timeline/" in (overlay.get_attribute("src") or "")
    assert overlay.evaluate("img => getComputedStyle(img).opacity") == "0.4"
    nurse.page.fill("#overlay-opacity", "60")
    assert overlay.evaluate("img => getComputedStyle(img).opacity") == "0.6"
    nurse.shot("10-live-overlay")
    nurse.page.click("#live-shutter")
    nurse.wait_text("#camera-count", "1 photo taken")
    nurse.page.click("#camera-review")
    nurse.wait_screen("review")
    assert nurse.page.locator("#review-list canvas").count() == 1
    assert nurse.page.evaluate("() => document.querySelector('#live-video').srcObject") is None


def _image_url(item: Locator) -> str:
    origin = "/".join(item.page.url.split("/")[:3])
    return origin + (item.locator("img").get_attribute("src") or "")
