"""The sensitive-site policy: which picked sites pre-select the sensitivity flag."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from capture_api.api.app import create_app
from capture_api.capture.anatomy import get_site, resolve
from capture_api.capture.sensitivity import SensitivityCategory, SensitivityLevel
from capture_api.capture.sensitivity_policy import (
    SensitiveSiteRule,
    default_policy,
    policy_for,
)
from capture_api.config import Settings


@pytest.mark.parametrize(
    ("term", "category"),
    [
        ("skin of penis", SensitivityCategory.SEXUAL_GENITAL),
        ("skin of perineum", SensitivityCategory.SEXUAL_GENITAL),
        ("breast", SensitivityCategory.BREAST),
        ("skin of nipple", SensitivityCategory.BREAST),
        ("skin of face", SensitivityCategory.IDENTIFIABLE_FACE),
        ("skin of cheek", SensitivityCategory.IDENTIFIABLE_FACE),
    ],
)
def test_default_policy_suggests_restricted_for_the_sensitive_regions(
    term: str, category: SensitivityCategory
) -> None:
    site, _ = resolve(term)
    suggestion = default_policy().suggest(site.code_value)
    assert suggestion is not None, site.meaning
    assert suggestion.level is SensitivityLevel.RESTRICTED
    assert category in suggestion.categories


def test_buttock_is_restricted_and_ordinary_sites_are_not() -> None:
    buttock, _ = resolve("skin of buttock")
    assert default_policy().suggest(buttock.code_value) is not None
    for term in ("forearm", "skin of knee", "heel", "skin of abdomen", "skin of back"):
        site, _ = resolve(term)
        assert default_policy().suggest(site.code_value) is None, site.meaning


def test_words_match_at_word_starts_only() -> None:
    # "lip" must not catch "ellipse"-like meanings; "Skin of lip" must match.
    policy = policy_for([SensitiveSiteRule(words=["lip"])])
    lip, _ = resolve("skin of lip")
    assert policy.suggest(lip.code_value) is not None
    for code in policy.suggestions:
        assert " lip" in f" {get_site(code).meaning.casefold()}", get_site(code).meaning


def test_configured_rules_replace_the_default_and_keep_the_highest_level() -> None:
    forearm, _ = resolve("forearm")
    face, _ = resolve("skin of face")
    policy = policy_for(
        [
            SensitiveSiteRule(codes=[forearm.code_value]),
            SensitiveSiteRule(
                codes=[forearm.code_value],
                level=SensitivityLevel.VERY_RESTRICTED,
                categories=[SensitivityCategory.ABUSE_FORENSIC],
            ),
        ]
    )
    suggestion = policy.suggest(forearm.code_value)
    assert suggestion is not None
    assert suggestion.level is SensitivityLevel.VERY_RESTRICTED
    assert suggestion.categories == {SensitivityCategory.ABUSE_FORENSIC}
    assert policy.suggest(face.code_value) is None  # the default list was replaced


def test_a_rule_without_codes_or_words_is_refused() -> None:
    with pytest.raises(ValueError, match="needs codes or words"):
        SensitiveSiteRule()


@pytest.fixture
def client(tmp_path: object) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, database_url=None)  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_body_site_api_carries_the_suggestion(client: TestClient) -> None:
    face, _ = resolve("skin of face")
    forearm, _ = resolve("forearm")
    body = client.get(f"/api/v1/body-sites/{face.code_value}").json()
    assert body["suggested_sensitivity"] == {"level": "restricted", "categories": ["FACE"]}
    assert (
        client.get(f"/api/v1/body-sites/{forearm.code_value}").json()["suggested_sensitivity"]
        is None
    )
    hits = client.get("/api/v1/body-sites", params={"q": "scrotum"}).json()
    assert hits[0]["site"]["suggested_sensitivity"]["categories"] == ["SEX"]


def test_env_rules_reach_the_api(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    forearm, _ = resolve("forearm")
    monkeypatch.setenv(
        "CAPTURE_SENSITIVE_SITES", f'[{{"codes": ["{forearm.code_value}"], "level": "restricted"}}]'
    )
    settings = Settings(data_dir=tmp_path)  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as client:
        body = client.get(f"/api/v1/body-sites/{forearm.code_value}").json()
    assert body["suggested_sensitivity"] == {"level": "restricted", "categories": []}
