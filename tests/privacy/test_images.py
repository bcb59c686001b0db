"""The review views' images come from one implementation (``capture_api.review.images``), and
a break-the-glass view that cannot be audited is not shown.

Real uploads into the local archive, integration mode (the caller holds every role), a real
SQLite failure for the audit trail (a trigger that refuses every insert)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from capture_api.deliver import InstanceRef
from capture_api.privacy.break_glass import NOT_AUDITED
from capture_api.review.images import NOT_FOUND, View
from tests.capture.test_timeline import _laplacian_variance, _wait
from tests.privacy.people import send_photo
from tests.security.browser import FOREARM
from tests.security.conftest import AppFactory

REASON = "Comparing wound edges with last week's photo"
PATIENT = {"id": "MRN-IMG", "name": {"family": "Roe", "given": "Ann"}}


def _context_with(client: TestClient, *levels: str) -> str:
    context: str = client.post("/api/v1/contexts", json={"patient": PATIENT}).json()["context_id"]
    for seed, level in enumerate(levels):
        sent = send_photo(client, context, level, seed=seed, sensitivity=level)
        assert sent.status_code == 202, sent.text
    _wait(client, *levels)
    return context


def _by_level(client: TestClient, url: str) -> dict[str, dict[str, Any]]:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    items = body["items"] if isinstance(body, dict) else body
    return {item["sensitivity"]: item for item in items}


def test_priors_and_timeline_serve_the_same_image_for_the_same_photo(
    make_app: AppFactory,
) -> None:
    client = make_app(worker_enabled=True, poll_seconds=0.05)
    context = _context_with(client, "normal", "restricted")
    priors = _by_level(client, f"/api/v1/contexts/{context}/priors")
    timeline = _by_level(
        client, f"/api/v1/contexts/{context}/timeline?body_site={FOREARM.code_value}"
    )
    archive = client.app.state.runtime.archive  # type: ignore[attr-defined]
    for level in ("normal", "restricted"):
        from_priors = client.get(priors[level]["thumbnail_url"] + "?size=256")
        from_timeline = client.get(timeline[level]["thumbnail_url"])  # ?size=256
        for answer in (from_priors, from_timeline):
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "image/jpeg"
            assert answer.headers["cache-control"] == "no-store"
        assert from_priors.content == from_timeline.content, level  # one decision, one image
        ref = priors[level]
        clear = archive.thumbnail(_ref(ref), 256)
        if level == "normal":
            assert from_priors.content == clear
        else:  # blurred on the server: much less detail than the archive's clear rendering
            assert _laplacian_variance(from_priors.content) < _laplacian_variance(clear) / 4


def test_an_unknown_photo_is_not_found_in_each_views_words(make_app: AppFactory) -> None:
    client = make_app(worker_enabled=True, poll_seconds=0.05)
    context = _context_with(client, "normal")
    unknown = "1.2.3/1.2.3.4/1.2.3.4.5"
    for url, view in (
        (f"/api/v1/contexts/{context}/priors/{unknown}/thumbnail", View.PRIORS),
        (f"/api/v1/contexts/{context}/timeline/{unknown}/image", View.TIMELINE),
    ):
        answer = client.get(url)
        assert answer.status_code == 404
        assert answer.json() == {"detail": NOT_FOUND[view]}
        assert answer.headers["cache-control"] == "no-store"


def test_a_clear_view_that_cannot_be_audited_is_not_sent(make_app: AppFactory) -> None:
    client = make_app(worker_enabled=True, poll_seconds=0.05)
    context = _context_with(client, "restricted")
    (item,) = client.get(f"/api/v1/contexts/{context}/priors").json()
    assert client.post(item["unblur_url"], json={"reason": REASON}).status_code == 200
    engine: Engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:  # a real database failure: every audit insert refused
        connection.execute(
            text(
                "CREATE TRIGGER audit_event_broken BEFORE INSERT ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        )
    refused = client.post(item["unblur_url"], json={"reason": REASON})
    assert refused.status_code == 503  # AuditUnavailable: try again, nothing shown
    assert refused.json() == {"detail": NOT_AUDITED}
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["cache-control"] == "no-store"
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_event_broken"))
    assert client.post(item["unblur_url"], json={"reason": REASON}).status_code == 200


def _ref(item: dict[str, Any]) -> InstanceRef:
    return InstanceRef(item["study_uid"], item["series_uid"], item["sop_instance_uid"])
