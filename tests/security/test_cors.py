"""CORS: none by default (a same-origin app); a list of origins for integrations, no cookies."""

from __future__ import annotations

import pytest

from tests.security.conftest import AppFactory

LAB = "https://lab.hospital.example"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


def test_by_default_no_origin_is_allowed(make_app: AppFactory) -> None:
    client = make_app()
    answer = client.options("/api/v1/contexts", headers=preflight(LAB))
    assert answer.status_code >= 400
    assert "access-control-allow-origin" not in answer.headers
    read = client.get("/api/v1/body-sites", params={"q": "sacrum"}, headers={"Origin": LAB})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


def test_a_listed_origin_may_call_without_credentials(make_app: AppFactory) -> None:
    client = make_app(cors_origins=LAB)
    allowed = client.options("/api/v1/contexts", headers=preflight(LAB))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == LAB
    assert "access-control-allow-credentials" not in allowed.headers
    assert "POST" in allowed.headers["access-control-allow-methods"]
    created = client.post(
        "/api/v1/contexts", json={"patient": {"id": "LAB-1"}}, headers={"Origin": LAB}
    )
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == LAB


def test_a_preflight_from_an_unlisted_origin_is_refused(make_app: AppFactory) -> None:
    client = make_app(cors_origins=[LAB])
    refused = client.options("/api/v1/contexts", headers=preflight("https://evil.example"))
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    read = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in read.headers


@pytest.mark.parametrize("value", ["*", "lab.hospital.example", "https://lab.example/path"])
def test_a_wildcard_or_a_non_origin_is_refused_at_start(make_app: AppFactory, value: str) -> None:
    with pytest.raises(ValueError, match="CAPTURE_CORS_ORIGINS"):
        make_app(cors_origins=[value])
