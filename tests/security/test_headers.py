"""Security headers on every kind of response; the CSP; HSTS only over https; the docs pages."""

from __future__ import annotations

import re

import pytest

from capture_api.api.security.headers import DOCS_PATHS
from ehr_sandbox.server import SandboxServer
from tests.responses import Response
from tests.security.conftest import AppFactory

#: Every response must carry these, whatever produced it (route, error handler, middleware).
EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(self), geolocation=(), microphone=()",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def directives(response: Response) -> dict[str, list[str]]:
    """The response's CSP as {directive: [sources]}."""
    policy = response.headers["content-security-policy"]
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} given twice in {policy}"
        parsed[name] = sources
    return parsed


def assert_hardened(response: Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.url, name, response.headers)
    assert "x-frame-options" not in response.headers  # frame-ancestors governs (EHR embedding)
    csp = directives(response)
    for name, sources in csp.items():
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*"} & set(sources), (name, sources)
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"][0] == "'self'"


def external_loads(page: str) -> list[tuple[str, str]]:
    """(CSP directive, origin) of every script, stylesheet and icon a page loads from afar."""
    loads = []
    for tag in re.findall(r"<(?:script|link)[^>]*>", page):
        found = re.search(r'(?:src|href)="(https://[^"/]+)', tag)
        if found is None:
            continue
        kind = "script-src" if tag.startswith("<script") else "style-src"
        loads.append(("img-src" if "icon" in tag else kind, found.group(1)))
    assert loads, "the docs page loads nothing from a CDN: is this test still looking?"
    return loads


def test_every_kind_of_response_is_hardened(make_app: AppFactory) -> None:
    client = make_app(max_upload_bytes=1000)
    responses = {
        "page": client.get("/"),
        "static file": client.get("/app/app.js"),
        "api": client.get("/api/v1/body-sites", params={"q": "left forearm"}),
        "404": client.get("/api/v1/contexts/no-such-context"),
        "422": client.post("/api/v1/contexts", json={"patient": {}}),
        "413 upload": client.post(
            "/api/v1/captures",
            files={"photo": ("p.jpg", b"\xff" * 400_000, "image/jpeg")},
            data={"capture_id": "c1", "context_id": "x"},
        ),
        "413 json": client.post("/api/v1/contexts", json={"pad": "x" * 70_000}),
        "health": client.get("/healthz"),
        "launch error page": client.get("/launch"),
    }
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses == {
        "page": 200,
        "static file": 200,
        "api": 200,
        "404": 404,
        "422": 422,
        "413 upload": 413,
        "413 json": 413,
        "health": 200,
        "launch error page": 400,
    }
    for response in responses.values():
        assert_hardened(response)


def test_frame_ancestors_lists_the_ehr_and_configured_origins(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr, frame_ancestors="https://chart.hospital.example, https://*.ehr.test")
    csp = directives(client.get("/"))
    assert csp["frame-ancestors"] == [
        "'self'",
        ehr.state.base_url,  # the origin of the registered iss (http://127.0.0.1:<port>)
        "https://chart.hospital.example",
        "https://*.ehr.test",
    ]
    assert csp["form-action"] == ["'self'"] and csp["connect-src"] == ["'self'"]


@pytest.mark.parametrize("value", ["https://a.example; script-src *", "*", "javascript:x"])
def test_a_frame_ancestor_that_is_not_an_origin_is_refused_at_start(
    make_app: AppFactory, value: str
) -> None:
    with pytest.raises(ValueError, match="CAPTURE_FRAME_ANCESTORS"):
        make_app(frame_ancestors=value)


def test_a_route_own_header_wins(make_app: AppFactory) -> None:
    """The launch pages set Cache-Control themselves; the middleware only adds what is missing."""
    response = make_app().get("/launch")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers.get_list("referrer-policy") == ["no-referrer"]


def test_hsts_only_when_the_public_url_is_https(make_app: AppFactory) -> None:
    over_https = make_app(public_url="https://capture.hospital.example").get("/healthz")
    assert over_https.headers["strict-transport-security"] == "max-age=63072000"
    assert "strict-transport-security" not in make_app().get("/healthz").headers  # http dev
    switched_off = make_app(public_url="https://capture.example", hsts_max_age_seconds=0)
    assert "strict-transport-security" not in switched_off.get("/healthz").headers


def test_docs_are_off_with_an_ehr_and_on_with_their_own_policy_without(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    with_ehr = make_app(ehr=ehr)
    assert with_ehr.get("/docs").status_code == 404
    assert with_ehr.get("/redoc").status_code == 404
    assert with_ehr.get("/openapi.json").status_code == 200  # the schema stays readable
    assert make_app(ehr=ehr, api_docs=True).get("/docs").status_code == 200

    integration = make_app()
    for path in ("/docs", "/redoc"):
        page = integration.get(path)
        assert page.status_code == 200 and path in DOCS_PATHS
        csp = directives(page)
        assert csp["frame-ancestors"] == ["'none'"] and csp["connect-src"] == ["'self'"]
        for directive, host in external_loads(page.text):
            assert host in csp[directive], (path, host, csp[directive])
        for name, value in EXPECTED.items():
            assert page.headers[name] == value
