"""The nginx snippet of docs/security.md, run for real in front of ``capture-api run``.

The snippet is read from the document (so the two cannot drift apart); only the certificate,
the ports and the upstream address are substituted, and nginx connects to capture from
127.0.0.2 so that the proxy (trusted: ``CAPTURE_TRUSTED_PROXIES=127.0.0.2``) and the test's
client (127.0.0.1, 127.0.0.3) are different addresses, as they are in production.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.audit.collectors import self_signed_tls
from tests.conftest import REPO
from tests.deliver.service_process import ServiceProcess
from tests.orthanc import free_port

PROXY_ADDRESS = "127.0.0.2"
HOST = "capture.hospital.example"
LOGIN_LIMIT = 3


def nginx_snippet() -> str:
    """The one ```nginx block of docs/security.md."""
    text = (REPO / "docs" / "security.md").read_text()
    block: str
    (block,) = re.findall(r"```nginx\n(.*?)```", text, flags=re.S)
    return block


def certificate(folder: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1 (the audit tests' syslog collector's)."""
    _, cert = self_signed_tls(folder)
    key = cert.with_suffix(".key")
    assert key.is_file(), f"self_signed_tls no longer writes its key beside {cert}"
    return cert, key


def nginx_conf(folder: Path, *, upstream: int, http_port: int, tls_port: int) -> tuple[Path, Path]:
    """nginx.conf around the documented snippet; returns it and the certificate it serves."""
    cert, key = certificate(folder)
    snippet = nginx_snippet()
    for old, new in (
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls_port} ssl http2;"),
        ("/etc/ssl/capture/fullchain.pem", str(cert)),
        ("/etc/ssl/capture/privkey.pem", str(key)),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};"),
        ("proxy_http_version 1.1;", f"proxy_http_version 1.1;\n    proxy_bind {PROXY_ADDRESS};"),
    ):
        assert snippet.count(old) == 1, f"docs/security.md no longer has {old!r}"
        snippet = snippet.replace(old, new)
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must write the temp folders
    conf = folder / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n{temp}\n{snippet}\n}}\n"
    )
    return conf, cert


def _nginx() -> str:
    found = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError("nginx is not installed: run `make test` (it installs nginx-light)")
    return found


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text(errors='replace')}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port}")


class _PortTaken(Exception):
    """Another process took one of nginx's ports between ``free_port`` and nginx's bind."""


def _wait_for_tls(port: int, process: subprocess.Popen[bytes], tls: ssl.SSLContext) -> None:
    """Until nginx itself answers TLS on ``port``: a port that merely accepts connections may
    belong to a process that took it after ``free_port`` (tests of other runs on the machine);
    nginx then exits with "Address already in use" and the caller tries other ports."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _PortTaken()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
                tls.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return
        except (OSError, ssl.SSLError):
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not answer TLS on {port}")


class Proxied:
    """capture behind nginx: the https base URL, the http one, and an SSL context trusting it."""

    def __init__(self, https: str, http: str, tls: ssl.SSLContext) -> None:
        self.https, self.http, self.tls = https, http, tls

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        transport = httpx.HTTPTransport(verify=self.tls, local_address=source)
        return httpx.Client(base_url=self.https, transport=transport, timeout=30)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    for _ in range(3):  # other ports when another process took one before nginx bound it
        folder = tmp_path_factory.mktemp("tls")
        upstream, http_port, tls_port = free_port(), free_port(), free_port()
        public = f"https://127.0.0.1:{tls_port}"
        env = {
            "CAPTURE_DATA_DIR": str(folder / "data"),
            "CAPTURE_PUBLIC_URL": public,
            "CAPTURE_TRUSTED_PROXIES": PROXY_ADDRESS,
            "CAPTURE_RATE_LIMIT_LOGIN_PER_MINUTE": str(LOGIN_LIMIT),
            "CAPTURE_WORKER_ENABLED": "false",
        }
        with (
            ServiceProcess(env, log_path=folder / "service.log", port=upstream),
            _nginx_on(folder, upstream, http_port, tls_port) as tls,
        ):
            if tls is not None:
                yield Proxied(public, f"http://127.0.0.1:{http_port}", tls)
                return
    raise RuntimeError("nginx could not bind free ports three times")


@contextlib.contextmanager
def _nginx_on(
    folder: Path, upstream: int, http_port: int, tls_port: int
) -> Iterator[ssl.SSLContext | None]:
    """nginx on these ports, or None when one of them was taken before nginx could bind it."""
    conf, cert = nginx_conf(folder, upstream=upstream, http_port=http_port, tls_port=tls_port)
    tls = ssl.create_default_context(cafile=str(cert))
    with open(folder / "nginx.out", "wb") as out:
        nginx = subprocess.Popen(
            [_nginx(), "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_tls(tls_port, nginx, tls)
        except _PortTaken:
            if "Address already in use" not in (folder / "error.log").read_text(errors="replace"):
                raise RuntimeError(f"nginx exited: {(folder / 'nginx.out').read_text()}") from None
            yield None
            return
        try:
            yield tls
        finally:
            nginx.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            nginx.wait(timeout=10)


def test_https_with_tls_1_2_or_later_and_one_hsts_header(proxied: Proxied) -> None:
    with proxied.client() as client:
        response = client.get("/healthz")
        assert response.status_code == 200
        tls = response.extensions["network_stream"].get_extra_info("ssl_object")
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        assert response.headers.get_list("strict-transport-security") == ["max-age=63072000"]
        assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    redirect = httpx.get(f"{proxied.http}/healthz", follow_redirects=False)
    assert redirect.status_code == 301
    assert redirect.headers["location"].startswith("https://")


def test_nginx_refuses_a_too_large_body_with_hsts(proxied: Proxied) -> None:
    with proxied.client() as client:
        too_large = client.post(
            "/api/v1/captures",
            files={"photo": ("p.jpg", b"\xff" * (26 * 1024 * 1024), "image/jpeg")},
        )
    assert too_large.status_code == 413
    assert too_large.headers["strict-transport-security"] == "max-age=63072000"


def test_a_forged_forwarded_for_does_not_escape_the_limit(proxied: Proxied) -> None:
    """Each request claims to come from another address; capture still sees 127.0.0.1."""
    with proxied.client() as client:
        answers = [
            client.get("/launch", headers={"X-Forwarded-For": f"203.0.113.{i}"})
            for i in range(LOGIN_LIMIT + 1)
        ]
    assert [a.status_code for a in answers] == [400] * LOGIN_LIMIT + [429]
    limited = answers[-1]
    assert "too many sign-in attempts" in limited.text  # capture's page, not nginx's
    assert int(limited.headers["retry-after"]) >= 1

    with proxied.client(source="127.0.0.3") as other_phone:  # another client: its own bucket
        assert other_phone.get("/launch").status_code == 400
