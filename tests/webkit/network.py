"""The WebKit phone's own network: a Linux network namespace, and a link to the test's loopback.

Why (RECIPES.md "WebKit, the engine of Safari"): WebKitGTK has no DevTools "offline" switch.
``navigator.onLine`` and the ``online``/``offline`` events follow GLib's network monitor,
which watches the kernel's routing table; and an offline phone's requests must really fail.
So the browser lives in a namespace of its own (loopback, plus a veth pair whose two ends
both stay inside so that it can have a default route), and reaches the stack (the API and the
EHR sandbox on the test's 127.0.0.1) through one TCP relay per port: a socket listening on
the namespace's 127.0.0.1:port, created by a thread that entered the namespace, each
connection piped to the same port outside.

Going offline is what a phone losing its network does: the default route goes (GLib, then
WebKit, see it after 2-8 s and fire ``offline``), every open connection is reset and new ones
are refused (XHR and fetch fail with "Load failed"). ``trip`` cuts the network on the wire at
a chosen request: before the service has seen it, or after the service answered but before
the phone heard the answer.

Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN; ``make test`` runs as root, and so does CI) and
iproute2 + util-linux (``ip``, ``unshare``, ``nsenter``). Nothing here touches the test's own
namespace: every ``ip`` command runs through ``nsenter`` into the phone's, which is checked to
be another namespace first.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self, TypeVar

from tests.webkit import die_with_parent

CLONE_NEWNET = 0x40000000
#: The namespace's own link; both ends stay inside, so nothing is reachable through it.
INSIDE = "10.203.0.1/24"
GATEWAY = "10.203.0.2"
_SETUP = f"""set -e
ip link set lo up
ip link add phone0 type veth peer name phone1
ip addr add {INSIDE} dev phone0
ip addr add {GATEWAY}/24 dev phone1
ip link set phone0 up
ip link set phone1 up
ip route add default via {GATEWAY} dev phone0
echo ready
exec sleep infinity
"""
T = TypeVar("T")
_LINGER_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends RST


def in_namespace(path: str, make: Callable[[], T]) -> T:
    """``make()`` run by a thread that entered the namespace at ``path`` (sockets it creates
    stay there; the calling thread's namespace is untouched)."""
    out: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {path}")
            out.append(make())
        except BaseException as error:  # re-raised in the caller
            failure.append(error)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, name="enter-phone-netns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return out[0]


def _reset(sock: socket.socket) -> None:
    """Abort the connection now. ``shutdown`` first: a bare ``close`` while a relay thread is
    blocked in ``recv`` on it only drops the descriptor, and the connection would live on."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@dataclass
class _Trip:
    """Cut the network when the phone sends ``marker`` (e.g. b"POST /api/v1/captures ")."""

    marker: bytes
    after_answer: bool  # False: before the service sees it; True: the service answers, unheard
    fired: threading.Event = field(default_factory=threading.Event)


class _Pumps:
    """One relayed connection and its two pump threads: the last one to stop closes both
    sockets (a cut resets them earlier)."""

    def __init__(self, network: PhoneNetwork, phone: socket.socket, service: socket.socket):
        self.network, self.phone, self.service = network, phone, service
        self._running = 2
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.network.forget(self.phone, self.service)
            self.phone.close()
            self.service.close()


class _Relay:
    """127.0.0.1:port inside the namespace -> 127.0.0.1:port outside, while the link is up."""

    def __init__(self, network: PhoneNetwork, port: int) -> None:
        self.network = network
        self.port = port

        def listen() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            return sock

        self.listener = in_namespace(network.path, listen)
        threading.Thread(target=self._accept, name=f"relay-{port}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                phone, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self.network.up:
                _reset(phone)  # no network: the connection fails at once
                continue
            try:
                service = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                _reset(phone)
                continue
            service.settimeout(None)
            if not self.network.track(phone, service):
                _reset(phone)  # the network went while this connection was being made
                _reset(service)
                continue
            pumps = _Pumps(self.network, phone, service)
            threading.Thread(target=self._up, args=(pumps,), daemon=True).start()
            threading.Thread(target=self._down, args=(pumps,), daemon=True).start()

    def _up(self, pumps: _Pumps) -> None:
        """Phone -> service; watches for the trip's marker."""
        tail = b""
        try:
            while chunk := pumps.phone.recv(65536):
                trip = self.network.trip_armed
                if trip and trip.marker in tail + chunk:
                    self.network.trip_armed = None
                    if not trip.after_answer:
                        self.network.cut(trip)  # the service never sees this request
                        return
                    self.network.awaiting_answer[pumps.service] = trip
                tail = chunk[-64:]
                pumps.service.sendall(chunk)
            pumps.service.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            pumps.done()

    def _down(self, pumps: _Pumps) -> None:
        """Service -> phone; an answer the trip waits for is dropped, and the network cut."""
        try:
            while chunk := pumps.service.recv(65536):
                trip = self.network.awaiting_answer.pop(pumps.service, None)
                if trip:
                    self.network.cut(trip)  # the service has it; the phone never hears so
                    return
                pumps.phone.sendall(chunk)
            pumps.phone.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            pumps.done()

    def close(self) -> None:
        self.listener.close()


class PhoneNetwork:
    """The namespace, its relays (``expose``), and the switch (``go_offline``/``go_online``)."""

    def __init__(self) -> None:
        self.up = True
        self.trip_armed: _Trip | None = None
        self.awaiting_answer: dict[socket.socket, _Trip] = {}
        self._relays: dict[int, _Relay] = {}
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._holder: subprocess.Popen[str] | None = None

    @property
    def path(self) -> str:
        assert self._holder is not None, "the namespace is not running"
        return f"/proc/{self._holder.pid}/ns/net"

    def __enter__(self) -> Self:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", _SETUP],
            preexec_fn=die_with_parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        if self._holder.stdout.readline().strip() != "ready":
            self._holder.kill()
            _, err = self._holder.communicate()
            raise RuntimeError(
                "cannot make the WebKit phone's network namespace (needs root and iproute2): "
                + err.strip()
            )
        if os.readlink(self.path) == os.readlink("/proc/self/ns/net"):
            self.__exit__(None, None, None)
            raise RuntimeError("the phone's namespace is the test's own: refusing to change it")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cut(None)
        for relay in self._relays.values():
            relay.close()
        self._relays.clear()
        if self._holder is not None:
            self._holder.kill()  # the namespace (and its veth pair) goes with its last process
            self._holder.communicate()  # waits, and closes its pipes (else a ResourceWarning)
            self._holder = None

    def expose(self, port: int) -> None:
        """Make the test's 127.0.0.1:``port`` reachable from the phone at the same address."""
        if port not in self._relays:
            self._relays[port] = _Relay(self, port)

    def track(self, *socks: socket.socket) -> bool:
        """Remember a relayed connection (to reset it on a cut); False when the link is down."""
        with self._lock:
            if self.up:
                self._open.update(socks)
            return self.up

    def forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(socks)
        for sock in socks:
            self.awaiting_answer.pop(sock, None)

    def _ip(self, *args: str) -> None:
        subprocess.run(
            ["nsenter", f"--net={self.path}", "ip", *args], check=True, capture_output=True
        )

    # --- the switch ----------------------------------------------------------------------------

    def cut(self, trip: _Trip | None) -> None:
        """No more traffic: open connections reset, new ones refused (the route stays)."""
        with self._lock:
            self.up = False
            socks, self._open = self._open, set()
        if trip:
            trip.fired.set()  # before the resets: whoever sees a reset sees the trip fired
        for sock in socks:
            _reset(sock)
        self.awaiting_answer.clear()

    def go_offline(self) -> None:
        """The phone loses its network: connections fail now, ``offline`` fires in 2-8 s."""
        self.cut(None)
        self._ip("route", "del", "default")

    def go_online(self) -> None:
        self.up = True
        self._ip("route", "replace", "default", "via", GATEWAY, "dev", "phone0")

    def trip(self, marker: bytes, *, after_answer: bool) -> threading.Event:
        """Cut the network (connections only: ``go_offline`` removes the route) when the phone
        sends ``marker``; the event is set once it happened."""
        self.trip_armed = _Trip(marker, after_answer)
        return self.trip_armed.fired
