"""Coded body sites for the client's body map and search box (DICOM CID 4029/4031).

Every answer carries the site's one display name (``BodySite.display_name``): the phone shows
these names and never makes its own, so the map, the search, review and sending read alike.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from capture_api.api.deps import get_runtime
from capture_api.api.errors import responses
from capture_api.capture import (
    BodySite,
    FreeText,
    Laterality,
    SensitivityCategory,
    SensitivityLevel,
    SensitivityPolicy,
    get_site,
    offer,
    policy_for,
)
from capture_api.exceptions import InvalidMetadata, NotFound

router = APIRouter(prefix="/body-sites", tags=["body sites"])


class SuggestedSensitivity(BaseModel):
    """What the phone pre-selects for a sensitive site (the clinician can change it)."""

    level: SensitivityLevel
    categories: list[SensitivityCategory]


class BodySiteOut(BaseModel):
    """One coded site as the client shows and sends it back."""

    code: str
    scheme: str
    meaning: str  # Code Meaning (0008,0104)
    name: str  # the display name without a side (for an unpaired site: its only name)
    names: dict[Laterality, str]  # a paired site's display name per side: L, R, B
    context_group: str
    paired: bool
    synonyms: list[str]
    suggested_sensitivity: SuggestedSensitivity | None


def get_policy(request: Request) -> SensitivityPolicy:
    """The deployment's sensitive-site policy (``CAPTURE_SENSITIVE_SITES`` or the default)."""
    return policy_for(get_runtime(request).settings.sensitive_sites)


PolicyDep = Annotated[SensitivityPolicy, Depends(get_policy)]


class BodySiteMatch(BaseModel):
    """A search hit, with the side parsed from the query ("left forearm" -> L)."""

    site: BodySiteOut
    laterality: Laterality | None
    name: str  # the display name with that side (a paired site's): what the picker shows
    score: float


#: The sides a paired site is photographed on (U is for unpaired sites).
_SIDES = (Laterality.LEFT, Laterality.RIGHT, Laterality.BILATERAL)


def _out(site: BodySite, policy: SensitivityPolicy) -> BodySiteOut:
    suggestion = policy.suggest(site.code_value)
    return BodySiteOut(
        code=site.code_value,
        scheme=site.code.scheme_designator,
        meaning=site.meaning,
        name=site.display_name(),
        names={side: site.display_name(side) for side in _SIDES} if site.paired else {},
        context_group=f"CID {site.context_group}",
        paired=site.paired,
        synonyms=list(site.synonyms),
        suggested_sensitivity=None
        if suggestion is None
        else SuggestedSensitivity(level=suggestion.level, categories=sorted(suggestion.categories)),
    )


@router.get("", response_model=list[BodySiteMatch])
def search_sites(
    q: Annotated[FreeText, Query(min_length=1, max_length=100, description="e.g. 'left forearm'")],
    policy: PolicyDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[BodySiteMatch]:
    """Search meanings and synonyms; a side word in the query comes back as laterality.

    Near-duplicates are not offered (``anatomy.offer``): a region is left out when a skin site
    of it matches too ("R shin" gives the skin of the front of the lower leg, not also "Lower
    leg").
    """
    return [
        BodySiteMatch(
            site=_out(m.site, policy),
            laterality=m.laterality,
            name=m.site.display_name(m.laterality if m.site.paired else None),
            score=m.score,
        )
        for m in offer(q, limit)
    ]


@router.get(
    "/lookup",
    response_model=list[BodySiteOut],
    responses=responses((NotFound, "A code is not a body site")),
)
def lookup_sites(
    code: Annotated[list[str], Query(min_length=1, max_length=100, description="SNOMED CT codes")],
    policy: PolicyDep,
) -> list[BodySiteOut]:
    """Several sites by code at once, in the order asked (the body map's names in one request)."""
    return [_out(_site(c), policy) for c in code]


@router.get(
    "/{code}", response_model=BodySiteOut, responses=responses((NotFound, "Unknown body site"))
)
def get_body_site(code: str, policy: PolicyDep) -> BodySiteOut:
    """One site by its SNOMED CT code."""
    return _out(_site(code), policy)


def _site(code: str) -> BodySite:
    """The site of a code asked for by its URL: an unknown one is not found (not bad input)."""
    try:
        return get_site(code)
    except InvalidMetadata as exc:
        raise NotFound(str(exc)) from exc
