"""The development EHR sandbox's page on a phone: a new user opens it there first, to launch
capture, so it has a phone viewport and fits a 390 px screen without sideways scrolling."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser

from tests.web.browser import SCREENS, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

#: A small current phone (iPhone 12-15), in CSS pixels.
PHONE_WIDTH = 390
#: WCAG 2.2 SC 2.5.8 (AA) minimum target size, in CSS pixels.
MIN_TARGET_PX = 24
_LAYOUT = """() => ({
  inner: window.innerWidth,
  scroll: document.documentElement.scrollWidth,
  wider: [...document.body.querySelectorAll('*')]
    .filter(n => n.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map(n => n.tagName + ': ' + n.textContent.slice(0, 40)),
  links: [...document.querySelectorAll('a')].map(a => {
    const b = a.getBoundingClientRect();
    return {text: a.textContent, w: b.width, h: b.height};
  }),
})"""


def test_the_sandbox_ehr_page_fits_a_phone(stack: WebStack, browser: Browser) -> None:
    context = browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = context.new_page()
        page.goto(f"{stack.sandbox.state.base_url}/")
        viewport = page.locator('meta[name="viewport"]')
        assert viewport.count() == 1
        assert viewport.get_attribute("content") == "width=device-width, initial-scale=1"
        layout: dict[str, Any] = page.evaluate(_LAYOUT)
        assert layout["inner"] == PHONE_WIDTH  # laid out for the phone, not a 980 px desktop
        assert layout["scroll"] <= PHONE_WIDTH and layout["wider"] == [], layout
        launches = [link for link in layout["links"] if link["text"] == "Launch capture"]
        assert len(launches) >= 5
        for link in layout["links"]:
            assert link["h"] >= MIN_TARGET_PX and link["w"] >= MIN_TARGET_PX, link
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "00-sandbox-ehr.png"))
    finally:
        context.close()
