"""No patient data in the logs of a full run (EHR sandbox + API + Orthanc, logging at INFO).

The flow is what a ward sees in a day: a SMART EHR launch, the patient banner, a wristband
scan of another patient (refused), a photo delivered to the archive and verified, priors and
the wound timeline, a request for another session's patient (refused), a search with a name
in the query string, a sign-in callback with a bad code, and logout. Then everything the API
process wrote is searched for every sandbox patient's names, MRNs and birth dates, and for
the tokens, cookies and one-time launch values; none may appear. The log must still say what
happened: method, route, status, duration and the capture id.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from capture_api.capture.anatomy import resolve
from ehr_sandbox import data
from tests.conftest import phone_jpeg
from tests.hostile.client import assert_actionable
from tests.hostile.corpus import INJECTIONS
from tests.hostile.ehr_stack import EhrStack, patient_phi

FOREARM, _ = resolve("left forearm")
ACCESS_LINE = re.compile(
    r"INFO capture\.access: (GET|POST) (/\S*|\(no route\)) (\d{3}) \d+\.\d ms( capture=\S+)?$"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EhrStack]:
    with EhrStack(tmp_path_factory.mktemp("ehr-stack")) as running:
        yield running


def test_injection_strings_in_a_wristband_scan_are_refused_or_not_found(stack: EhrStack) -> None:
    """The scan body's one text field, with every injection string (before the log scan)."""
    nurse = stack.browser()
    stack.launch(nurse, "enc-okada")
    for name, value in INJECTIONS.items():
        for identifier in (value, f"{data.MRN_SYSTEM}|{value}"):
            answer = nurse.post("/api/v1/scan", json={"identifier": identifier})
            assert answer.status_code in (404, 422), (name, answer.status_code, answer.text)
            words = ("wristband",) if answer.status_code == 404 else ("identifier",)
            assert_actionable(answer, answer.status_code, *words, echoed=identifier)
    assert nurse.get("/api/v1/session").status_code == 200  # still signed in, still serving


def _full_run(stack: EhrStack) -> None:
    """The day on the ward, over HTTP; each step asserts it did what it should."""
    nurse, other = stack.browser(), stack.browser()
    session = stack.launch(nurse, "enc-muller")
    context = session["context_id"]
    banner = nurse.get(f"/api/v1/contexts/{context}")
    assert banner.status_code == 200 and banner.json()["patient"]["id"] == "100001"

    wrong = nurse.post("/api/v1/scan", json={"identifier": f"{data.MRN_SYSTEM}|100003"})
    assert wrong.status_code == 403, wrong.text

    photo = phone_jpeg(320, 240, gps=True, seed=2024)
    fields = {
        "capture_id": "phi-log-1",
        "context_id": context,
        "body_site": FOREARM.code_value,
        "laterality": "L",
        "note": "Jürgen Müller, MRN 100001: wound healing well",  # PHI in a free-text note
    }
    sent = nurse.post("/api/v1/captures", data=fields, files={"photo": ("p.jpg", photo)})
    assert sent.status_code == 202, sent.text
    _wait_verified(nurse, "phi-log-1")

    query = {"body_site": FOREARM.code_value}
    assert nurse.get(f"/api/v1/contexts/{context}/priors", params=query).status_code == 200
    assert nurse.get(f"/api/v1/contexts/{context}/timeline", params=query).status_code == 200
    assert nurse.get("/api/v1/captures", params={"context_id": context}).status_code == 200

    smith = stack.launch(other, "enc-smith-a")["context_id"]
    assert nurse.get(f"/api/v1/contexts/{smith}").status_code == 403
    refused = nurse.post(
        "/api/v1/captures",
        data={**fields, "capture_id": "phi-log-2", "context_id": smith},
        files={"photo": ("p.jpg", photo)},
    )
    assert refused.status_code == 403, refused.text

    searched = nurse.get("/api/v1/body-sites", params={"q": "Müller 100001 1950-03-14"})
    assert searched.status_code in (200, 422)
    bad_code = nurse.get("/launch/callback", params={"code": "Smith-19800101", "state": "x" * 43})
    assert 400 <= bad_code.status_code < 500
    assert nurse.post("/logout").status_code in (200, 204, 303)
    assert nurse.get("/api/v1/session").status_code == 401


def _wait_verified(browser: httpx.Client, capture_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = browser.get(f"/api/v1/captures/{capture_id}").json()["status"]
        assert status != "failed"
        if status == "verified":
            return
        time.sleep(0.1)
    raise AssertionError(f"{capture_id} not verified")


def _variants(word: str) -> set[str]:
    """The word as written, without accents, transliterated (ü -> ue) and URL-encoded."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    german = word.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae")
    return {word, plain, german, quote(word), quote(unicodedata.normalize("NFD", word))}


def _leaks(text: str, stack: EhrStack) -> list[str]:
    found: list[str] = []
    lowered = text.lower()
    for kind, values in patient_phi().items():
        for value in values:
            for variant in _variants(value):
                if kind == "name":  # names in any case: "SMITH", "smith"
                    hit = variant.lower() in lowered
                else:  # numbers not inside longer numbers (a UID, a port)
                    hit = re.search(rf"(?<!\d){re.escape(variant)}(?!\d)", text) is not None
                if hit:
                    found.append(f"{kind} {variant!r}")
    secrets = stack.secrets()
    assert len(secrets) >= 5, secrets  # cookies, CSRF tokens, access/refresh tokens, code, state
    found.extend(f"secret {s[:6]}..." for s in secrets if s in text)
    return found


def _log_files(stack: EhrStack) -> list[Path]:
    """What the API process wrote: its stdout/stderr, and any *.log under its data folder."""
    data_dir = Path(stack.service.settings["CAPTURE_DATA_DIR"])
    return [stack.service.log_path, *sorted(data_dir.rglob("*.log"))]


def test_a_full_run_logs_what_happened_and_no_patient_data(stack: EhrStack) -> None:
    _full_run(stack)
    stack.service.stop()  # flush and close: everything it will ever write is on disk
    text = "\n".join(p.read_text(errors="replace") for p in _log_files(stack))

    assert _leaks(text, stack) == []

    access = [m for m in map(ACCESS_LINE.search, text.splitlines()) if m]
    seen = {(m.group(1), m.group(2), m.group(3)) for m in access}
    assert ("POST", "/api/v1/captures", "202") in seen, seen
    assert ("POST", "/api/v1/captures", "403") in seen
    assert ("POST", "/api/v1/scan", "403") in seen
    assert ("GET", "/launch/callback", "303") in seen
    assert ("GET", "/api/v1/contexts/{context_id}/timeline", "200") in seen
    assert any(m.group(4) == " capture=phi-log-1" for m in access), "no capture id logged"
    assert "?" not in "".join(m.group(2) for m in access)


def test_the_log_scan_would_see_a_leak(stack: EhrStack) -> None:
    """The scanner itself: a name, an MRN, a birth date and a token are each caught."""
    stack.secrets()  # the stack has run: there are tokens to look for
    leaks = ("Patient Müller", "q=M%C3%BCller", "mrn=100005.", "born 20140505", "Juergen", "SMITH")
    for leak in leaks:
        assert _leaks(leak, stack), leak
    assert _leaks("capture 1000012 at 2026-01-01", stack) == []  # digits inside other numbers


def test_query_strings_never_reach_the_log_even_from_other_loggers(stack: EhrStack) -> None:
    """The filter on the handler: an httpx-style line with a FHIR search is cut at the '?'."""
    from capture_api.logging_config import QUERY_REMOVED, scrub

    line = 'HTTP Request: GET http://ehr/fhir/Patient?identifier=urn:oid:1|100001 "HTTP/1.1 200"'
    assert scrub(line) == f'HTTP Request: GET http://ehr/fhir/Patient{QUERY_REMOVED} "HTTP/1.1 200"'
    assert httpx.URL(line.split()[3]).params["identifier"].endswith("100001")
