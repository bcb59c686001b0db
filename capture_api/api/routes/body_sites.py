"""Coded body sites for the client's body map and search box (DICOM CID 4029/4031)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from capture_api.api.deps import get_runtime
from capture_api.capture.anatomy import BodySite, Laterality, get_site, search
from capture_api.capture.sensitivity import SensitivityCategory, SensitivityLevel
from capture_api.capture.sensitivity_policy import SensitivityPolicy, policy_for
from capture_api.exceptions import InvalidMetadata

router = APIRouter(prefix="/body-sites", tags=["body sites"])


class SuggestedSensitivity(BaseModel):
    """What the phone pre-selects for a sensitive site (the clinician can change it)."""

    level: SensitivityLevel
    categories: list[SensitivityCategory]


class BodySiteOut(BaseModel):
    """One coded site as the client shows and sends it back."""

    code: str
    scheme: str
    meaning: str
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
    score: float


def _out(site: BodySite, policy: SensitivityPolicy) -> BodySiteOut:
    suggestion = policy.suggest(site.code_value)
    return BodySiteOut(
        code=site.code_value,
        scheme=site.code.scheme_designator,
        meaning=site.meaning,
        context_group=f"CID {site.context_group}",
        paired=site.paired,
        synonyms=list(site.synonyms),
        suggested_sensitivity=None
        if suggestion is None
        else SuggestedSensitivity(level=suggestion.level, categories=sorted(suggestion.categories)),
    )


@router.get("", response_model=list[BodySiteMatch])
def search_sites(
    q: Annotated[str, Query(min_length=1, max_length=100, description="e.g. 'left forearm'")],
    policy: PolicyDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[BodySiteMatch]:
    """Search meanings and synonyms; a side word in the query comes back as laterality."""
    return [
        BodySiteMatch(site=_out(m.site, policy), laterality=m.laterality, score=m.score)
        for m in search(q, limit)
    ]


@router.get("/{code}", response_model=BodySiteOut, responses={404: {"description": "Unknown"}})
def get_body_site(code: str, policy: PolicyDep) -> BodySiteOut:
    """One site by its SNOMED CT code."""
    try:
        return _out(get_site(code), policy)
    except InvalidMetadata as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
