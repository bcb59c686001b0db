"""The full stack in EHR mode: the sandbox EHR, a real Orthanc and the API as a subprocess.

Everything speaks real HTTP on loopback: the test plays the browser (an ``httpx.Client`` with
the API's cookie) and the EHR user who clicks "Launch capture". Every URL the browser asks
for is recorded, so the launch's one-time values (``launch``, ``code``, ``state``) can be
looked for in the logs along with the tokens and the session cookie.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from ehr_sandbox import data
from ehr_sandbox.auth_server import register_client
from ehr_sandbox.server import SandboxServer
from tests.context.test_ehr_capture import _launch
from tests.deliver.service_process import ServiceProcess
from tests.hostile.conftest import service_settings
from tests.orthanc import OrthancServer, free_port

CLIENT_ID = "capture-hostile"
SCOPES = (
    "launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs user/Patient.rs"
)


class EhrStack:
    """``with EhrStack(folder) as stack:`` Orthanc + sandbox + API (EHR mode, INFO logging)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.orthanc = OrthancServer(folder / "orthanc")
        self.sandbox = SandboxServer(app_launch_url=f"http://127.0.0.1:{self.port}/launch")
        self.api: ServiceProcess | None = None
        self.requested: list[str] = []  # every URL a browser of this stack asked for
        self._browsers: list[httpx.Client] = []

    @property
    def service(self) -> ServiceProcess:
        assert self.api is not None, "the stack is not started"
        return self.api

    def __enter__(self) -> EhrStack:
        self.orthanc.start()
        self.sandbox.__enter__()
        url = f"http://127.0.0.1:{self.port}"
        register_client(self.sandbox.state, CLIENT_ID, f"{url}/launch/callback")
        registration = {
            "iss": self.sandbox.fhir_base,
            "client_id": CLIENT_ID,
            "scopes": SCOPES,
            "mrn_system": data.MRN_SYSTEM,
        }
        settings = service_settings(self.folder / "data", self.orthanc.base_url) | {
            "CAPTURE_EHRS": json.dumps([registration]),
            "CAPTURE_PUBLIC_URL": url,
            "CAPTURE_COOKIE_SECURE": "false",  # plain http on loopback
        }
        self.api = ServiceProcess(settings, log_path=self.folder / "api.log", port=self.port)
        self.api.start()
        return self

    def __exit__(self, *_: object) -> None:
        for browser in self._browsers:
            browser.close()
        if self.api is not None:
            self.api.close()
        self.sandbox.__exit__()
        self.orthanc.stop()

    # --- the browser -----------------------------------------------------------------------

    def browser(self) -> httpx.Client:
        """A new browser (its own cookie jar) that records every URL it requests."""

        def record(request: httpx.Request) -> None:
            self.requested.append(str(request.url))

        client = httpx.Client(
            base_url=self.service.url, timeout=30, event_hooks={"request": [record]}
        )
        self._browsers.append(client)
        return client

    def launch(self, browser: httpx.Client, encounter: str) -> dict[str, Any]:
        """Click "Launch capture" in the EHR for ``encounter``; return the session, and send
        its CSRF token on every later request of this browser."""
        session = _launch(browser, self.sandbox, encounter)  # type: ignore[arg-type]
        browser.headers["X-CSRF-Token"] = str(session.get("csrf_token", ""))
        return session

    # --- what must never be logged ---------------------------------------------------------

    def secrets(self) -> set[str]:
        """Tokens, cookies, CSRF tokens and one-time launch values seen so far."""
        found: set[str] = set()
        for url in self.requested:
            found.update(v for _, v in parse_qsl(urlsplit(url).query) if len(v) >= 8)
        for browser in self._browsers:
            found.update(v for v in browser.cookies.values() if v)
            found.add(str(browser.headers.get("X-CSRF-Token", "")))
        found.update(self._stored_tokens())
        return {s for s in found if len(s) >= 8 and not s.startswith("http")}

    def _stored_tokens(self) -> set[str]:
        """The access and refresh tokens of every session (the API's own database)."""
        database = Path(self.service.settings["CAPTURE_DATA_DIR"]) / "capture.db"
        connection = sqlite3.connect(database, timeout=10)
        try:
            rows = connection.execute("SELECT access_token, refresh_token FROM user_session")
            return {token for row in rows for token in row if token}
        finally:
            connection.close()


def patient_phi() -> dict[str, set[str]]:
    """Every sandbox patient's names, MRNs and birth dates (ISO and DICOM forms)."""
    names: set[str] = set()
    mrns: set[str] = set()
    births: set[str] = set()
    for patient in data.PATIENTS.values():
        for name in patient["name"]:
            names.add(name["family"])
            names.update(name["given"])
        mrns.update(i["value"] for i in patient["identifier"])
        if "birthDate" in patient:
            births.update({patient["birthDate"], patient["birthDate"].replace("-", "")})
    return {"name": names, "mrn": mrns, "birth date": births}
