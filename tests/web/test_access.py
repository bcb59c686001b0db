"""Accessibility and ergonomics on every screen, measured in the browser: WCAG 2.1 AA text
contrast (1.4.3), touch targets of at least 48x48 CSS px, and a name for every control."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Playwright

from tests.conftest import SAMPLES
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

_HERE = Path(__file__).parent
CONTRAST = (_HERE / "contrast.js").read_text()
CONTROLS = (_HERE / "controls.js").read_text()


def _audit(nurse: Phone, screen: str, *, controls: int = 1) -> None:
    """At least ``controls`` controls on screen, every one large and named; no faint text."""
    contrast = nurse.page.evaluate(CONTRAST)
    assert contrast["checked"] >= 3 and contrast["failures"] == [], (screen, contrast)
    found = nurse.page.evaluate(CONTROLS)
    assert found["checked"] >= controls and found["problems"] == [], (screen, found)
    overflow = "document.documentElement.scrollWidth - window.innerWidth"
    assert nurse.page.evaluate(overflow) <= 0, screen  # one hand scrolls up and down only


def test_every_screen_has_readable_text_large_targets_and_named_controls(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.page.goto(stack.api.url + "/")
    nurse.page.wait_for_selector("#patient-message:not([hidden])")
    _audit(nurse, "not signed in", controls=0)

    nurse.launch(stack.launch_url("enc-okada"))
    nurse.page.fill("#site-search", "face")
    results = nurse.page.locator("#site-results")
    results.get_by_role("button", name="Skin of face", exact=True).wait_for()
    _audit(nurse, "site with search results")

    results.get_by_role("button", name="Skin of face", exact=True).click()
    nurse.wait_screen("details")
    assert nurse.page.is_visible("#sensitivity-suggested")
    _audit(nurse, "details with a suggested flag")

    nurse.page.click("#details-take")
    nurse.wait_screen("camera")
    _audit(nurse, "camera")
    nurse.page.click("#live-start")
    nurse.page.wait_for_function("() => document.querySelector('#live-video').videoWidth > 0")
    _audit(nurse, "live camera")
    nurse.page.click("#live-stop")

    nurse.take_photo(SAMPLES / "orientation" / "portrait_3.jpg")
    _audit(nurse, "review")
    nurse.send()
    nurse.wait_states("verified")
    _audit(nurse, "sent")


def test_a_small_iphone_screen_fits_the_map_and_the_banner(
    stack: WebStack, playwright: Playwright, browser: Browser
) -> None:
    """iPhone SE size (375x667), the smallest phone in use: nothing runs off the side."""
    context = browser.new_context(**playwright.devices["iPhone SE"])
    try:
        nurse = Phone(context.new_page())
        nurse.launch(stack.launch_url("enc-muller"))
        _audit(nurse, "site on an iPhone SE")
        nurse.tap_region("70559009", "L")
        _audit(nurse, "details on an iPhone SE")
        assert nurse.errors == []
    finally:
        context.close()
