"""A phone-sized WebKitGTK browser for WebKitWebDriver (run by Debian's ``/usr/bin/python3``).

Why not the stock MiniBrowser (RECIPES.md "WebKit, the engine of Safari"): its toolbar keeps
the window at least 447 CSS px wide, and its automation sessions use ephemeral storage, where
storing a Blob in IndexedDB fails. This browser is a bare window of 390x844 CSS px (an iPhone's
viewport; ``GDK_SCALE=2`` in the environment gives devicePixelRatio 2) around one WebView
with persistent storage, Safari's user agent string, and WebKit's mock camera.

Only PyGObject (Debian's python3-gi) and the GI typelibs of Gtk 3 and WebKit2 4.1 are needed,
so it runs with the system Python, not the test venv. WebKitWebDriver starts it with the
arguments the test gives (``--profile DIR [--netns /proc/PID/ns/net]``) plus its own.

- ``--netns``: the phone's network namespace (tests/webkit/network.py). The browser enters it
  once the automation session has started (its link to WebKitWebDriver, on the test's loopback,
  is up by then), so the network and web processes it starts from then on live inside it:
  their loopback is the namespace's, and ``navigator.onLine`` follows its default route.
- ``capture-test:reset``: a page that wipes every kind of website data (cookies, IndexedDB,
  caches, service workers...), so each test starts on a clean phone without a new browser.
- It ends when WebKitWebDriver does (``end_with_driver``): a driver that was stopped before it
  closed its browser (Selenium stops it at once when the session's delete fails) left this one
  running, with its helper processes, until the harness killed them 20 s later.
- Every page gets, before its own scripts, a recorder of what the Chromium harness reads from
  the console: uncaught errors, unhandled rejections, CSP violations and ``console.error``
  lines, in ``window.__captureErrors`` (WebKitGTK's WebDriver has no console log).
"""

from __future__ import annotations

import argparse
import ctypes
import os

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gio, GLib, Gtk, WebKit2  # noqa: E402

WIDTH, HEIGHT = 390, 844
#: What Safari on an iPhone sends (iOS 18); only the string, the engine is WebKitGTK's.
USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1"
)
CLONE_NEWNET = 0x40000000
ERROR_RECORDER = """(() => {
  const errors = [];
  Object.defineProperty(window, "__captureErrors", { value: errors });
  addEventListener("error", (e) => errors.push(`${e.message} (${e.filename}:${e.lineno})`));
  addEventListener("unhandledrejection", (e) => errors.push(`unhandled rejection: ${e.reason}`));
  document.addEventListener("securitypolicyviolation", (e) =>
    errors.push(`CSP ${e.violatedDirective} blocked ${e.blockedURI}`));
  const error = console.error.bind(console);
  console.error = (...args) => { errors.push(args.map(String).join(" ")); error(...args); };
})();"""


def enter_network_namespace(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)
    # The web processes would try (and fail) to reach WebKitWebDriver from inside: they need not.
    os.environ.pop("WEBKIT_INSPECTOR_SERVER", None)


def end_with_driver(interval_ms: int = 200) -> None:
    """Exit (as a phone's browser does when its battery dies) once this process's parent,
    WebKitWebDriver, has gone: its orphan is then init's child. Polled, because the kernel's
    parent-death signal follows the thread that started this process, not the process."""
    driver = os.getppid()

    def check() -> bool:
        if os.getppid() != driver:
            os._exit(0)
        return True  # keep checking

    GLib.timeout_add(interval_ms, check)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", required=True)
    parser.add_argument("--netns")
    args, _ = parser.parse_known_args()  # WebKitWebDriver adds its own (--automation)

    Gtk.init(None)
    end_with_driver()
    data = WebKit2.WebsiteDataManager(
        base_data_directory=os.path.join(args.profile, "data"),
        base_cache_directory=os.path.join(args.profile, "cache"),
    )
    context = WebKit2.WebContext(website_data_manager=data)
    context.set_automation_allowed(True)

    settings = WebKit2.Settings()
    settings.set_user_agent(USER_AGENT)
    settings.set_enable_media_stream(True)
    settings.set_enable_mock_capture_devices(True)
    settings.set_enable_write_console_messages_to_stdout(True)

    content = WebKit2.UserContentManager()
    content.add_script(
        WebKit2.UserScript(
            ERROR_RECORDER,
            WebKit2.UserContentInjectedFrames.TOP_FRAME,
            WebKit2.UserScriptInjectionTime.START,
            None,
            None,
        )
    )

    def reset(request: WebKit2.URISchemeRequest) -> None:
        def cleared(manager: WebKit2.WebsiteDataManager, result: object) -> None:
            manager.clear_finish(result)
            page = b"<!doctype html><title>reset</title><p id=reset>cleared</p>"
            stream = Gio.MemoryInputStream.new_from_bytes(GLib.Bytes.new(page))
            request.finish(stream, len(page), "text/html")

        data.clear(WebKit2.WebsiteDataTypes.ALL, 0, None, cleared)

    context.register_uri_scheme("capture-test", reset)

    def permission(_view: WebKit2.WebView, request: WebKit2.PermissionRequest) -> bool:
        if isinstance(request, WebKit2.UserMediaPermissionRequest):
            request.allow()  # the phone's camera, granted once like on a clinician's phone
            return True
        return False

    def create_view(_session: WebKit2.AutomationSession) -> WebKit2.WebView:
        view = WebKit2.WebView(
            web_context=context,
            settings=settings,
            user_content_manager=content,
            is_controlled_by_automation=True,
        )
        view.connect("permission-request", permission)
        window = Gtk.Window()
        window.set_default_size(WIDTH, HEIGHT)
        window.add(view)
        view.connect("close", lambda _view: window.destroy())
        window.show_all()
        return view

    def started(_context: WebKit2.WebContext, session: WebKit2.AutomationSession) -> None:
        if args.netns:
            enter_network_namespace(args.netns)
        info = WebKit2.ApplicationInfo()
        info.set_name("MiniBrowser")  # the browserName Selenium's WebKitGTK options ask for
        session.set_application_info(info)
        session.connect("create-web-view", create_view)

    context.connect("automation-started", started)
    Gtk.main()


if __name__ == "__main__":
    main()
