"""The note of a restricted photo is as private as its pixels (issue 14, finding 8).

The black-box test found the ``comment`` of a blurred prior in clear for a plain clinician:
the photo was blurred, its note ("genital warts, partner notified") was not. Now a photo
served blurred is listed without its note and its series description, in the priors and on
the timeline, for every user: the sensitive viewer too, until the glass is broken.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ehr_sandbox.server import SandboxServer
from tests.capture.test_timeline import _wait
from tests.privacy.people import NINA, VERA, browser, send_photo, sign_in
from tests.security.browser import FOREARM
from tests.security.conftest import AppFactory

NOTE = "lesion reviewed with partner present; HIV clinic follow-up"


def _items(client: TestClient, url: str) -> dict[str, dict[str, Any]]:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {i["sensitivity"]: i for i in (body["items"] if isinstance(body, dict) else body)}


def test_blurred_photos_are_listed_without_their_notes(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    nina = make_app(ehr=ehr, worker_enabled=True, poll_seconds=0.05)
    context = sign_in(nina, ehr, NINA)["context_id"]
    for seed, level in enumerate(("normal", "restricted")):
        sent = send_photo(
            nina, context, level, seed=seed, sensitivity=level, note=f"{level}: {NOTE}"
        )
        assert sent.status_code == 202, sent.text
    _wait(nina, "normal", "restricted")
    vera = browser(nina)
    vera_context = sign_in(vera, ehr, VERA)["context_id"]

    for client, ctx in ((nina, context), (vera, vera_context)):
        priors = _items(client, f"/api/v1/contexts/{ctx}/priors")
        timeline = _items(client, f"/api/v1/contexts/{ctx}/timeline?body_site={FOREARM.code_value}")
        assert priors["normal"]["comment"] == f"normal: {NOTE}"
        assert timeline["normal"]["note"] == f"normal: {NOTE}"
        assert priors["restricted"]["blurred"] and timeline["restricted"]["blurred"]
        assert priors["restricted"]["comment"] is None
        assert priors["restricted"]["description"] is None
        assert timeline["restricted"]["note"] is None
        for answer in (priors, timeline):
            assert NOTE not in str(answer["restricted"])
