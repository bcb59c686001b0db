"""The photos a clinician took back as another patient's, offered for the patient now open.

``GET /contexts/{id}/refilable``: the photos this user rejected as of the wrong patient (or
worklist entry) in the last 24 hours and has not re-filed, whose patient is not this
context's -- what the phone offers to "file for this patient" once the right patient is open
(``POST /captures/{capture_id}/rejection/refile``). Only the site and the times are given:
nothing of the other patient.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.deps import CorrectionsDep
from capture_api.api.errors import responses
from capture_api.api.no_store import NoStoreRoute
from capture_api.capture import RejectReason, site_name

router = APIRouter(
    prefix="/contexts/{context_id}/refilable", tags=["rejections"], route_class=NoStoreRoute
)


class RefilableOut(BaseModel):
    """One photo taken back from another patient's record, to be filed for this one."""

    capture_id: str
    reason: RejectReason
    rejected_at: dt.datetime
    captured_at: dt.datetime | None = Field(description="When the photo was taken, if known")
    body_site: str | None
    laterality: str | None
    site_name: str | None = Field(description="The site with its side, as the phone shows it")
    refile_url: str


@router.get("", response_model=list[RefilableOut], responses=responses(*CONTEXT_ERRORS))
def list_refilable(
    context_id: str, request: Request, access: AccessDep, corrections: CorrectionsDep
) -> list[RefilableOut]:
    """This user's photos taken back as another patient's, not filed anywhere yet."""
    target = access.context(context_id, "read")
    return [
        RefilableOut(
            capture_id=capture.id,
            reason=RejectReason.from_code(rejection.reason),
            rejected_at=rejection.rejected_at,
            captured_at=capture.captured_at or capture.created_at,
            body_site=capture.body_site_code,
            laterality=capture.laterality,
            site_name=site_name(capture.body_site_code, capture.laterality),
            refile_url=request.url_for("refile_capture", capture_id=capture.id).path,
        )
        for rejection, capture in corrections.awaiting_refile(target, access.actor)
    ]
