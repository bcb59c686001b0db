"""The WebKit harness itself: the phone's network really cuts and restores, trips where it is
told to, and a machine without WebKit fails the WebKit tests instead of skipping them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.webkitgtk.options import Options
from selenium.webdriver.webkitgtk.service import Service
from urllib3.exceptions import MaxRetryError

from tests.orthanc import free_port
from tests.webkit import phone
from tests.webkit.network import PhoneNetwork, in_namespace
from tests.webkit.processes import names, process_tree, wait_gone

REQUEST = b"POST /api/v1/captures HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
ANSWER = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"


class _Service:
    """A one-answer-per-connection TCP service on the test's loopback; keeps what it got."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"hello") and (chunk := conn.recv(65536)):
                    data += chunk
                self.received.append(data)
                if data.endswith(b"hello"):
                    conn.sendall(ANSWER)


@pytest.fixture
def service() -> Iterator[_Service]:
    running = _Service()
    yield running
    running.sock.close()


@pytest.fixture
def network(service: _Service) -> Iterator[PhoneNetwork]:
    with PhoneNetwork() as phone_network:
        phone_network.expose(service.port)
        yield phone_network


def _ask(network: PhoneNetwork, port: int) -> bytes:
    """Send REQUEST from inside the phone's namespace; the answer, or b"" if the link broke."""

    def ask() -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(REQUEST)
                answer = b""
                while chunk := conn.recv(65536):
                    answer += chunk
                    if answer.endswith(b"ok"):
                        break
                return answer
        except OSError:
            return b""

    return in_namespace(network.path, ask)


def _default_route(network: PhoneNetwork) -> str:
    route = ["nsenter", f"--net={network.path}", "ip", "route", "show", "default"]
    return subprocess.run(route, check=True, capture_output=True, text=True).stdout


def test_the_phone_reaches_the_stack_only_while_online(
    network: PhoneNetwork, service: _Service
) -> None:
    assert os.readlink(network.path) != os.readlink("/proc/self/ns/net")
    ours = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True)
    assert _ask(network, service.port) == ANSWER
    assert "via 10.203.0.2" in _default_route(network)

    network.go_offline()
    assert _ask(network, service.port) == b""
    assert _default_route(network) == ""  # what GLib, and so navigator.onLine, watches
    assert len(service.received) == 1  # nothing got through

    network.go_online()
    assert _ask(network, service.port) == ANSWER
    # The test's own namespace never changed.
    after = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True)
    assert after.stdout == ours.stdout


@pytest.mark.parametrize("after_answer", [False, True])
def test_a_trip_cuts_before_the_service_sees_the_request_or_after_it_answered(
    network: PhoneNetwork, service: _Service, after_answer: bool
) -> None:
    tripped = network.trip(b"POST /api/v1/captures ", after_answer=after_answer)
    assert _ask(network, service.port) == b""  # the phone never hears an answer
    assert tripped.is_set()
    assert (REQUEST in service.received) == after_answer
    assert all(b"POST" not in got for got in service.received if got != REQUEST)
    assert _ask(network, service.port) == b""  # and the link stays down
    network.go_online()
    assert _ask(network, service.port) == ANSWER


def test_webkit_tests_fail_when_webkitwebdriver_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Like Chromium (tests/ship/test_browser_required.py): a failure, never a skip, which
    would let CI pass with Safari's engine untested."""
    monkeypatch.setattr(phone, "WEBDRIVER", Path("/nonexistent/WebKitWebDriver"))
    with pytest.raises(pytest.fail.Exception, match="WebKitWebDriver is missing: run `make test`"):
        phone.require_webkit()
    monkeypatch.undo()
    phone.require_webkit()  # and here it is installed


def test_console_errors_are_read_from_the_browser_log(tmp_path: Path) -> None:
    log = tmp_path / "webdriver.log"
    log.write_text(
        "** (WebKitWebProcess:1): WARNING **: Unable to get session D-Bus address\n"
        "CONSOLE SECURITY ERROR Unrecognized Content-Security-Policy directive 'manifest-src'.\n"
        f"http://127.0.0.1:1/:1: CONSOLE SECURITY ERROR Refused to load {phone.EXPECTED}.js\n"
        "http://127.0.0.1:1/app/app.js:9:3: CONSOLE JS ERROR TypeError: x is undefined\n"
        "http://127.0.0.1:1/:1: CONSOLE JS LOG fine\n"
    )
    assert phone.console_errors(log) == [
        "http://127.0.0.1:1/app/app.js:9:3: CONSOLE JS ERROR TypeError: x is undefined"
    ]


def test_a_closed_browser_leaves_none_of_its_processes_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``webkit_browser`` the browser is gone as a phone's is when its battery dies: the
    page's and the storage's helper processes too, which otherwise outlive the session and
    still hold the profile's files when a test starts the same phone's browser again."""
    phone.require_webkit()
    with phone.webkit_browser(tmp_path, []) as browser:
        browser.fresh_phone()
        assert browser.driver.service.process is not None
        running = process_tree(browser.driver.service.process.pid)
        called = set(names(running).values())
        assert any(name.startswith("WebKitNetworkPr") for name in called), called
        assert any(name.startswith("WebKitWebProces") for name in called), called
        monkeypatch.setattr(phone, "SLOW_CLOSE", 0.0)  # so that this close is reported
        with pytest.warns(UserWarning, match=r"processes took \d+\.\d s to end \(killed: none\)"):
            phone.close_browser(browser.driver)
        monkeypatch.undo()  # (the second, harmless close on leaving is not reported)
        # None still running (an ended one's pid may already be another process's: each is
        # known by its start time too). A bare ``driver.quit()`` leaves the storage process
        # running for 60 ms on an idle machine, longer on a busy one.
        assert wait_gone(running, timeout=0) == []


def test_a_browser_whose_driver_died_ends_with_it(tmp_path: Path) -> None:
    """Twice in CI a closed browser (``phone_browser.py`` and its storage process) was still
    running 20 s after its session ended, and was killed: its WebKitWebDriver had gone without
    closing it. Here WebKitWebDriver is killed (SIGKILL) under a running browser: the browser
    and its helper processes end by themselves within seconds."""
    phone.require_webkit()
    with phone.webkit_browser(tmp_path, []) as browser:
        browser.fresh_phone()
        driver = browser.driver.service.process
        assert driver is not None
        running = process_tree(driver.pid)
        assert "python3" in names(running).values()  # the browser (phone_browser.py)
        driver.kill()
        driver.wait()
        started = time.monotonic()
        assert wait_gone(running, timeout=10) == []  # none had to be killed
        assert time.monotonic() - started < 5


def test_process_tree_reads_below_a_process_and_not_beside_it() -> None:
    """The oracle is ``ps``: every process it shows below a known tree is in ours."""
    with subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"]) as shell:
        try:
            deadline = time.monotonic() + 10
            while len(found := process_tree(shell.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            ps = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(shell.pid)], capture_output=True, text=True
            )
            assert {pid for pid, _ in found} == {int(p) for p in ps.stdout.split()}
            assert os.getpid() not in {pid for pid, _ in found}
            assert set(names(found).values()) == {"sleep"}  # what a killed one is reported as
            # Still running after the wait: killed, and said so.
            assert set(wait_gone(found, timeout=0.2)) == found
            assert wait_gone(found, timeout=0) == []
        finally:
            shell.kill()


def test_a_browser_that_stops_answering_fails_the_command_instead_of_holding_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Selenium's own default waits for ever (CI's whole run was once killed at its time limit
    inside a WebKit test). Here WebKitWebDriver is frozen (SIGSTOP) under a command."""
    phone.require_webkit()
    monkeypatch.setattr(phone, "COMMAND_TIMEOUT", 2)
    with phone.webkit_browser(tmp_path, []) as browser:
        browser.fresh_phone()
        driver = browser.driver.service.process
        assert driver is not None
        os.kill(driver.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(MaxRetryError, match="Read timed out"):
                browser.driver.title  # noqa: B018 (a WebDriver command)
            assert time.monotonic() - started < 5  # not sent again: 2 s, not 4 x 2 s
        finally:
            os.kill(driver.pid, signal.SIGCONT)


def test_a_browser_that_never_links_up_is_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one CI run WebKitGTK started but never linked up with WebKitWebDriver, and the new
    session waited out its timeout: the test failed with a read timeout. Here the first
    "browser" hangs (a script that only sleeps); the second is the real one."""
    phone.require_webkit()
    monkeypatch.setattr(phone, "SESSION_TIMEOUT", 3)
    pidfile = tmp_path / "hung.pid"
    hanging = tmp_path / "hanging-browser"
    hanging.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 600\n")
    hanging.chmod(0o755)
    real = phone._WebKitGTK
    starts: list[str] = []

    def first_hangs(options: Options, service: Service) -> phone._WebKitGTK:
        if not starts:
            options = Options()
            options.binary_location = str(hanging)
        starts.append(options.binary_location)
        return real(options=options, service=service)

    monkeypatch.setattr(phone, "_WebKitGTK", first_hangs)
    warned = pytest.warns(UserWarning, match=r"no session within 3 s .*starting the browser again")
    with warned, phone.webkit_browser(tmp_path, []) as browser:
        browser.fresh_phone()  # the second browser works
    assert starts == [str(hanging), phone.SYSTEM_PYTHON]
    hung = int(pidfile.read_text())  # the first, killed: not left behind, asleep for 10 minutes
    deadline = time.monotonic() + 5
    while Path(f"/proc/{hung}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{hung}").exists(), Path(f"/proc/{hung}/cmdline").read_bytes()
