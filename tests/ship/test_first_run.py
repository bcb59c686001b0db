"""The documented first run, as written: a fresh clone, ``make run``, one photo to ``verified``.

Issue 12: every other test passes absolute folders and fresh archives, so the README's own
defaults (``./var``, the embedded archive, the sandbox EHR on port 9000) went untested, and the
first thing a new user did failed. This test is that new user:

1. clone the repository into an empty folder (the working tree's uncommitted files are laid
   over the clone, so a developer tests what they are about to commit);
2. run ``make run`` exactly as the README says: no setting in the environment, ports 8000/9000;
3. open the sandbox EHR page, click the first "Launch capture" link, follow the SMART launch
   like a browser, send one photo of the right lower leg, and wait for ``verified``;
4. find the DICOM file under ``var/archive`` and have dciodvfy check it;
5. stop ``make run`` (Ctrl-C), start it again, and send a second photo the same way.

It needs the two ports free and PyPI (``make run`` installs the package into ``.venv``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.fileset import FileSet

from tests.conftest import REPO, dciodvfy_errors, phone_jpeg
from tests.managed import ManagedServer, log_tail

API = "http://127.0.0.1:8000"  # README: "serves on http://127.0.0.1:8000"
EHR = "http://127.0.0.1:9000"  # README: "the development EHR sandbox ... on http://127.0.0.1:9000/"
RIGHT_LOWER_LEG = "30021000"  # SNOMED CT "Lower leg structure" (CID 4031)
#: A fresh ``make run`` creates a venv and installs the package: minutes on a cold pip cache.
FIRST_START_SECONDS = 600.0
VERIFIED_SECONDS = 30.0


class MakeRun(ManagedServer):
    """``make run`` in ``folder`` with a new user's environment, stopped like Ctrl-C."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.folder, self.log = folder, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = FIRST_START_SECONDS) -> None:
        for url in (API, EHR):
            if _answers(url):
                raise AssertionError(f"{url} is already taken: stop what runs there first")
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                ["make", "run"],
                cwd=self.folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: Ctrl-C reaches make's children
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"make run exited:\n{log_tail(self.log, 60)}")
            if _answers(f"{API}/healthz") and _answers(EHR):
                return
            time.sleep(0.5)
        tail = log_tail(self.log, 60)
        raise AssertionError(f"make run did not serve within {timeout:g} s:\n{tail}")

    def stop(self) -> None:
        """Ctrl-C: SIGINT to the whole process group, as a terminal sends it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (_answers(f"{API}/healthz") or _answers(EHR)):
            time.sleep(0.2)
        self.process = None


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1.0)
    except httpx.TransportError:
        return False
    return True


def _fresh_clone(target: Path) -> Path:
    """A clone of this repository, with the working tree's uncommitted files laid over it."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source, copy = REPO / name, target / name
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
        elif copy.exists():  # deleted in the working tree, not yet committed
            copy.unlink()
    return target


def _launch_first_patient(browser: httpx.Client) -> dict[str, Any]:
    """Open the sandbox EHR and click the first "Launch capture", as a person would."""
    page = httpx.get(f"{EHR}/").text
    found = re.search(r"href='([^']+)'>Launch capture<", page)
    assert found, f"no 'Launch capture' link on the sandbox EHR page:\n{page[:500]}"
    url = httpx.URL(EHR).join(unescape(found.group(1)))
    ehr = httpx.get(url)  # the EHR sends the browser to capture's /launch with iss + launch
    landed = browser.get(ehr.headers["location"], follow_redirects=True)
    assert landed.status_code == 200 and str(landed.url).startswith(API), landed.url
    session = browser.get(f"{API}/api/v1/session")
    assert session.status_code == 200, session.text
    body: dict[str, Any] = session.json()
    browser.headers["X-CSRF-Token"] = body["csrf_token"]
    return body


def _send_and_wait(browser: httpx.Client, context_id: str, capture_id: str, seed: int) -> None:
    sent = browser.post(
        f"{API}/api/v1/captures",
        data={
            "capture_id": capture_id,
            "context_id": context_id,
            "body_site": RIGHT_LOWER_LEG,
            "laterality": "R",
        },
        files={"photo": ("IMG_0001.jpg", phone_jpeg(1280, 960, seed=seed), "image/jpeg")},
        headers={"Origin": API},
    )
    assert sent.status_code == 202, sent.text
    deadline = time.monotonic() + VERIFIED_SECONDS
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = browser.get(f"{API}/api/v1/captures/{capture_id}").json()
        if status["status"] in ("verified", "failed"):
            break
        time.sleep(0.2)
    assert status.get("status") == "verified", status


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Path]:
    yield _fresh_clone(tmp_path / "capture")


def test_make_run_as_the_readme_says_takes_a_photo_to_verified_twice(
    clone: Path, tmp_path: Path
) -> None:
    log = tmp_path / "make-run.log"
    for run, capture_id in enumerate(("first-photo", "after-restart")):
        with MakeRun(clone, log), httpx.Client(timeout=30) as browser:
            session = _launch_first_patient(browser)
            _send_and_wait(browser, session["context_id"], capture_id, seed=run)

    archive = clone / "var" / "archive"  # README: "an embedded archive ... in var/archive/"
    instances = list(FileSet(archive / "DICOMDIR"))
    assert len(instances) == 2, [i.path for i in instances]
    for instance in instances:
        path = Path(instance.path)
        assert path.is_relative_to(archive)
        assert dciodvfy_errors(path) == [], path
        assert instance.PatientID == "100001"  # the sandbox's first patient, from FHIR
    output = log.read_text(errors="replace")
    assert "SetuptoolsDeprecationWarning" not in output, "make run printed a packaging warning"
    assert "Traceback" not in output, log_tail(log, 80)
