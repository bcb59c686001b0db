"""WebKit, the engine of Safari, as a phone: Debian's WebKitGTK driven by Selenium.

RECIPES.md "WebKit, the engine of Safari": Selenium talks WebDriver to Debian's
``/usr/bin/WebKitWebDriver``, which starts our phone browser (``phone_browser.py``, run by
the system Python because PyGObject is Debian's) on a virtual X display, in the phone's own
network namespace (``network.py``). Nothing is downloaded: the driver's path is given, so
Selenium Manager (which could fetch drivers) is never asked, and the session fails if it is.

``WebKitPhone`` has the verbs of the Playwright ``Phone`` (tests/web/phone.py's
``PhoneDriver``), so a test can run in both engines. Clicks are WebDriver mouse clicks: WebKitGTK
emulates no touch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import urllib3
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.driver_finder import DriverFinder
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.common.webdriver import LocalWebDriver
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.webkitgtk.options import Options
from selenium.webdriver.webkitgtk.service import Service
from urllib3.util.retry import Retry

from tests.deliver.service_process import REPO
from tests.webkit.display import VirtualDisplay
from tests.webkit.network import PhoneNetwork
from tests.webkit.processes import names, process_tree, wait_gone

#: Debian's webkit2gtk-driver (``CAPTURE_TEST_WEBKITDRIVER`` only to prove a missing one fails).
WEBDRIVER = Path(os.environ.get("CAPTURE_TEST_WEBKITDRIVER", "/usr/bin/WebKitWebDriver"))
#: Debian's Python, which has PyGObject (python3-gi) and the WebKit2 4.1 typelib.
SYSTEM_PYTHON = "/usr/bin/python3"
BROWSER = Path(__file__).with_name("phone_browser.py")
SCREENS = REPO / "var" / "test-artifacts" / "screens"
_WEB = REPO / "tests" / "web"
_IDB_DUMP = (_WEB / "idb_dump.js").read_text()
_STORAGE_DUMP = (_WEB / "storage_dump.js").read_text()
#: Runs one of the ``async () => ...`` dump scripts and hands its result to WebDriver.
_ASYNC = """const done = arguments[arguments.length - 1];
const args = [...arguments].slice(0, -1);
({})(...args).then(done, (e) => done({{error: String(e)}}));"""


def webkit_missing() -> str | None:
    """Why WebKit cannot run here (``make test`` installs it: Makefile APT_TEST), or None."""
    for path in (WEBDRIVER, Path("/usr/bin/Xvfb")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: run `make test` (Makefile APT_TEST installs WebKit)"
    probe = "import gi; gi.require_version('Gtk', '3.0'); gi.require_version('WebKit2', '4.1')"
    result = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True)
    if result.returncode:
        return f"{SYSTEM_PYTHON} lacks PyGObject or WebKit2 4.1: {result.stderr.strip()[-300:]}"
    return None


def require_webkit() -> None:
    """Fail (never skip) the calling test when WebKit is missing: a skipped WebKit suite would
    let CI pass with Safari's engine untested."""
    missing = webkit_missing()
    if missing:
        pytest.fail(missing, pytrace=False)


#: What WebKit writes to the console (phone_browser.py sends it to WebKitWebDriver's log).
_CONSOLE_ERROR = re.compile(r"CONSOLE (\w+ )?ERROR")
#: WebKit has no CSP ``manifest-src`` (Safari logs "Unrecognized ... directive" on every page):
#: harmless, the service's ``default-src 'self'`` covers the manifest in WebKit.
_HARMLESS = ("Unrecognized Content-Security-Policy directive 'manifest-src'",)
#: Errors a test causes on purpose carry this in their text or URL.
EXPECTED = "capture-test-expected"


def console_errors(log: Path) -> list[str]:
    """Error lines the browser wrote to its console, read once it has quit (its processes
    buffer their output): what the Chromium harness catches from the console per page, and the
    in-page recorder cannot see (an unsupported CSP directive, for one)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [
        line
        for line in lines
        if _CONSOLE_ERROR.search(line)
        and EXPECTED not in line
        and not any(harmless in line for harmless in _HARMLESS)
    ]


#: Seconds any one WebDriver command may take. Selenium's default is none (the socket default):
#: a browser that stopped answering would hold the test, and CI's whole run, until CI's limit.
#: Commands here take well under a second; page loads and scripts have their own, shorter,
#: WebDriver timeouts, so this is only ever reached by a browser that hangs.
COMMAND_TIMEOUT = 120
#: Seconds a new session may take: the browser starts and links to WebKitWebDriver in 1-3 s.
#: In one CI run the link never came (the browser's own inspector server refused its
#: connection: "RemoteInspector failed to connect", in ``webdriver.log``) and the new-session
#: request waited out ``COMMAND_TIMEOUT``; ``webkit_browser`` then starts the browser again.
SESSION_TIMEOUT = 60
#: Seconds after which closing a browser is reported (``close_browser``): it takes 0.1-1 s.
SLOW_CLOSE = 5.0


class _WebKitGTK(webdriver.WebKitGTK):
    """Selenium's WebKitGTK driver with ``COMMAND_TIMEOUT`` on every command, the session's
    creation included. (Its constructor takes no client configuration, so this repeats its
    three steps with one.)"""

    def __init__(self, options: Options, service: Service) -> None:
        self.options = options
        self.service = service
        self.service.path = DriverFinder(self.service, self.options).get_driver_path()
        self.service.start()
        # A command whose answer is late is not sent again (urllib3 would, three times):
        # it failed. Connecting is still retried.
        pool = {"retries": Retry(total=3, read=0)}
        config = ClientConfig(
            self.service.service_url,
            timeout=SESSION_TIMEOUT,  # the new session's; every later command's is below
            # (Selenium reads this one level down.)
            init_args_for_pool_manager={"init_args_for_pool_manager": pool},
        )
        assert self.service.process is not None
        group = self.service.process.pid  # WebKitWebDriver leads a process group of its own
        try:
            LocalWebDriver.__init__(  # type: ignore[no-untyped-call]  # (*args, **kwargs)
                self,
                command_executor=self.service.service_url,
                options=options,
                client_config=config,
            )
        except Exception:
            self.quit()
            # Selenium stopped WebKitWebDriver already: a browser it started that never linked
            # up is init's child now, outside any tree, but still in the driver's group.
            with suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            raise
        config.timeout = COMMAND_TIMEOUT


def _started(options: Options, env: dict[str, str], log: Path) -> _WebKitGTK:
    """A WebDriver session on a new browser; started once more if the first gets none within
    ``SESSION_TIMEOUT`` (a warning says so: it is WebKitGTK's start that failed, not a test)."""
    try:
        return _WebKitGTK(options=options, service=_driver_service(env, log))
    except (urllib3.exceptions.HTTPError, TimeoutError) as exc:  # read timeouts
        warnings.warn(
            f"WebKit: no session within {SESSION_TIMEOUT} s ({type(exc).__name__}); "
            "starting the browser again",
            stacklevel=2,
        )
    return _WebKitGTK(options=options, service=_driver_service(env, log))


def _driver_service(env: dict[str, str], log: Path) -> Service:
    """WebKitWebDriver, leading a process group of its own (see ``_WebKitGTK``)."""
    return Service(
        executable_path=str(WEBDRIVER),
        env=env,
        log_output=str(log),
        popen_kw={"start_new_session": True},
    )


def _no_selenium_manager(*_args: object, **_kwargs: object) -> dict[str, str]:
    raise AssertionError("Selenium Manager was asked for a driver: it could download one")


class WebKitBrowser:
    """One WebKitGTK browser process for many tests, each on a clean phone (``fresh_phone``)."""

    def __init__(self, driver: webdriver.WebKitGTK, network: PhoneNetwork) -> None:
        self.driver = driver
        self.network = network
        self.driver.set_script_timeout(30)

    def fresh_phone(self) -> WebKitPhone:
        """One window, no cookies, storage, caches or service workers left by earlier tests."""
        self.network.go_online()
        handles = self.driver.window_handles
        self.driver.switch_to.new_window("window")
        keep = self.driver.current_window_handle
        for handle in handles:
            self.driver.switch_to.window(handle)
            self.driver.close()
        self.driver.switch_to.window(keep)
        self.driver.get("capture-test:reset")
        self.driver.find_element(By.ID, "reset")
        return WebKitPhone(self.driver, self.network)


@contextmanager
def webkit_browser(
    workdir: Path, ports: list[int], *, keep_profile: bool = False
) -> Iterator[WebKitBrowser]:
    """Xvfb, the phone's network (the stack's ``ports`` reachable), the browser and its
    WebDriver session; all stopped on exit. WebKitWebDriver's log (with the browser's console)
    is ``workdir/webdriver.log``: see ``console_errors``. The browser's persistent data (its
    IndexedDB, caches, service workers...) is ``workdir/profile``, emptied first unless
    ``keep_profile`` (the same phone's browser started again)."""
    missing = webkit_missing()
    if missing:
        raise RuntimeError(missing)
    profile = workdir / "profile"
    if not keep_profile:
        shutil.rmtree(profile, ignore_errors=True)
    with ExitStack() as stack:
        display = stack.enter_context(VirtualDisplay())
        network = stack.enter_context(PhoneNetwork())
        for port in ports:
            network.expose(port)
        options = Options()
        options.binary_location = SYSTEM_PYTHON
        for argument in (str(BROWSER), "--profile", str(profile), "--netns", network.path):
            options.add_argument(argument)
        env = dict(os.environ, DISPLAY=display.name, GDK_SCALE="2", NO_AT_BRIDGE="1")
        env.pop("WAYLAND_DISPLAY", None)
        with (
            mock.patch.object(SeleniumManager, "binary_paths", _no_selenium_manager),
            warnings.catch_warnings(),
        ):
            # Selenium's own WebKitGTK class still uses a keyword it deprecated (4.51).
            warnings.filterwarnings("ignore", "setting remote_server_addr", DeprecationWarning)
            driver = _started(options, env, workdir / "webdriver.log")
        stack.callback(close_browser, driver)
        yield WebKitBrowser(driver, network)


def close_browser(driver: webdriver.WebKitGTK) -> None:
    """End the session and wait for every process of the browser (see ``processes.py``): the
    browser is then closed as a phone's is when its battery dies. Closing twice is harmless."""
    process = driver.service.process
    browser = process_tree(process.pid) if process is not None else set()
    called = names(browser)
    started = time.monotonic()
    try:
        driver.quit()
    except urllib3.exceptions.HTTPError:
        if process is None or process.poll() is None:
            raise  # a driver that is running but did not answer
        # WebKitWebDriver had already ended (killed): no session to delete, its browser to wait for
    hung = wait_gone(browser)
    took = time.monotonic() - started
    if hung or took > SLOW_CLOSE:
        # A warning, not a print: pytest lists it at the end of the run, passed or not, so
        # CI's log shows a browser slow to end (the suspected cause of a killed run), and
        # which of its processes had to be killed.
        killed = ", ".join(sorted(called.get(p, str(p[0])) for p in hung)) or "none"
        warnings.warn(
            f"WebKit: the closed browser's processes took {took:.1f} s to end (killed: {killed})",
            stacklevel=2,
        )


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


#: Nothing on the page is still loading (the PWA marks what it fills later ``aria-busy``).
_SETTLED = "return !document.querySelector('[aria-busy=\"true\"]')"

#: True when ``arguments[0]`` (scrolled to the middle of the screen) has kept its place for two
#: frames and is what a click on its centre would hit.
_READY_TO_CLICK = """const el = arguments[0];
el.scrollIntoView({block: "center", inline: "center"});
const where = () => JSON.stringify(el.getBoundingClientRect());
const before = where();
return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => {
  const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  done(r.width > 0 && where() === before && !!hit && (hit === el || el.contains(hit)));
})));"""


class WebKitPhone:
    """One window of the phone browser, driven through the PWA's visible controls."""

    def __init__(self, driver: webdriver.WebKitGTK, network: PhoneNetwork) -> None:
        self.driver = driver
        self.network = network
        self.handle = driver.current_window_handle
        self.errors: list[str] = []

    # --- plumbing ------------------------------------------------------------------------------

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def _async(self, function: str, *args: Any) -> Any:
        """Await ``function`` (``async (...args) => value``) in the page."""
        result = self.driver.execute_async_script(_ASYNC.format(function), *args)
        if isinstance(result, dict) and set(result) == {"error"}:
            raise AssertionError(f"in the page: {result['error']}")
        return result

    def until(self, script: str, *args: Any, timeout: float = 15_000, what: str = "") -> Any:
        """Poll ``script`` (a function body returning a value) until it is truthy."""
        deadline = time.monotonic() + timeout / 1000
        while True:
            value = self.js(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"WebKit: waited {timeout / 1000:.0f} s for {what or script}; {self.where()}"
                )
            time.sleep(0.05)

    def where(self) -> str:
        """Where the page is, for a failure message: URL, screen, sending states, messages (and
        the earlier sign-in's offer)."""
        script = """return {url: location.href, screen: document.body?.dataset.screen,
          messages: [...document.querySelectorAll("[id$=-message], #net-status, #queue-offer")]
            .filter((m) => m.innerText.trim()).map((m) => `${m.id}: ${m.innerText.trim()}`),
          sending: [...document.querySelectorAll("#send-list li")].map((r) => r.dataset.state),
          errors: window.__captureErrors || []}"""
        try:
            return str(self.js(script))
        except WebDriverException as error:
            return f"(the page does not answer: {error.msg})"

    def element(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def click(self, selector: str) -> None:
        self.tap(self.element(selector))

    def fill(self, selector: str, text: str) -> None:
        box = self.element(selector)
        box.clear()
        box.send_keys(text)

    def tap(self, element: WebElement, timeout: float = 15_000) -> None:
        """A mouse click once the element stands still and would get it, as Playwright checks
        before it clicks: WebDriver clicks the point where the element was, so a click while
        the layout moves (earlier photos arriving above a button) lands on something else.
        First, for at most 10 s, until nothing is marked ``aria-busy``: content still loading
        may move or redraw the element after it stood still (a request that hangs on purpose,
        offline, is then tapped through as before)."""
        with suppress(TimeoutError):
            self.until(_SETTLED, timeout=10_000, what="the page to settle")
        self.until(_READY_TO_CLICK, element, timeout=timeout, what="the element to click")
        element.click()

    def text(self, selector: str) -> str:
        """The element's rendered text (``innerText``, like Playwright's ``inner_text``)."""
        return str(self.js("return document.querySelector(arguments[0]).innerText", selector))

    def evaluate(self, function: str, arg: Any = None) -> Any:
        """Await ``function`` (JavaScript ``async (arg) => value``) in the page."""
        return self._async(function, arg)

    def page_errors(self) -> list[str]:
        """What the page recorded (phone_browser.py's recorder); [] on a page without it."""
        try:
            return list(self.js("return window.__captureErrors || []"))
        except WebDriverException:
            return []

    def collect_errors(self) -> None:
        """Keep this page's errors before it goes away (a navigation starts a new list)."""
        self.errors.extend(e for e in self.page_errors() if e not in self.errors)

    # --- screens -------------------------------------------------------------------------------

    def screen(self) -> str:
        return str(self.js("return document.body?.dataset.screen ?? ''"))

    def wait_screen(self, name: str, timeout: float = 15_000) -> None:
        selector = f"#screen-{name}:not([hidden])"
        self.until(
            "return !!document.querySelector(arguments[0])",
            selector,
            timeout=timeout,
            what=f"screen {name}",
        )

    def shot(self, name: str) -> Path:
        """What the phone's screen shows now (780x1688 pixels: 390x844 CSS px at 2x), in
        var/test-artifacts/screens/webkit-<name>.png."""
        SCREENS.mkdir(parents=True, exist_ok=True)
        path = SCREENS / f"webkit-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path

    # --- the flow ------------------------------------------------------------------------------

    def launch(self, url: str) -> None:
        """Click "Launch capture" in the EHR: SMART launch, then the site screen."""
        self.collect_errors()
        self.driver.get(url)
        self.wait_screen("site")

    def banner(self) -> str:
        return self.text("#banner")

    def tap_region(self, code: str, side: str = "", view: str = "front") -> None:
        self.click(f"#view-{view}")
        self.click(f'#bodymap [data-code="{code}"][data-side="{side}"]')
        self.wait_screen("details")

    def search_site(self, query: str, pick: str) -> None:
        """Type in the search box, then click the first visible button whose name has
        ``pick`` (Playwright's ``get_by_role("button", name=pick)`` matches a substring)."""
        box = self.element("#site-search")
        box.clear()
        box.send_keys(query)
        find = """return [...document.querySelectorAll("button")].find((b) => b.offsetParent
            && (b.getAttribute("aria-label") || b.innerText).includes(arguments[0]))"""
        button = self.until(find, pick, what=f"a button named {pick!r}")
        self.tap(button)
        self.wait_screen("details")

    def take_photo(self, path: Path) -> None:
        """From the details screen: "Take photos", then the phone camera (a file) -> review."""
        if self.screen() == "screen-details":
            self.click("#details-take")
            self.wait_screen("camera")
        self.element("#photo-input").send_keys(str(path))
        self.wait_screen("review")

    def send(self) -> float:
        """Press send; returns the monotonic time of the click."""
        started = time.monotonic()
        self.click("#review-send")
        self.wait_screen("send")
        return started

    def wait_states(self, state: str, count: int = 1, timeout: float = 30_000) -> None:
        self.until(
            "return document.querySelectorAll("
            "`#send-list li[data-state='${arguments[0]}']`).length >= arguments[1]",
            state,
            count,
            timeout=timeout,
            what=f"{count} photo(s) {state}",
        )

    def wait_text(self, selector: str, text: str, timeout: float = 30_000) -> None:
        self.until(
            "return document.querySelector(arguments[0])?.innerText.includes(arguments[1])",
            selector,
            text,
            timeout=timeout,
            what=f"{text!r} in {selector}",
        )

    def states(self) -> list[str]:
        script = "return [...document.querySelectorAll('#send-list li')].map(r => r.dataset.state)"
        try:
            return list(self.js(script))
        except WebDriverException:
            return []

    # --- what the phone keeps ------------------------------------------------------------------

    def indexeddb(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        dump: dict[str, dict[str, list[dict[str, Any]]]] = self._async(_IDB_DUMP)
        return dump

    def queued(self) -> list[dict[str, Any]]:
        return self.indexeddb().get("capture-queue", {}).get("photos", [])

    def storage(self) -> dict[str, Any]:
        dump: dict[str, Any] = self._async(_STORAGE_DUMP)
        return dump

    # --- the service, with this phone's session cookie ------------------------------------------

    def api(self, path: str) -> Any:
        """GET ``path`` from the page's own origin with its cookie (the page's fetch)."""
        fetch = """async (path) => {
            const r = await fetch(path, {credentials: "same-origin", cache: "no-store"});
            return {status: r.status, text: await r.text()};
        }"""
        answer = self._async(fetch, path)
        assert answer["status"] == 200, (path, answer)
        return json.loads(answer["text"])

    def captures(self) -> list[dict[str, Any]]:
        """This session's captures as the service has them."""
        context_id = self.api("/api/v1/session")["context_id"]
        captures: list[dict[str, Any]] = self.api(f"/api/v1/captures?context_id={context_id}")
        return captures

    # --- the phone's network and tabs ----------------------------------------------------------

    def go_offline(self) -> None:
        """The network goes: requests fail at once; wait until the page knows (2-8 s)."""
        self.network.go_offline()
        self.until("return !navigator.onLine", timeout=20_000, what="navigator.onLine false")

    def go_online(self) -> None:
        self.network.go_online()
        self.until("return navigator.onLine", timeout=20_000, what="navigator.onLine true")

    def clear_cookies(self) -> None:
        self.driver.delete_all_cookies()

    def reload(self) -> None:
        self.collect_errors()  # the reloaded page starts a new list
        self.driver.refresh()

    def reopen(self) -> WebKitPhone:
        """The tab is closed (or the phone killed it) and the app opened again in a new one."""
        self.collect_errors()
        self.driver.switch_to.new_window("window")
        later = WebKitPhone(self.driver, self.network)
        self.driver.switch_to.window(self.handle)
        self.driver.close()
        self.driver.switch_to.window(later.handle)
        return later
