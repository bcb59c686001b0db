"""Attacks on signing in, as the black-box test ran them against the sandbox EHR (issue 14).

* **Login CSRF** (finding 1): the attacker runs a SMART launch as Otto Berg for patient Ngata
  and stops at the callback URL; a victim browser that opens that URL must not end up signed
  in as Otto for Ngata (its photos would go to the attacker's patient). The launch's ``state``
  is bound to the browser that started it by a short-lived pre-login cookie.
* **Stale sessions** (finding 7): signing in again in the same browser ends the session the
  browser held, so an old cookie (copied, cached, left in a shared tablet's profile) no
  longer answers; after logout neither does.
* **A patient signing in** (finding 10): a launch whose ``fhirUser`` is a ``Patient`` (the
  public SMART launcher's patient-standalone launch) gets no capture role and no session.
"""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from capture_api.context.sessions import COOKIE_NAME
from ehr_sandbox.server import SandboxServer
from tests.privacy.people import browser
from tests.security.browser import launch_as
from tests.security.conftest import AppFactory

#: The pre-login cookie: ``__Host-`` prefixed under https, plain on http development.
LAUNCH_COOKIE = "capture_launch"


def _callback_url(client: TestClient, sandbox: SandboxServer, user: str, encounter: str) -> str:
    """Start a launch in ``client`` as ``user`` and stop where the EHR sends the browser back."""
    sandbox.state.extra["sandbox_user"] = user
    try:
        ehr = httpx.get(f"{sandbox.state.base_url}/ehr/launch/{encounter}")
        start = client.get(ehr.headers["location"], follow_redirects=False)
        assert start.status_code == 302, start.text
        back = httpx.get(start.headers["location"])
        assert back.status_code == 302, back.text
        return str(back.headers["location"])
    finally:
        sandbox.state.extra.pop("sandbox_user", None)


def test_a_callback_opened_in_another_browser_signs_nobody_in(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    victim = make_app(ehr=ehr)
    mine = launch_as(victim, ehr, "prac-nina", "enc-muller")  # the victim's own session
    victim_cookie = victim.cookies[COOKIE_NAME]

    attacker = browser(victim)
    trap = _callback_url(attacker, ehr, "prac-otto", "enc-ngata")  # Otto for Ngata, not opened

    answer = victim.get(trap, follow_redirects=False)
    assert answer.status_code == 403, answer.text
    assert "set-cookie" not in answer.headers or COOKIE_NAME not in answer.headers["set-cookie"]
    assert answer.headers["content-type"].startswith("text/html")
    assert "another browser" in answer.text  # the page says what happened and what to do
    assert "Open capture again from the patient's chart" in answer.text
    assert victim.cookies[COOKIE_NAME] == victim_cookie
    session = victim.get("/api/v1/session").json()
    assert session["patient_fhir_id"] == "pat-muller" == mine["patient_fhir_id"]
    assert session["fhir_user"].endswith("/Practitioner/prac-nina")


def test_the_browser_that_started_the_launch_finishes_it(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr)
    trap = _callback_url(client, ehr, "prac-nina", "enc-ngata")
    assert client.cookies.get(LAUNCH_COOKIE)
    done = client.get(trap, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert client.get("/api/v1/session").json()["patient_fhir_id"] == "pat-ngata"


def test_a_callback_without_the_pre_login_cookie_is_refused(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    """A browser whose pre-login cookie is gone (blocked, expired, another profile)."""
    client = make_app(ehr=ehr)
    trap = _callback_url(client, ehr, "prac-nina", "enc-muller")
    client.cookies.delete(LAUNCH_COOKIE)
    refused = client.get(trap, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/api/v1/session").status_code == 401


def test_the_pre_login_cookie_is_host_prefixed_and_short_lived_under_https(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr, cookie_secure=True)
    ehr_launch = httpx.get(f"{ehr.state.base_url}/ehr/launch/enc-muller")
    start = client.get(ehr_launch.headers["location"], follow_redirects=False)
    cookie = start.headers["set-cookie"]
    assert cookie.startswith(f"__Host-{LAUNCH_COOKIE}=")
    for attribute in ("Secure", "HttpOnly", "Path=/", "Max-Age=600"):
        assert attribute in cookie, cookie
    assert "Domain=" not in cookie  # __Host- forbids it, so no sibling host can set it


def test_signing_in_again_ends_the_previous_session(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr)
    launch_as(client, ehr, "prac-nina", "enc-muller")
    first = client.cookies[COOKIE_NAME]
    launch_as(client, ehr, "prac-nina", "enc-smith-a")
    second = client.cookies[COOKIE_NAME]
    assert first != second

    old = browser(client)
    old.cookies.set(COOKIE_NAME, first)
    assert old.get("/api/v1/session").status_code == 401  # the first cookie is dead

    assert client.post("/logout").status_code == 204
    for cookie in (first, second):
        stale = browser(client)
        stale.cookies.set(COOKIE_NAME, cookie)
        assert stale.get("/api/v1/session").status_code == 401


def _patient_standalone_callback(client: TestClient, sandbox: SandboxServer, patient: str) -> str:
    """A standalone launch (no EHR chart) by the patient ``patient``, who picks themselves in
    the sandbox's patient picker: the public SMART launcher's "patient standalone" launch."""
    sandbox.state.extra["sandbox_user"] = patient
    try:
        start = client.get("/launch", params={"iss": sandbox.fhir_base}, follow_redirects=False)
        assert start.status_code == 302, start.text
        picker = httpx.get(start.headers["location"])
        link = next(
            a.split("'")[0].replace("&amp;", "&")
            for a in picker.text.split("href='")[1:]
            if f"patient={patient}" in a
        )
        back = httpx.get(f"{sandbox.state.base_url}{link}")
        assert back.status_code == 302, back.text
        return str(back.headers["location"])
    finally:
        sandbox.state.extra.pop("sandbox_user", None)


def test_a_patient_signing_in_gets_no_session_and_no_role(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr)
    trap = _patient_standalone_callback(client, ehr, "pat-ngata")  # fhirUser Patient/pat-ngata
    refused = client.get(trap, follow_redirects=False)
    assert refused.status_code == 403, refused.text
    assert "for clinical staff" in refused.text
    assert COOKIE_NAME not in client.cookies
    assert client.get("/api/v1/session").status_code == 401
