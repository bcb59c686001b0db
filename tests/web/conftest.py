"""Fixtures of the browser suite: one real stack for the whole session.

Chromium itself is shared with the other browser tests (tests/conftest.py).

Every test gets its own phone (a fresh browser context: no cookies, no storage) and its own
EHR launch; tests photograph different sandbox patients so their priors never mix.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright

from tests.web.browser import Phone
from tests.web.browser import phone as chromium_phone
from tests.web.phone import PhoneDriver
from tests.web.stack import WebStack, web_stack
from tests.webkit.phone import (
    WebKitBrowser,
    console_errors,
    port_of,
    require_webkit,
    webkit_browser,
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    with web_stack(tmp_path_factory.mktemp("web")) as running:
        yield running


@pytest.fixture
def nurse(playwright: Playwright, browser: Browser) -> Iterator[Phone]:
    """A fresh phone; the test fails if the page logged an error (CSP violations included)."""
    with chromium_phone(playwright, browser) as device:
        yield device
        assert device.errors == [], device.errors


# --- one phone, two engines (tests/web/phone.py's PhoneDriver): tests that take ``phone`` ----


@pytest.fixture(scope="module")
def webkit_installed() -> None:
    """A missing WebKit fails these tests (before the stack starts): never a skip."""
    require_webkit()


@pytest.fixture(scope="module")
def webkit(
    webkit_installed: None, stack: WebStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebKitBrowser]:
    """One WebKit phone browser per test module, reaching the stack's API and EHR sandbox."""
    ports = [port_of(stack.api.url), port_of(stack.sandbox.state.base_url)]
    workdir = tmp_path_factory.mktemp("webkit")
    with webkit_browser(workdir, ports) as browser:
        yield browser
    assert console_errors(workdir / "webdriver.log") == []  # the whole module's, once it quit


@pytest.fixture(params=["chromium", "webkit"])
def phone(request: pytest.FixtureRequest) -> Iterator[PhoneDriver]:
    """A fresh phone in each engine; fails if the page reported an error."""
    if request.param == "chromium":
        request.getfixturevalue("chromium_installed")
        yield request.getfixturevalue("nurse")  # the nurse fixture checks its errors itself
        return
    device = request.getfixturevalue("webkit").fresh_phone()
    yield device
    device.collect_errors()
    assert device.errors == [], device.errors
