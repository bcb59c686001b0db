"""The HTTP API through FastAPI's TestClient: health and the body-site lookup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import capture_api
from capture_api.api.app import create_app
from capture_api.capture.anatomy import get_site, resolve


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def _search(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/body-sites", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    return body


# --- health ----------------------------------------------------------------------------------


def test_healthz_reports_ok_and_the_package_version(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": capture_api.__version__}


# --- search ----------------------------------------------------------------------------------


def test_search_left_forearm_returns_the_resolved_site_with_its_side(client: TestClient) -> None:
    expected, _ = resolve("left forearm")
    hits = _search(client, q="left forearm")
    assert hits, "no hit for 'left forearm'"
    first = hits[0]
    assert first["site"]["code"] == expected.code_value
    assert first["site"]["meaning"] == expected.meaning
    assert first["site"]["scheme"] == "SCT"
    assert first["site"]["paired"] is True
    assert first["laterality"] == "L"
    assert all(hit["laterality"] == "L" for hit in hits)
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_search_query_string_is_url_decoded(client: TestClient) -> None:
    response = client.get("/api/v1/body-sites?q=left%20forearm")
    assert response.status_code == 200
    assert response.json()[0]["site"]["code"] == resolve("left forearm")[0].code_value


def test_search_without_q_is_422(client: TestClient) -> None:
    response = client.get("/api/v1/body-sites")
    assert response.status_code == 422
    assert any(err["loc"][-1] == "q" for err in response.json()["detail"])


@pytest.mark.parametrize("limit", [0, -1, 51])
def test_search_limit_out_of_range_is_422(client: TestClient, limit: int) -> None:
    response = client.get("/api/v1/body-sites", params={"q": "forearm", "limit": limit})
    assert response.status_code == 422
    assert any(err["loc"][-1] == "limit" for err in response.json()["detail"])


def test_search_limit_caps_the_number_of_hits(client: TestClient) -> None:
    many = _search(client, q="forearm", limit=10)
    assert len(many) > 2, "need more than two hits for 'forearm' to test the limit"
    two = _search(client, q="forearm", limit=2)
    assert 1 <= len(two) <= 2
    assert two == many[: len(two)]


def test_search_without_a_match_is_an_empty_list(client: TestClient) -> None:
    assert _search(client, q="xyzzy") == []


def test_search_side_only_query_has_no_laterality_in_hits(client: TestClient) -> None:
    hits = _search(client, q="sacrum")
    assert hits
    assert hits[0]["laterality"] is None
    assert hits[0]["site"]["paired"] is False


# --- one site --------------------------------------------------------------------------------


def test_get_site_by_code(client: TestClient) -> None:
    code = resolve("left forearm")[0].code_value
    site = get_site(code)
    response = client.get(f"/api/v1/body-sites/{code}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == code
    assert body["meaning"] == site.meaning
    assert body["paired"] is site.paired
    assert body["context_group"] == f"CID {site.context_group}"
    assert body["synonyms"] == list(site.synonyms)


def test_get_unknown_site_is_404_naming_the_code(client: TestClient) -> None:
    response = client.get("/api/v1/body-sites/999999999")
    assert response.status_code == 404
    assert "999999999" in response.json()["detail"]
