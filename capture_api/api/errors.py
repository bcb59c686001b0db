"""Our exception tree -> HTTP, in exactly one place (routes raise CaptureError subclasses).

Every answer is ``{"detail": "<a sentence a clinician can act on>"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
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
    ConsentRequired,
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
    (ConsentRequired, 428),
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


#: FastAPI/pydantic field messages that name Python types instead of what to send.
_FIELD_MESSAGES = {
    "Expected UploadFile": "must be a file part of the multipart form, not a text value",
}


def readable_field_errors(errors: Sequence[Any]) -> list[Any]:
    """FastAPI's field errors (same shape, ``loc`` kept) with messages a person can follow."""
    out = []
    for error in errors:
        message = str(error.get("msg", ""))
        for raw, better in _FIELD_MESSAGES.items():
            if raw in message:
                message = better
        out.append({**error, "msg": message.removeprefix("Value error, ")})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers for every CaptureError and for field validation errors."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CaptureError)
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    async def handle_fields(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = jsonable_encoder(readable_field_errors(exc.errors()))
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(CaptureError, handle)
    app.add_exception_handler(RequestValidationError, handle_fields)
