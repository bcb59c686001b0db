"""Our exception tree -> HTTP, in exactly one place (routes raise CaptureError subclasses).

Every answer is ``{"detail": "<a sentence a clinician can act on>"}``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from capture_api.context.fhir import (
    FhirError,
    FhirForbidden,
    FhirNotFound,
    FhirUnauthorized,
    FhirUnavailable,
)
from capture_api.context.smart import LaunchError
from capture_api.context.worklist import (
    WorkitemNotFound,
    WorkitemTaken,
    WorklistError,
    WorklistUnavailable,
)
from capture_api.exceptions import (
    ArchiveError,
    CaptureConflict,
    CaptureError,
    ImageTooLarge,
    InputRejected,
    NotSignedIn,
    PatientMismatch,
    RoleRequired,
    UnknownContext,
    UnsupportedFormat,
)

#: Most specific first.
STATUS_OF: tuple[tuple[type[CaptureError], int], ...] = (
    (NotSignedIn, 401),
    (PatientMismatch, 403),
    (RoleRequired, 403),
    (UnknownContext, 404),
    (CaptureConflict, 409),
    (ImageTooLarge, 413),
    (UnsupportedFormat, 415),
    (InputRejected, 422),
    (ArchiveError, 502),
    (FhirUnauthorized, 401),
    (FhirForbidden, 403),
    (FhirNotFound, 404),
    (FhirUnavailable, 503),
    (FhirError, 502),
    (WorkitemTaken, 409),
    (WorkitemNotFound, 404),
    (WorklistUnavailable, 503),
    (WorklistError, 502),
    (CaptureError, 500),
)

#: failure_kind recorded on a capture -> the status its upload answered with.
STATUS_OF_KIND = {
    "unsupported-format": 415,
    "corrupt-image": 422,
    "too-large": 413,
    "invalid-metadata": 422,
    "invalid-input": 422,
}


def status_for(exc: CaptureError) -> int:
    if isinstance(exc, LaunchError):  # carries its own: 400/401/403/502
        return exc.status_code
    return next(code for cls, code in STATUS_OF if isinstance(exc, cls))


def install(app: FastAPI) -> None:
    """Register the handler for every CaptureError."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CaptureError)
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    app.add_exception_handler(CaptureError, handle)
