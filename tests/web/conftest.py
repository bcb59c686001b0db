"""Fixtures of the browser suite: one real stack for the whole session.

Chromium itself is shared with the other browser tests (tests/conftest.py).

Every test gets its own phone (a fresh browser context: no cookies, no storage) and its own
EHR launch; tests photograph different sandbox patients so their priors never mix.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright

from tests.web.browser import Phone, phone
from tests.web.stack import WebStack, web_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    with web_stack(tmp_path_factory.mktemp("web")) as running:
        yield running


@pytest.fixture
def nurse(playwright: Playwright, browser: Browser) -> Iterator[Phone]:
    """A fresh phone; the test fails if the page logged an error (CSP violations included)."""
    with phone(playwright, browser) as device:
        yield device
        assert device.errors == [], device.errors
