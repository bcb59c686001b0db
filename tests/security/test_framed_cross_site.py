"""capture framed by an EHR on another site, over TLS, in Chromium (issue 14, item 2).

The EHR's chart lives on ``https://ehr.hospital.test`` and frames capture from
``https://capture.vendor.test``: two sites (their registrable domains differ), both served by
a real nginx with TLS in front of the sandbox EHR and of ``capture-api run``. Chromium maps
both names to 127.0.0.1 (``--host-resolver-rules``) and trusts the test certificate by its
public key (``--ignore-certificate-errors-spki-list``: the certificate is accepted as valid,
so the pages are secure contexts and ``Secure`` cookies behave as on a real certificate). It
also runs with third-party cookies blocked (``--test-third-party-cookie-phaseout``), as
current browsers are moving to: an unpartitioned cookie in the frame is dropped.

* With the default ``CAPTURE_COOKIE_SAMESITE=lax`` the SMART launch inside the frame cannot
  finish: the browser does not send a Lax cookie into a cross-site frame, so the callback
  arrives without the pre-login cookie and is refused ("started in another browser").
* With ``CAPTURE_COOKIE_SAMESITE=none`` both cookies are ``Secure; SameSite=None;
  Partitioned`` (CHIPS): the launch finishes in the frame, and the page's requests carry the
  session, kept in the jar of the EHR's site.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import Browser, Frame, Page, Playwright

from ehr_sandbox.auth_server import create_launch, register_client
from ehr_sandbox.server import SandboxServer
from tests.deliver.service_process import ServiceProcess
from tests.orthanc import free_port
from tests.security.conftest import CLIENT_ID, registration
from tests.security.test_tls_proxy import _nginx, _wait_for_port
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS

EHR_HOST = "ehr.hospital.test"
CAPTURE_HOST = "capture.vendor.test"


def _certificate(folder: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for both host names; its files and its SPKI pin (base64 of
    the SHA-256 of the DER SubjectPublicKeyInfo, as Chromium's flag wants it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "framed.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(EHR_HOST), x509.DNSName(CAPTURE_HOST)]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "framed.pem", folder / "framed.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return cert, private, base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _nginx_conf(folder: Path, tls: int, ehr: int, capture: int, cert: Path, key: Path) -> Path:
    """Two sites on one TLS port: the EHR (its chart page, its authorization endpoint) and
    capture, told apart by host name as name-based virtual hosts are."""
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    tls_lines = f"ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes 1;
daemon off;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
{temp}
    access_log off;
    server {{
        listen 127.0.0.1:{tls} ssl;
        server_name {EHR_HOST};
        {tls_lines}
        location = /chart.html {{ root {folder / "chart"}; default_type text/html; }}
        location /auth/ {{ proxy_pass http://127.0.0.1:{ehr}; proxy_set_header Host $host; }}
    }}
    server {{
        listen 127.0.0.1:{tls} ssl;
        server_name {CAPTURE_HOST};
        {tls_lines}
        location / {{
            proxy_pass http://127.0.0.1:{capture};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""
    )
    return conf


@dataclass
class Framed:
    """The running sites and a Chromium that resolves and trusts them."""

    sandbox: SandboxServer
    browser: Browser
    tls_port: int
    chart_dir: Path
    samesite: str  # CAPTURE_COOKIE_SAMESITE of this deployment

    @property
    def capture(self) -> str:
        return f"https://{CAPTURE_HOST}:{self.tls_port}"

    def chart(self, encounter: str) -> str:
        """The EHR's chart for ``encounter``: a page that frames capture's EHR launch URL."""
        launch = create_launch(self.sandbox.state, encounter)
        query = urlencode({"iss": self.sandbox.fhir_base, "launch": launch})
        (self.chart_dir / "chart.html").write_text(
            "<!doctype html><title>Chart</title><h1>Chart</h1>"
            f"<iframe name=capture src='{self.capture}/launch?{query}' width=800 height=600>"
            "</iframe>"
        )
        return f"https://{EHR_HOST}:{self.tls_port}/chart.html"


@pytest.fixture(scope="module", params=["lax", "none"])
def framed(
    request: pytest.FixtureRequest,
    playwright: Playwright,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Framed]:
    samesite: str = request.param
    folder = tmp_path_factory.mktemp(f"framed-{samesite}")
    (folder / "chart").mkdir()
    tls, upstream = free_port(), free_port()
    capture = f"https://{CAPTURE_HOST}:{tls}"
    cert, key, spki = _certificate(folder)
    with SandboxServer(app_launch_url=f"{capture}/launch") as sandbox:
        sandbox.state.browser_url = f"https://{EHR_HOST}:{tls}"
        register_client(sandbox.state, CLIENT_ID, f"{capture}/launch/callback")
        env = {
            "CAPTURE_DATA_DIR": str(folder / "data"),
            "CAPTURE_PUBLIC_URL": capture,
            "CAPTURE_EHRS": json.dumps(
                [registration(sandbox).model_dump(mode="json", exclude_none=True)]
            ),
            "CAPTURE_FRAME_ANCESTORS": f"https://{EHR_HOST}:{tls}",
            "CAPTURE_COOKIE_SAMESITE": samesite,
            "CAPTURE_WORKER_ENABLED": "false",
            "CAPTURE_NOTIFY_ENABLED": "false",
        }
        conf = _nginx_conf(folder, tls, sandbox.port, upstream, cert, key)
        log = folder / "nginx.out"
        with (
            ServiceProcess(env, log_path=folder / "service.log", port=upstream),
            open(log, "wb") as out,
        ):
            nginx = subprocess.Popen(
                [_nginx(), "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=[
                    *CHROMIUM_ARGS,
                    f"--host-resolver-rules=MAP {EHR_HOST} 127.0.0.1, MAP {CAPTURE_HOST} 127.0.0.1",
                    f"--ignore-certificate-errors-spki-list={spki}",
                    "--test-third-party-cookie-phaseout",
                ],
            )
            try:
                _wait_for_port(tls, nginx, log)
                yield Framed(sandbox, browser, tls, folder / "chart", samesite)
            finally:
                browser.close()
                nginx.send_signal(signal.SIGQUIT)
                nginx.wait(timeout=10)


def _capture_frame(page: Page, framed: Framed) -> Frame:
    (frame,) = [f for f in page.frames if f.url.startswith(framed.capture)]
    return frame


def _open_chart(framed: Framed) -> tuple[Page, Frame]:
    context = framed.browser.new_context()
    page = context.new_page()
    page.goto(framed.chart("enc-muller"))
    page.wait_for_load_state("load")
    frame = page.frame(name="capture")
    assert frame is not None
    frame.wait_for_load_state("load")
    return page, _capture_frame(page, framed)


def _session(frame: Frame) -> Any:
    return frame.evaluate(
        "fetch('/api/v1/session').then(async r => ({status: r.status, body: await r.json()}))"
    )


def test_the_browser_blocks_unpartitioned_third_party_cookies(framed: Framed) -> None:
    """What the browser does, independent of capture: in the frame an unpartitioned
    SameSite=None cookie is dropped, a Partitioned one kept (so the test means something)."""
    page, frame = _open_chart(framed)
    assert page.evaluate("window.isSecureContext") and frame.evaluate("window.isSecureContext")
    frame.evaluate("document.cookie = 'plain=1; Secure; SameSite=None; Path=/'")
    frame.evaluate("document.cookie = 'chips=1; Secure; SameSite=None; Path=/; Partitioned'")
    cookies = frame.evaluate("document.cookie")
    assert "chips=1" in cookies and "plain=1" not in cookies, cookies
    page.context.close()


def test_signing_in_inside_the_ehr_frame(framed: Framed) -> None:
    page, frame = _open_chart(framed)
    session = _session(frame)
    cookies = {c["name"]: c for c in page.context.cookies()}
    if framed.samesite == "lax":
        # The callback came without the pre-login cookie: refused, no session.
        assert "/launch/callback" in frame.url, frame.url
        assert "another browser" in frame.content()
        assert session["status"] == 401
    else:
        assert frame.url == f"{framed.capture}/", frame.url
        assert session["status"] == 200, session
        assert session["body"]["patient_fhir_id"] == "pat-muller"
        cookie = cookies["capture_session"]
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "None"
        assert cookie.get("partitionKey"), cookie  # kept in the EHR site's jar (CHIPS)
        token = session["body"]["csrf_token"]
        scan = frame.evaluate(
            """async (token) => (await fetch('/api/v1/scan', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                body: JSON.stringify({identifier: '100001'})})).status""",
            token,
        )
        assert scan == 201  # the page's own POSTs work in the frame, with the CSRF token
    page.context.close()
