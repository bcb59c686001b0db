"""Earlier photos of the context's patient, for side-by-side comparison (wound care).

Only the context's own patient can be asked for, and an instance's thumbnail is served only
if the archive lists it for that patient. Responses are ``no-store``: nothing with PHI is
cached by the browser or by us.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel

from capture_api.api.access import AccessDep
from capture_api.api.deps import ArchiveDep
from capture_api.capture.timeline import issuer_of, patient_of
from capture_api.context.schemas import PatientIn
from capture_api.deliver.archive import Archive, PriorImage

router = APIRouter(prefix="/contexts/{context_id}/priors", tags=["priors"])
_NO_STORE = {"Cache-Control": "no-store"}


class PriorOut(BaseModel):
    """One earlier photo, with the URL of its small thumbnail."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    acquired: str | None
    body_site_code: str | None
    body_site_meaning: str | None
    laterality: str | None
    description: str | None
    comment: str | None
    thumbnail_url: str


def _patient(access: AccessDep, context_id: str) -> PatientIn:
    return patient_of(access.context(context_id, "priors"))


def _priors(archive: Archive, patient: PatientIn, body_site: str | None) -> list[PriorImage]:
    return archive.find_priors(patient.id, issuer_of(patient), body_site, limit=100)


@router.get("", response_model=list[PriorOut])
def list_priors(
    context_id: str,
    request: Request,
    response: Response,
    access: AccessDep,
    archive: ArchiveDep,
    body_site: Annotated[str | None, Query(pattern=r"^[0-9]{5,18}$")] = None,
) -> list[PriorOut]:
    """The patient's photos in the archive, newest first, optionally of one coded site."""
    response.headers.update(_NO_STORE)
    priors = _priors(archive, _patient(access, context_id), body_site)
    return [
        PriorOut(
            study_uid=p.ref.study_uid,
            series_uid=p.ref.series_uid,
            sop_instance_uid=p.ref.sop_instance_uid,
            acquired=p.acquired,
            body_site_code=p.body_site_code,
            body_site_meaning=p.body_site_meaning,
            laterality=p.laterality,
            description=p.description,
            comment=p.comment,
            thumbnail_url=str(
                request.url_for(
                    "prior_thumbnail",
                    context_id=context_id,
                    study_uid=p.ref.study_uid,
                    series_uid=p.ref.series_uid,
                    sop_instance_uid=p.ref.sop_instance_uid,
                ).path
            ),
        )
        for p in priors
    ]


@router.get(
    "/{study_uid}/{series_uid}/{sop_instance_uid}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "Not this patient's"}},
)
def prior_thumbnail(
    context_id: str,
    study_uid: str,
    series_uid: str,
    sop_instance_uid: str,
    access: AccessDep,
    archive: ArchiveDep,
    size: Annotated[int, Query(ge=32, le=512)] = 256,
) -> Response:
    """A small JPEG of one of the patient's photos (never another patient's)."""
    priors = _priors(archive, _patient(access, context_id), None)
    match = next((p for p in priors if p.ref.sop_instance_uid == sop_instance_uid), None)
    if match is None or (match.ref.study_uid, match.ref.series_uid) != (study_uid, series_uid):
        raise HTTPException(404, detail="no such photo for this patient")
    return Response(archive.thumbnail(match.ref, size), media_type="image/jpeg", headers=_NO_STORE)
