"""Restricted photos over the API, with real uploads into the local archive and real SMART
launches: what a clinician and a sensitive viewer are shown in the priors and the timeline, and
break-the-glass (role + typed reason, clear image once, every attempt audited)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from capture_api.deliver.archive import InstanceRef
from ehr_sandbox.server import SandboxServer
from tests.capture.test_timeline import _laplacian_variance, _wait
from tests.privacy.people import (
    NINA,
    VERA,
    audit_events,
    browser,
    fhir_user,
    send_photo,
    sign_in,
)
from tests.security.browser import FOREARM
from tests.security.conftest import AppFactory

LEVELS = ("normal", "restricted", "very-restricted")
REASON = "  Comparing wound edges with\tlast week's photo  "


@dataclass
class Photos:
    """Nina photographed the patient three times; Vera opened the same patient's chart."""

    nina: TestClient
    vera: TestClient
    nina_context: str
    vera_context: str
    refs: dict[str, InstanceRef]  # level -> the photo's UIDs

    def archive_jpeg(self, level: str, size: int) -> bytes:
        """What the archive renders for the photo: the clear image."""
        archive = self.nina.app.state.runtime.archive  # type: ignore[attr-defined]
        jpeg: bytes = archive.thumbnail(self.refs[level], size)
        return jpeg

    def path(self, context: str, view: str, level: str, tail: str) -> str:
        ref = self.refs[level]
        return (
            f"/api/v1/contexts/{context}/{view}/{ref.study_uid}/{ref.series_uid}/"
            f"{ref.sop_instance_uid}/{tail}"
        )


@pytest.fixture
def photos(make_app: AppFactory, ehr: SandboxServer) -> Photos:
    nina = make_app(ehr=ehr, worker_enabled=True, poll_seconds=0.05)
    nina_context = sign_in(nina, ehr, NINA)["context_id"]
    refs = {}
    for seed, level in enumerate(LEVELS):
        sent = send_photo(nina, nina_context, level, seed=seed, sensitivity=level)
        assert sent.status_code == 202, sent.text
        body = sent.json()
        refs[level] = InstanceRef(body["study_uid"], body["series_uid"], body["sop_instance_uid"])
    _wait(nina, *LEVELS)
    vera = browser(nina)
    vera_context = sign_in(vera, ehr, VERA)["context_id"]
    return Photos(nina, vera, nina_context, vera_context, refs)


def _listed(client: TestClient, url: str) -> dict[str, dict[str, Any]]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return {item["sensitivity"]: item for item in items}


def _timeline_url(context: str) -> str:
    return f"/api/v1/contexts/{context}/timeline?body_site={FOREARM.code_value}"


def test_a_clinician_sees_restricted_photos_blurred_and_very_restricted_not_at_all(
    photos: Photos,
) -> None:
    nina, ctx = photos.nina, photos.nina_context
    priors = _listed(nina, f"/api/v1/contexts/{ctx}/priors")
    assert sorted(priors) == ["normal", "restricted"]
    assert [priors[k]["blurred"] for k in ("normal", "restricted")] == [False, True]
    assert all(p["unblur_url"] is None for p in priors.values())  # no role: no glass to break

    clear = nina.get(priors["normal"]["thumbnail_url"])
    assert clear.content == photos.archive_jpeg("normal", 256)
    served = nina.get(priors["restricted"]["thumbnail_url"])
    assert served.status_code == 200 and served.headers["cache-control"] == "no-store"
    clear_restricted = photos.archive_jpeg("restricted", 256)
    assert served.content != clear_restricted
    assert _laplacian_variance(served.content) < _laplacian_variance(clear_restricted) / 20

    hidden = nina.get(photos.path(ctx, "priors", "very-restricted", "thumbnail"))
    assert hidden.status_code == 404 and hidden.headers["cache-control"] == "no-store"
    timeline = _listed(nina, _timeline_url(ctx))
    assert sorted(timeline) == ["normal", "restricted"]
    image = nina.get(photos.path(ctx, "timeline", "very-restricted", "image"))
    assert image.status_code == 404


def test_a_sensitive_viewer_sees_very_restricted_photos_listed_and_blurred(
    photos: Photos,
) -> None:
    vera, ctx = photos.vera, photos.vera_context
    for listed in (
        _listed(vera, f"/api/v1/contexts/{ctx}/priors"),
        _listed(vera, _timeline_url(ctx)),
    ):
        assert sorted(listed) == sorted(LEVELS)  # the archive's photos of the patient
        assert [listed[k]["blurred"] for k in LEVELS] == [False, True, True]
        assert listed["normal"]["unblur_url"] is None
        assert listed["very-restricted"]["unblur_url"].endswith("/unblur")
    priors = _listed(vera, f"/api/v1/contexts/{ctx}/priors")
    served = vera.get(priors["very-restricted"]["thumbnail_url"]).content
    clear = photos.archive_jpeg("very-restricted", 256)
    assert _laplacian_variance(served) < _laplacian_variance(clear) / 20


def test_unblur_needs_the_role_and_a_typed_reason_and_every_attempt_is_audited(
    photos: Photos, ehr: SandboxServer
) -> None:
    nina, vera = photos.nina, photos.vera
    refused = nina.post(
        photos.path(photos.nina_context, "priors", "restricted", "unblur"), json={"reason": REASON}
    )
    assert refused.status_code == 403 and refused.headers["cache-control"] == "no-store"
    assert "'sensitive-viewer' role" in refused.json()["detail"]

    unblur = photos.path(photos.vera_context, "priors", "restricted", "unblur")
    assert vera.post(unblur, json={}).status_code == 422
    short = vera.post(unblur, json={"reason": "   because   "})
    assert short.status_code == 422 and "at least 10 characters" in short.json()["detail"]

    granted = vera.post(unblur, json={"reason": REASON})
    assert granted.status_code == 200, granted.text
    assert granted.headers["content-type"] == "image/jpeg"
    assert granted.headers["cache-control"] == "no-store"
    assert granted.content == photos.archive_jpeg("restricted", 1024)  # the clear image
    blurred = vera.get(photos.path(photos.vera_context, "timeline", "restricted", "image"))
    assert _laplacian_variance(granted.content) > 20 * _laplacian_variance(blurred.content)

    timeline = photos.path(photos.vera_context, "timeline", "very-restricted", "unblur")
    small = vera.post(timeline, json={"reason": REASON, "size": 256})
    assert small.status_code == 200 and small.content == photos.archive_jpeg("very-restricted", 256)
    stranger = timeline.replace(photos.refs["very-restricted"].sop_instance_uid, "1.2.3.4")
    assert vera.post(stranger, json={"reason": REASON}).status_code == 404

    events = [(e.outcome, e.actor, e.sop_instance_uid) for e in audit_events(nina, "unblur")]
    sops = {level: ref.sop_instance_uid for level, ref in photos.refs.items()}
    by_nina, by_vera = fhir_user(ehr, NINA), fhir_user(ehr, VERA)
    assert events == [
        ("refused", by_nina, sops["restricted"]),
        ("refused", by_vera, sops["restricted"]),
        ("refused", by_vera, sops["restricted"]),
        ("success", by_vera, sops["restricted"]),
        ("success", by_vera, sops["very-restricted"]),
        ("refused", by_vera, "1.2.3.4"),
    ]
    audited = audit_events(nina, "unblur")
    assert all(e.patient == "100001" and e.purpose == "ETREAT" for e in audited)
    assert "reason: Comparing wound edges with last week's photo" in (audited[3].detail or "")
    assert "no sensitive-viewer role" in (audited[0].detail or "")
    assert audited[0].session_id != audited[3].session_id  # two users, two sessions


def test_integration_mode_caller_holds_every_role(make_app: AppFactory) -> None:
    """No EHR registered: the trusted caller sees very-restricted photos (blurred) and may
    unblur them with a reason, audited without a user."""
    client = make_app(worker_enabled=True, poll_seconds=0.05)
    patient = {"id": "MRN-PRIV", "name": {"family": "Roe", "given": "Ann"}}
    made = client.post("/api/v1/contexts", json={"patient": patient})
    context = made.json()["context_id"]
    assert send_photo(client, context, "v", sensitivity="very-restricted").status_code == 202
    _wait(client, "v")
    (item,) = client.get(f"/api/v1/contexts/{context}/priors").json()
    assert (item["sensitivity"], item["blurred"]) == ("very-restricted", True)
    assert client.post(item["unblur_url"], json={"reason": "x"}).status_code == 422
    assert client.post(item["unblur_url"], json={"reason": REASON}).status_code == 200
    outcomes = [(e.outcome, e.actor, e.patient) for e in audit_events(client, "unblur")]
    assert outcomes == [("refused", None, "MRN-PRIV"), ("success", None, "MRN-PRIV")]
