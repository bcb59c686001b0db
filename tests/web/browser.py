"""Debian's Chromium driven by Playwright, as a phone, and the PWA's screens as steps.

RECIPES.md "Headless Chromium with Playwright": the system ``/usr/bin/chromium`` (never a
downloaded browser), with the flags that keep it off the internet, and a fake camera so the
live preview runs headless. ``Phone`` drives the client the way a nurse does (tap the map,
take a photo with the file input, send) and reads what only the page knows (IndexedDB).
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Response,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.deliver.service_process import REPO

#: Debian's Chromium (``CAPTURE_TEST_CHROMIUM`` only to prove a missing one fails the tests).
CHROMIUM = Path(os.environ.get("CAPTURE_TEST_CHROMIUM", "/usr/bin/chromium"))

#: ``make test`` installs chromium (Makefile APT_TEST); without it these tests fail, not skip.
#: (The fixture is in tests/conftest.py, so every suite that drives the browser has it.)
requires_chromium = pytest.mark.usefixtures("chromium_installed")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",  # grant the camera without a prompt
    "--use-fake-device-for-media-stream",  # a synthetic camera picture
]
DEVICE = "Pixel 7"
SCREENS = REPO / "var" / "test-artifacts" / "screens"

#: Everything the client keeps in IndexedDB: database name -> store -> records, with every
#: binary value summarised as {bytes: length, head: first 4 bytes in hex}.
#: Nothing on the page is still loading (the PWA marks what it fills later ``aria-busy``).
_SETTLED = "() => !document.querySelector('[aria-busy=\"true\"]')"
_IDB_DUMP = (Path(__file__).parent / "idb_dump.js").read_text()


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def phone_context(playwright: Playwright, browser: Browser, **options: Any) -> BrowserContext:
    """A new Pixel 7 (touch, 412x915 CSS px) with its own cookies, storage and camera grant."""
    context = browser.new_context(**playwright.devices[DEVICE], **options)
    context.set_default_timeout(15_000)
    return context


class Phone:
    """One page of the PWA, driven through its visible controls."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        """Errors the page logs (CSP violations among them); not the browser's own line for a
        request that failed on purpose (offline, a refused upload), which the test asserts."""
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    # --- screens -------------------------------------------------------------------------------

    def screen(self) -> str:
        return str(self.page.evaluate("document.body.dataset.screen"))

    def wait_screen(self, name: str, timeout: float = 15_000) -> None:
        self.page.wait_for_selector(f"#screen-{name}:not([hidden])", timeout=timeout)

    def shot(self, name: str) -> Path:
        """What the phone's screen shows now (CSS pixels), in var/test-artifacts/screens/."""
        SCREENS.mkdir(parents=True, exist_ok=True)
        path = SCREENS / f"{name}.png"
        self.page.screenshot(path=str(path), scale="css")
        return path

    # --- the flow ------------------------------------------------------------------------------

    def launch(self, url: str) -> None:
        """Click "Launch capture" in the EHR: SMART launch, then the site screen (its map
        labelled with the service's site names)."""
        self.page.goto(url)
        self.wait_screen("site")
        self.page.wait_for_selector("#bodymap[data-named='true']")

    def banner(self) -> str:
        return self.page.inner_text("#banner")

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def settle(self, timeout: float = 10_000) -> None:
        """Wait (at most ``timeout`` ms, then go on) until no part of the page is marked
        ``aria-busy``: content still loading there may move or redraw what a tap aims at, as a
        phone user sees it settle before tapping. Playwright's own wait for a still element
        does not cover a redraw between the press and the release."""
        with suppress(PlaywrightTimeoutError):  # a request that hangs on purpose: tap anyway
            self.page.wait_for_function(_SETTLED, timeout=timeout)

    def click(self, selector: str) -> None:
        self.settle()
        self.page.click(selector)

    def fill(self, selector: str, text: str) -> None:
        self.page.fill(selector, text)

    def evaluate(self, function: str, arg: Any = None) -> Any:
        """Await ``function`` (JavaScript ``async (arg) => value``) in the page."""
        return self.page.evaluate(function, arg)

    def tap_region(self, code: str, side: str = "", view: str = "front") -> None:
        self.page.click(f"#view-{view}")
        self.settle()
        self.page.click(f'#bodymap [data-code="{code}"][data-side="{side}"]')
        self.wait_screen("details")

    def search_site(self, query: str, pick: str) -> None:
        self.page.fill("#site-search", query)
        self.page.locator("#site-results").get_by_role("button", name=pick, exact=True).click()
        self.wait_screen("details")

    def take_photo(self, path: Path) -> None:
        """From the details screen: "Take photos", then the phone camera (a file) -> review."""
        if self.screen() == "screen-details":
            self.settle()
            self.page.click("#details-take")
            self.wait_screen("camera")
        self.page.set_input_files("#photo-input", str(path))
        self.wait_screen("review")

    def send(self) -> float:
        """Press send; returns the monotonic time of the click."""
        started = time.monotonic()
        self.page.click("#review-send")
        self.wait_screen("send")
        return started

    def wait_states(self, state: str, count: int = 1, timeout: float = 30_000) -> None:
        self.page.wait_for_function(
            "([state, count]) => document.querySelectorAll("
            "`#send-list li[data-state='${state}']`).length >= count",
            arg=[state, count],
            timeout=timeout,
        )

    def wait_text(self, selector: str, text: str, timeout: float = 30_000) -> None:
        """Until the element's text contains ``text``; on a timeout, say what it and the page's
        messages said instead (a flaky wait is then diagnosable from the CI log alone)."""
        try:
            self.page.wait_for_function(
                "([selector, text]) => document.querySelector(selector)?.innerText.includes(text)",
                arg=[selector, text],
                timeout=timeout,
            )
        except PlaywrightTimeoutError:
            shown = self.page.evaluate(_SHOWN, selector)
            raise AssertionError(
                f"{selector} did not say {text!r} within {timeout / 1000:g} s; the page shows "
                f"{shown}; page errors: {self.errors}"
            ) from None

    def states(self) -> list[str]:
        script = "rows => rows.map(r => r.dataset.state)"
        return list(self.page.eval_on_selector_all("#send-list li", script))

    # --- what the phone keeps ------------------------------------------------------------------

    def indexeddb(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        dump: dict[str, dict[str, list[dict[str, Any]]]] = self.page.evaluate(_IDB_DUMP)
        return dump

    def queued(self) -> list[dict[str, Any]]:
        return self.indexeddb().get("capture-queue", {}).get("photos", [])

    def storage(self) -> dict[str, Any]:
        """What else a page can leave behind: Web Storage and Cache Storage (URLs)."""
        script = (Path(__file__).parent / "storage_dump.js").read_text()
        dump: dict[str, Any] = self.page.evaluate(script)
        return dump

    # --- the phone's network and tabs (tests/web/phone.py's PhoneDriver) ------------------------

    def go_offline(self) -> None:
        self.page.context.set_offline(True)

    def go_online(self) -> None:
        self.page.context.set_offline(False)

    def clear_cookies(self) -> None:
        self.page.context.clear_cookies()

    def reload(self) -> None:
        self.page.reload()

    def reopen(self) -> Phone:
        """This tab is closed and the app opened in a new one (same cookies and storage)."""
        page = self.page.context.new_page()
        self.page.close()
        return Phone(page)

    # --- the service, with this phone's session cookie ------------------------------------------

    def api(self, path: str) -> Any:
        origin = "/".join(self.page.url.split("/")[:3])
        response = self.page.request.get(origin + path)
        assert response.ok, (path, response.status, response.text())
        return response.json()

    def captures(self) -> list[dict[str, Any]]:
        """This session's captures as the service has them."""
        context_id = self.api("/api/v1/session")["context_id"]
        captures: list[dict[str, Any]] = self.api(f"/api/v1/captures?context_id={context_id}")
        return captures


#: What a failed ``wait_text`` reports: the element (absent, hidden or its text), and the
#: text of every visible message of the page.
_SHOWN = """(selector) => {
  const element = document.querySelector(selector);
  const state = !element ? "absent" : element.hidden ? "hidden" : JSON.stringify(element.innerText);
  const messages = [...document.querySelectorAll(".message:not([hidden])")].map(
    (m) => `#${m.id}: ${m.innerText}`);
  return `${selector}: ${state}; messages: ${JSON.stringify(messages)}`;
}"""


def gzip_size(body: bytes) -> int:
    """Bytes on the wire for a body compressed like ``gzip -9``."""
    return len(gzip.compress(body, compresslevel=9, mtime=0))


def first_load(nurse: Phone, url: str, origin: str) -> dict[str, int]:
    """Open ``url`` (the EHR's launch link) in a fresh phone and return every distinct resource
    of ``origin`` fetched until the site screen is up and the network idle (page and service
    worker alike), as path -> gzip -9 size. Redirects (no body) are not counted."""
    seen: dict[str, Response] = {}

    def keep(response: Response) -> None:
        if response.url.startswith(origin) and response.status == 200:
            seen.setdefault(response.url[len(origin) :], response)

    nurse.page.context.on("response", keep)
    nurse.launch(url)
    nurse.page.wait_for_load_state("networkidle")
    nurse.page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    nurse.page.context.remove_listener("response", keep)
    bodies = {}
    for path, response in seen.items():
        try:
            bodies[path] = response.body()
        except PlaywrightError:
            bodies[path] = b""
        if not bodies[path]:  # fetched by the browser itself (manifest, icons, worker)
            bodies[path] = nurse.page.request.get(origin + path).body()
    return {path: gzip_size(body) for path, body in bodies.items()}


@contextmanager
def phone(playwright: Playwright, browser: Browser, **options: Any) -> Iterator[Phone]:
    context = phone_context(playwright, browser, **options)
    try:
        yield Phone(context.new_page())
    finally:
        context.close()
