"""The hardening in a real browser: headless Chromium, ``capture-api run`` as a process, and the
sandbox EHR, all over loopback HTTP.

* A SMART launch clicked in the EHR still lands on capture's page (redirects and navigation
  pass the CSP) and the page loads with no policy violation.
* The page's own ``fetch`` POSTs need the session's CSRF token (the contract the PWA follows).
* A same-site attacker (another port on 127.0.0.1, like a sibling host name in a hospital
  domain) gets the SameSite=Lax cookie sent along with a forged form POST; the guard refuses it.
* The EHR's chart (an origin in CAPTURE_FRAME_ANCESTORS) may frame capture; the same page from
  any other origin is refused by ``frame-ancestors``.

The chart and the attacker's pages are real files served on loopback (``PageServer``), not
intercepted requests: Chromium's Local Network Access checks treat an intercepted page as
public and block its loopback frames, for a reason that has nothing to do with capture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response

from ehr_sandbox.server import SandboxServer
from tests.deliver.service_process import ServiceProcess
from tests.orthanc import free_port
from tests.sandboxes.threaded import ThreadedSandbox
from tests.security.conftest import CLIENT_ID, registration
from tests.web.stack import sandbox_launching


class PageServer(ThreadedSandbox):
    """Static HTML files on loopback. Reached as 127.0.0.1 it is the EHR's chart (listed in
    CAPTURE_FRAME_ANCESTORS); reached as ``localhost`` it is some other site."""

    label = "page server"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._serve()

    def _app(self) -> FastAPI:
        app = FastAPI()
        app.mount("/", StaticFiles(directory=self.folder))
        return app

    def page(self, name: str, html: str, host: str = "127.0.0.1") -> str:
        (self.folder / name).write_text(html)
        return f"http://{host}:{self.port}/{name}"


class Deployment:
    """capture (a real process) registered with the sandbox EHR, and the page server."""

    def __init__(self, service: ServiceProcess, ehr: SandboxServer, pages: PageServer) -> None:
        self.service = service
        self.ehr = ehr
        self.pages = pages

    @property
    def url(self) -> str:
        return self.service.url


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("browser")
    (folder / "pages").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with PageServer(folder / "pages") as pages, sandbox_launching(port, CLIENT_ID) as ehr:
        ehrs = [registration(ehr).model_dump(mode="json", exclude_none=True)]
        env = {
            "CAPTURE_DATA_DIR": str(folder / "data"),
            "CAPTURE_PUBLIC_URL": url,
            "CAPTURE_EHRS": json.dumps(ehrs),
            "CAPTURE_FRAME_ANCESTORS": pages.url,  # the chart's origin (not the FHIR base)
            "CAPTURE_COOKIE_SECURE": "false",  # plain http on loopback
            "CAPTURE_WORKER_ENABLED": "false",
            "CAPTURE_NOTIFY_ENABLED": "false",
        }
        with ServiceProcess(env, log_path=folder / "service.log", port=port) as service:
            yield Deployment(service, ehr, pages)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile (no cookies) per test."""
    ctx = browser.new_context()
    yield ctx
    ctx.close()


def watch_console(page: Page) -> list[str]:
    messages: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        messages.append(message.text)

    page.on("console", keep)
    return messages


def csp_complaints(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m or "Refused to" in m]


def sign_in(page: Page, deployment: Deployment, encounter: str = "enc-muller") -> None:
    """Click "Launch capture" beside the encounter in the EHR and land on capture's page."""
    page.goto(f"{deployment.ehr.state.base_url}/")
    page.click(f"a[href^='/ehr/launch/{encounter}']")
    page.wait_for_url(f"{deployment.url}/")
    page.wait_for_load_state("load")


def post_from_page(page: Page, path: str, body: dict[str, Any], token: str | None) -> Any:
    """A fetch POST made by capture's own page, with or without the CSRF header."""
    script = """async ([path, body, token]) => {
        const headers = {"Content-Type": "application/json"};
        if (token) headers["X-CSRF-Token"] = token;
        const response = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
        return {status: response.status, body: await response.json()};
    }"""
    return page.evaluate(script, [path, body, token])


def test_a_launch_from_the_ehr_lands_on_capture_without_policy_violations(
    context: BrowserContext, deployment: Deployment
) -> None:
    page = context.new_page()
    console = watch_console(page)
    scripts: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: (
            scripts.append((r.url, r.status)) if r.request.resource_type == "script" else None
        ),
    )
    sign_in(page, deployment)
    assert scripts and all(status == 200 for _, status in scripts), scripts
    assert all(url.startswith(f"{deployment.url}/") for url, _ in scripts)  # own origin only
    assert csp_complaints(console) == []
    session = page.evaluate("fetch('/api/v1/session').then(r => r.json())")
    assert session["patient_fhir_id"] == "pat-muller" and session["csrf_token"]


def test_the_pages_own_posts_need_the_token(
    context: BrowserContext, deployment: Deployment
) -> None:
    page = context.new_page()
    sign_in(page, deployment)
    token = page.evaluate("fetch('/api/v1/session').then(r => r.json())")["csrf_token"]
    scan = {"identifier": "100001"}
    without = post_from_page(page, "/api/v1/scan", scan, None)
    assert without == {
        "status": 403,
        "body": {"detail": "missing or invalid CSRF token: reload capture"},
    }
    assert post_from_page(page, "/api/v1/scan", scan, token)["status"] == 201


def test_a_same_site_attacker_form_is_refused(
    context: BrowserContext, deployment: Deployment
) -> None:
    page = context.new_page()
    sign_in(page, deployment)
    # The classic JSON-over-text/plain forgery: a form that posts {"identifier": "100001", ...},
    # from 127.0.0.1:<another port>: the same site as capture, another origin.
    form = (
        f"<form method=post enctype=text/plain action='{deployment.url}/api/v1/scan'>"
        '<input name=\'{"identifier":"100001","x":"\' value=\'"}\'></form>'
        "<script>document.forms[0].submit()</script>"
    )
    attacker = deployment.pages.page("prize.html", form)
    with page.expect_response(f"{deployment.url}/api/v1/scan") as answer:
        page.goto(attacker)
    response = answer.value
    assert "capture_session=" in response.request.all_headers().get("cookie", "")
    assert response.status == 403
    assert "cross-site request refused" in response.json()["detail"]


def test_only_the_ehr_may_frame_capture(context: BrowserContext, deployment: Deployment) -> None:
    chart = f"<!doctype html><iframe src='{deployment.url}/' width=400 height=300></iframe>"

    corp: dict[str, str | None] = {}

    def framed_from(host: str) -> tuple[list[str], list[str]]:
        page = context.new_page()
        console = watch_console(page)

        def note_corp(response: Response) -> None:
            corp.setdefault(response.url, response.headers.get("cross-origin-resource-policy"))

        page.on("response", note_corp)
        page.goto(deployment.pages.page("chart.html", chart, host=host))
        page.wait_for_load_state("load")
        loaded = [f.url for f in page.frames if f.url.startswith(deployment.url)]
        page.close()
        return loaded, console

    loaded, console = framed_from("127.0.0.1")  # the chart's origin
    assert loaded == [f"{deployment.url}/"], console
    assert csp_complaints(console) == []
    assert corp[f"{deployment.url}/"] == "same-origin"  # CORP does not stop the EHR framing it

    loaded, console = framed_from("localhost")  # the same page from another origin
    assert loaded == []
    assert any("frame-ancestors" in m for m in csp_complaints(console)), console


def test_an_unset_secret_key_is_reported_once_at_start(deployment: Deployment) -> None:
    """No CAPTURE_SECRET_KEY in this deployment: the operator is told once, at start-up."""
    log = Path(deployment.service.log_path).read_text()
    assert log.count("CAPTURE_SECRET_KEY is not set") == 1
