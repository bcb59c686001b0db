"""Answers that carry patient data are never cached (issue 14, finding 6).

The black-box test found ``GET /api/v1/contexts/{id}``, ``POST /api/v1/scan``,
``GET /api/v1/worklist`` and ``GET/POST /api/v1/captures`` answered without
``Cache-Control: no-store``: a shared tablet's browser cache, or a proxy, could keep a
patient's banner. Now every answer of an audited (PHI) route says ``no-store``, errors and
refusals from the security layers included, whichever router serves it.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from capture_api.audit.audited_routes import is_audited
from ehr_sandbox.server import SandboxServer
from tests.responses import Response
from tests.security.browser import launch_as, upload
from tests.security.conftest import AppFactory


def _no_store(response: object) -> bool:
    headers = getattr(response, "headers", {})
    return "no-store" in headers.get("cache-control", "")


def test_the_four_routes_the_attacker_named(make_app: AppFactory, ehr: SandboxServer) -> None:
    client = make_app(ehr=ehr, worklist_url=f"{ehr.state.base_url}/dicom-web")
    session = launch_as(client, ehr, "prac-nina")
    context_id = session["context_id"]
    answers: dict[str, Response] = {
        "context": client.get(f"/api/v1/contexts/{context_id}"),
        "scan": client.post("/api/v1/scan", json={"identifier": "100001"}),
        "worklist": client.get("/api/v1/worklist"),
        "upload": upload(client, context_id, "nostore-1"),
        "capture": client.get("/api/v1/captures/nostore-1"),
        "captures": client.get("/api/v1/captures", params={"context_id": context_id}),
    }
    for name, answer in answers.items():
        assert answer.status_code < 300, (name, answer.text)
        assert _no_store(answer), (name, dict(answer.headers))


def test_every_phi_route_answers_no_store_even_when_it_refuses(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    """Each audited route asked without a session and with unknown ids (a redirect to the
    EHR, 401, 403, 404, 422...), and a forged POST: whatever the answer, it is not kept."""
    client = make_app(ehr=ehr)
    paths: list[tuple[str, str]] = []
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if not isinstance(route.original_route, APIRoute) or not route.path_format:
            continue
        path = re.sub(r"\{[^}]+\}", "1.2.3", route.path_format)
        for method in sorted(route.methods or ()):
            if is_audited(path, method):
                paths.append((method, path))
    assert len(paths) > 20, paths
    anonymous = TestClient(client.app, base_url=str(client.base_url))
    for method, path in paths:
        answer = anonymous.request(method, path, follow_redirects=False)
        assert answer.status_code >= 300 or path == "/logout", (method, path, answer.status_code)
        assert _no_store(answer), (method, path, answer.status_code, dict(answer.headers))
    forged = anonymous.post("/api/v1/scan", json={}, headers={"Origin": "https://evil.example"})
    assert _no_store(forged)
