"""A capture id belongs to its context (issue 14, finding 4).

The black-box test re-sent another session's capture id with the same photo bytes from its
own session and context, and got the first capture's record back (its context, UIDs, site,
"very-restricted"); different bytes gave 409 "already used", and ``GET /captures/{id}``
without a session answered 401 for an id that exists and 404 for one that does not. Now a
re-send into another context is the same 409 as a different photo, the answer names nothing
of the other capture, and reads answer the same for a foreign id as for an unknown one.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from ehr_sandbox.server import SandboxServer
from tests.conftest import phone_jpeg
from tests.privacy.people import browser
from tests.security.browser import launch_as, upload
from tests.security.conftest import AppFactory

PHOTO = phone_jpeg(320, 240, seed=1414)


def _two_sessions(
    make_app: AppFactory, ehr: SandboxServer
) -> tuple[TestClient, str, TestClient, str]:
    """Nurse Nina for Jürgen Müller, and a second browser for John Smith."""
    first = make_app(ehr=ehr)
    mine = launch_as(first, ehr, "prac-nina", "enc-muller")
    second = browser(first)
    theirs = launch_as(second, ehr, "prac-nina", "enc-smith-a")
    return first, mine["context_id"], second, theirs["context_id"]


def test_a_resend_from_another_context_is_refused_and_reveals_nothing(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    first, muller, second, smith = _two_sessions(make_app, ehr)
    stored = first.post(
        "/api/v1/captures",
        data={"capture_id": "cap-1414", "context_id": muller, "sensitivity": "very-restricted"},
        files={"photo": ("p.jpg", PHOTO, "image/jpeg")},
    )
    assert stored.status_code == 202, stored.text
    secret = stored.json()

    same_bytes = upload(second, smith, "cap-1414", PHOTO)
    other_bytes = upload(second, smith, "cap-1414", phone_jpeg(320, 240, seed=7))
    assert same_bytes.status_code == 409, same_bytes.text
    assert other_bytes.status_code == 409
    assert same_bytes.json() == other_bytes.json()  # not even whether the bytes matched
    for value in (muller, secret["sop_instance_uid"], secret["study_uid"], "very-restricted"):
        assert value not in same_bytes.text

    again = upload(first, muller, "cap-1414", PHOTO)  # the owner's own re-send still works
    assert (
        again.status_code == 202 and again.json()["sop_instance_uid"] == secret["sop_instance_uid"]
    )


def test_reading_a_capture_never_tells_whether_the_id_exists(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    first, muller, second, _ = _two_sessions(make_app, ehr)
    assert upload(first, muller, "cap-exists", PHOTO).status_code == 202

    nobody = browser(first)  # no session at all
    exists, unknown = nobody.get("/api/v1/captures/cap-exists"), nobody.get("/api/v1/captures/no")
    assert (exists.status_code, unknown.status_code) == (401, 401)
    assert exists.json() == unknown.json()

    foreign, missing = second.get("/api/v1/captures/cap-exists"), second.get("/api/v1/captures/no")
    assert (foreign.status_code, missing.status_code) == (404, 404)
    assert foreign.json()["detail"] == missing.json()["detail"].replace("'no'", "'cap-exists'")
    assert first.get("/api/v1/captures/cap-exists").status_code == 200
