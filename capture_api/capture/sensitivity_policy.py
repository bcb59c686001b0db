"""Which body sites make a photo sensitive by default: the suggestion the phone shows.

The clinician decides; the policy only pre-selects the flag when a site is picked, so a
genital or facial photo is never marked normal by forgetting a toggle. The default rules match
words in the SNOMED CT meanings of the selectable sites (CID 4029/4031), which keeps new
sites in those groups covered without a hand-kept code list; a hospital replaces or extends
them with ``CAPTURE_SENSITIVE_SITES`` (a JSON list of rules by code or by word).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel, Field, model_validator

from capture_api.capture.anatomy import BodySite, all_sites
from capture_api.capture.sensitivity import Sensitivity, SensitivityCategory, SensitivityLevel


class SensitiveSiteRule(BaseModel):
    """One rule: sites by SNOMED code or by a word in their meaning -> a suggested sensitivity."""

    codes: list[str] = Field(default_factory=list, description="SNOMED CT concept ids")
    words: list[str] = Field(
        default_factory=list, description="Lower-case word stems matched in the site meaning"
    )
    level: SensitivityLevel = SensitivityLevel.RESTRICTED
    categories: list[SensitivityCategory] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_a_selector(self) -> SensitiveSiteRule:
        if not self.codes and not self.words:
            raise ValueError("a sensitive-site rule needs codes or words")
        return self


#: The default policy (issue: genitals, breast, buttocks/perineum, face).
DEFAULT_RULES: tuple[SensitiveSiteRule, ...] = (
    SensitiveSiteRule(
        words=[
            "genital",
            "penis",
            "glans",
            "scrot",
            "testi",
            "vulv",
            "vagin",
            "labi",
            "clitor",
            "perine",
            "anus",
            "anal",
            "pubi",
        ],
        categories=[SensitivityCategory.SEXUAL_GENITAL],
    ),
    SensitiveSiteRule(
        words=["breast", "nipple", "areola", "mammary"], categories=[SensitivityCategory.BREAST]
    ),
    SensitiveSiteRule(words=["buttock", "gluteal", "natal cleft", "sacrococcygeal"]),
    SensitiveSiteRule(
        words=[
            "face",
            "facial",
            "cheek",
            "forehead",
            "chin",
            "nose",
            "nasal",
            "lip",
            "eye",
            "eyelid",
            "eyebrow",
            "orbit",
            "periorbital",
            "mouth",
        ],
        categories=[SensitivityCategory.IDENTIFIABLE_FACE],
    ),
)


@dataclass(frozen=True)
class SensitivityPolicy:
    """Site code -> suggested sensitivity, built once from the rules."""

    suggestions: dict[str, Sensitivity]

    @classmethod
    def from_rules(
        cls, rules: Sequence[SensitiveSiteRule], sites: Iterable[BodySite] | None = None
    ) -> SensitivityPolicy:
        suggestions: dict[str, Sensitivity] = {}
        for site in sites if sites is not None else all_sites():
            for rule in rules:
                if site.code_value in rule.codes or _meaning_matches(site.meaning, rule.words):
                    current = suggestions.get(site.code_value, Sensitivity())
                    suggestions[site.code_value] = _merge(current, rule)
        return cls(suggestions)

    def suggest(self, code: str | None) -> Sensitivity | None:
        """The suggested sensitivity for a site, or None when the site is not sensitive."""
        return self.suggestions.get(code) if code else None


@cache
def default_policy() -> SensitivityPolicy:
    """The built-in policy (no ``CAPTURE_SENSITIVE_SITES``)."""
    return SensitivityPolicy.from_rules(DEFAULT_RULES)


def policy_for(rules: Sequence[SensitiveSiteRule] | None) -> SensitivityPolicy:
    """The configured policy: the hospital's rules, or the default when none are set."""
    return default_policy() if rules is None else SensitivityPolicy.from_rules(rules)


def _meaning_matches(meaning: str, words: Sequence[str]) -> bool:
    """Whole words or word stems at a word start ("lip" matches "lip", not "ellipse")."""
    text = meaning.casefold()
    return any(re.search(rf"\b{re.escape(w.casefold())}", text) for w in words)


_LEVEL_ORDER = list(SensitivityLevel)


def _merge(current: Sensitivity, rule: SensitiveSiteRule) -> Sensitivity:
    """Several matching rules add categories and keep the highest level."""
    level = max(current.level, rule.level, key=_LEVEL_ORDER.index)
    return Sensitivity(level, current.categories | frozenset(rule.categories))
