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


def test_search_left_forearm_offers_the_skin_sites_with_their_side(client: TestClient) -> None:
    """The region "Forearm" (what the CLI resolves) is not offered beside its skin sites."""
    region, _ = resolve("left forearm")
    hits = _search(client, q="left forearm")
    assert hits, "no hit for 'left forearm'"
    assert region.code_value not in {hit["site"]["code"] for hit in hits}
    first = hits[0]
    assert first["site"]["code"] == "70559009"  # the body map's front forearm
    assert first["site"]["meaning"] == "Skin of anterior surface of forearm"
    assert first["name"] == "Skin of anterior surface of forearm, left"
    assert first["site"]["scheme"] == "SCT"
    assert first["site"]["paired"] is True
    assert first["laterality"] == "L"
    assert all(hit["laterality"] == "L" for hit in hits)
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_search_query_string_is_url_decoded(client: TestClient) -> None:
    response = client.get("/api/v1/body-sites?q=left%20forearm")
    assert response.status_code == 200
    assert response.json()[0]["name"] == "Skin of anterior surface of forearm, left"


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
    many = _search(client, q="hand", limit=10)
    assert len(many) > 2, "need more than two hits for 'hand' to test the limit"
    two = _search(client, q="hand", limit=2)
    assert 1 <= len(two) <= 2
    assert two == many[: len(two)]


def test_search_without_a_match_is_an_empty_list(client: TestClient) -> None:
    assert _search(client, q="xyzzy") == []


def test_r_shin_offers_one_lower_leg_entry(client: TestClient) -> None:
    """ "Lower leg" (CID 4031) and "Skin of anterior surface of lower leg" (CID 4029) both
    match "shin": only the skin site, the one the body map sends, is offered."""
    hits = _search(client, q="R shin")
    legs = [hit for hit in hits if "leg" in hit["name"].lower()]
    assert [(h["site"]["code"], h["laterality"], h["name"]) for h in legs] == [
        ("25763004", "R", "Skin of anterior surface of lower leg, right")
    ]


def test_search_hit_names_are_the_site_names(client: TestClient) -> None:
    for query in ("left hand", "both knees", "sacrum", "right calf", "face", "lower leg"):
        for hit in _search(client, q=query, limit=50):
            site, side = hit["site"], hit["laterality"]
            expected = site["names"][side] if site["paired"] and side else site["name"]
            assert hit["name"] == expected, (query, hit)
        assert len({hit["name"] for hit in _search(client, q=query, limit=50)}) == len(
            _search(client, q=query, limit=50)
        )


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


def test_a_site_has_one_name_per_side(client: TestClient) -> None:
    body = client.get("/api/v1/body-sites/70559009").json()
    assert body["name"] == "Skin of anterior surface of forearm"
    assert body["names"] == {
        "L": "Skin of anterior surface of forearm, left",
        "R": "Skin of anterior surface of forearm, right",
        "B": "Skin of anterior surface of forearm, both sides",
    }
    unpaired = client.get("/api/v1/body-sites/54735007").json()
    assert (unpaired["name"], unpaired["names"]) == ("Sacrum", {})


def test_lookup_gives_several_sites_in_the_order_asked(client: TestClient) -> None:
    codes = ["54735007", "70559009", "25763004"]
    response = client.get("/api/v1/body-sites/lookup", params={"code": codes})
    assert response.status_code == 200, response.text
    sites = response.json()
    assert [site["code"] for site in sites] == codes
    assert sites[1] == client.get("/api/v1/body-sites/70559009").json()


def test_lookup_of_an_unknown_code_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/api/v1/body-sites/lookup", params={"code": ["70559009", "123"]})
    assert response.status_code == 404
    assert "'123'" in response.json()["detail"]
    assert client.get("/api/v1/body-sites/lookup").status_code == 422


def test_get_unknown_site_is_404_naming_the_code(client: TestClient) -> None:
    response = client.get("/api/v1/body-sites/999999999")
    assert response.status_code == 404
    assert "999999999" in response.json()["detail"]
