"""The real stack the browser drives: Orthanc, the development EHR sandbox, the capture API.

Each part is the one the other suites use (``tests.orthanc.OrthancServer``,
``ehr_sandbox.server.SandboxServer``, ``tests.deliver.service_process.ServiceProcess``); this
only wires them together the way a deployment would: the API is registered as a SMART app in
the sandbox and delivers to Orthanc over DICOMweb, and browsers reach it over real HTTP.
``bench/pwa_bench.py`` uses it too.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pydicom
from pydicom.dataset import Dataset

from ehr_sandbox import data
from ehr_sandbox.auth_server import create_launch, register_client
from ehr_sandbox.server import SandboxServer
from tests.deliver.service_process import REPO, ServiceProcess
from tests.orthanc import OrthancServer, free_port

CLIENT_ID = "capture-web"
SCOPES = (
    "launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs user/Patient.rs"
)
#: A standalone launch picks no patient: the phone then scans a wristband or uses the worklist.
STANDALONE_SCOPES = "openid fhirUser online_access user/Patient.rs user/Encounter.rs"
#: The sandbox's wound-care encounters (Smith, John b and Okada) are on this station's list.
WORKLIST_STATION = "WOUND-PHONE-01"
#: Small enough that a test can send a photo over it (413), large enough for a 12 MP photo.
MAX_UPLOAD_BYTES = 6_000_000


@dataclass(frozen=True)
class WebStack:
    """The three running parts, and the URLs a browser needs."""

    orthanc: OrthancServer
    sandbox: SandboxServer
    api: ServiceProcess
    workdir: Path

    def launch_url(self, encounter: str, api: ServiceProcess | None = None) -> str:
        """The sandbox EHR's "Launch capture" link for one encounter (a SMART EHR launch);
        for another API, the URL that link redirects to (the EHR's launch id is made the same
        way, ``create_launch``)."""
        if api is None:
            return f"{self.sandbox.state.base_url}/ehr/launch/{encounter}"
        launch = create_launch(self.sandbox.state, encounter)
        return f"{api.url}/launch?{urlencode({'iss': self.sandbox.fhir_base, 'launch': launch})}"

    @contextmanager
    def another_api(self, name: str, **extra: str) -> Iterator[ServiceProcess]:
        """A second capture API (its own database) on the same EHR and archive, e.g. with
        ``CAPTURE_CONSENT_REQUIRED=always``; registered in the sandbox as its own SMART app."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        client_id = f"{CLIENT_ID}-{name}"
        register_client(self.sandbox.state, client_id, f"{url}/launch/callback")
        sandbox = self.sandbox
        settings = api_settings(self.workdir / name, self.orthanc, sandbox, url, client_id) | extra
        log = self.workdir / f"{name}.log"
        with ServiceProcess(settings, log_path=log, port=port) as api:
            yield api

    def audit_events(self, action: str) -> list[tuple[str, str | None, str | None]]:
        """(outcome, patient, detail) of the trail's domain events of one action, in order,
        read from the running API's own database (read-only)."""
        database = self.workdir / "api" / "capture.db"
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            rows = connection.execute(
                "SELECT outcome, patient, detail FROM audit_event "
                "WHERE action = ? AND route IS NULL ORDER BY id",
                (action,),
            ).fetchall()
        return [(str(o), p, d) for o, p, d in rows]

    # --- the archive, read through Orthanc's own REST API (not our DICOMweb client) ------------

    def archived(self, sop_instance_uid: str) -> Dataset:
        """The stored instance, as Orthanc gives its file back."""
        rest = self.orthanc.rest_url
        found = httpx.post(f"{rest}/tools/lookup", content=sop_instance_uid).json()
        (instance,) = [f["ID"] for f in found if f["Type"] == "Instance"]
        data = httpx.get(f"{rest}/instances/{instance}/file", timeout=30).content
        return pydicom.dcmread(io.BytesIO(data))

    def patient_sop_uids(self, patient_id: str) -> list[str]:
        """Every SOP Instance UID Orthanc holds for a Patient ID (duplicates would show twice)."""
        rest = self.orthanc.rest_url
        uids = []
        for patient in httpx.get(f"{rest}/patients?expand").json():
            if patient["MainDicomTags"].get("PatientID") == patient_id:
                for item in httpx.get(f"{rest}/patients/{patient['ID']}/instances").json():
                    uids.append(item["MainDicomTags"]["SOPInstanceUID"])
        return uids


def api_settings(
    workdir: Path, orthanc: OrthancServer, sandbox: SandboxServer, url: str, client_id: str
) -> dict[str, str]:
    """``CAPTURE_*`` settings of an API registered with the sandbox (SMART EHR and standalone
    launch without a patient, then wristband scan or its UPS-RS worklist), archiving to
    Orthanc."""
    ehr = {
        "iss": sandbox.fhir_base,
        "client_id": client_id,
        "scopes": SCOPES,
        "standalone_scopes": STANDALONE_SCOPES,
        "mrn_system": data.MRN_SYSTEM,
    }
    return {
        "CAPTURE_WORKLIST_URL": f"{sandbox.state.base_url}/dicom-web",
        "CAPTURE_WORKLIST_STATION_CODE": WORKLIST_STATION,
        "CAPTURE_DATA_DIR": str(workdir / "api"),
        "CAPTURE_DICOMWEB_URL": orthanc.base_url,
        "CAPTURE_PUBLIC_URL": url,
        "CAPTURE_EHRS": json.dumps([ehr]),
        "CAPTURE_COOKIE_SECURE": "false",  # plain http on loopback
        "CAPTURE_WEB_CLIENT_DIR": str(REPO / "web_client"),
        "CAPTURE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        "CAPTURE_POLL_SECONDS": "0.05",
        "CAPTURE_RETRY_BASE_SECONDS": "0.2",
        "CAPTURE_RETRY_MAX_SECONDS": "1",
        # Every test signs in afresh; the sign-in rate limit is tested by the security suite.
        "CAPTURE_RATE_LIMIT_LOGIN_PER_MINUTE": "0",
        "CAPTURE_RATE_LIMIT_UPLOADS_PER_MINUTE": "0",
    }


@contextmanager
def sandbox_launching(port: int, client_id: str) -> Iterator[SandboxServer]:
    """The sandbox EHR whose "Launch capture" links open the API on loopback ``port``, with
    that API registered as the public SMART client ``client_id`` (``/launch/callback``)."""
    url = f"http://127.0.0.1:{port}"
    with SandboxServer(app_launch_url=f"{url}/launch") as sandbox:
        register_client(sandbox.state, client_id, f"{url}/launch/callback")
        yield sandbox


@contextmanager
def web_stack(workdir: Path, **extra: str) -> Iterator[WebStack]:
    """Start Orthanc, the sandbox and the API (``extra``: more ``CAPTURE_*`` settings)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        OrthancServer(workdir / "orthanc") as orthanc,
        sandbox_launching(port, CLIENT_ID) as sandbox,
    ):
        settings = api_settings(workdir, orthanc, sandbox, url, CLIENT_ID) | extra
        with ServiceProcess(settings, log_path=workdir / "api.log", port=port) as api:
            yield WebStack(orthanc, sandbox, api, workdir)
