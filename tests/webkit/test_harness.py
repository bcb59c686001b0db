"""The WebKit harness itself: the phone's network really cuts and restores, trips where it is
told to, and a machine without WebKit fails the WebKit tests instead of skipping them."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orthanc import free_port
from tests.webkit import phone
from tests.webkit.network import PhoneNetwork, in_namespace

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
