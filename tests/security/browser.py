"""The browser side of a signed-in session, for any test that POSTs with a session cookie.

Since the CSRF guard (capture_api.api.security.csrf), every POST/PUT/PATCH/DELETE that
carries the ``capture_session`` cookie must send ``X-CSRF-Token`` with the value
``GET /api/v1/session`` answers, as the phone client does. ``launch_from_ehr`` signs a
TestClient in through the sandbox EHR (a real SMART launch over loopback HTTP) and makes it
send that header from then on.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx
from fastapi.testclient import TestClient

from capture_api.api.security.csrf import CSRF_HEADER
from capture_api.capture.anatomy import resolve
from ehr_sandbox.state import SandboxState
from tests.conftest import phone_jpeg
from tests.responses import Response

FOREARM, _ = resolve("left forearm")


class RunningSandbox(Protocol):
    """A started sandbox EHR (``SandboxServer`` or a test's own restartable one)."""

    state: SandboxState


def adopt_csrf_token(client: TestClient) -> dict[str, Any]:
    """Read the session and send its CSRF token on every later request; returns the session."""
    response = client.get("/api/v1/session")
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    client.headers[CSRF_HEADER] = session["csrf_token"]
    return session


def launch_from_ehr(
    client: TestClient, sandbox: RunningSandbox, encounter: str = "enc-muller"
) -> dict[str, Any]:
    """Click "Launch capture" for an encounter in the sandbox EHR and follow the redirects.

    Returns the ``/api/v1/session`` answer; the client sends its CSRF token from then on.
    """
    ehr = httpx.get(f"{sandbox.state.base_url}/ehr/launch/{encounter}")
    start = client.get(ehr.headers["location"], follow_redirects=False)
    assert start.status_code == 302, start.text
    back = httpx.get(start.headers["location"]).headers["location"]
    done = client.get(back, follow_redirects=False)
    assert done.status_code == 303, done.text
    return adopt_csrf_token(client)


def launch_as(
    client: TestClient, sandbox: RunningSandbox, user: str, encounter: str = "enc-muller"
) -> dict[str, Any]:
    """``launch_from_ehr`` with ``user`` (e.g. ``prac-nina``) signed in to the sandbox EHR."""
    sandbox.state.extra["sandbox_user"] = user
    try:
        return launch_from_ehr(client, sandbox, encounter)
    finally:
        sandbox.state.extra.pop("sandbox_user", None)


def upload(
    client: TestClient,
    context_id: str,
    capture_id: str,
    photo: bytes | None = None,
    /,
    **headers: str,
) -> Response:
    """POST a photo of the left forearm (``photo``, or a small one made from ``capture_id``),
    with extra request headers, if given."""
    if photo is None:
        photo = phone_jpeg(320, 240, seed=len(capture_id))
    response: Response = client.post(
        "/api/v1/captures",
        data={
            "capture_id": capture_id,
            "context_id": context_id,
            "body_site": FOREARM.code_value,
            "laterality": "L",
        },
        files={"photo": ("p.jpg", photo, "image/jpeg")},
        headers=headers,
    )
    return response
