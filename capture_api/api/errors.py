"""Our exception tree -> HTTP, in exactly one place.

Routes raise ``capture_api.exceptions.CaptureError`` subclasses, or let the services they call
raise them, and never build an error answer themselves. This module decides the status of
each class (``STATUS_OF``, most specific first) and the body, always
``{"detail": "<a sentence a clinician can act on>"}`` (plus a ``code`` for the cases the
phone words itself). The same map serves three readers:

* the exception handler ``install`` puts on the app, and ``NoStoreRoute``, which answers its
  routes' errors itself to add ``Cache-Control: no-store`` (``error_response``);
* ``responses``, which writes a route's OpenAPI ``responses`` from the errors it declares
  (``x-errors`` names them), so the documented statuses are the ones the map gives;
* tests/api/test_error_map.py, which walks every route of the app and checks that what a
  route raises is declared and that what it declares maps to the status it documents.

The SMART sign-in pages (``api.routes.launch``) are HTML, not JSON: a ``LaunchError``
carries the status its page answers with (400 ours, 403 refused, 502 the EHR), and a
``SessionExpired`` is always 401. Anything not named here is our own fault: 500.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

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
from capture_api.context.smart import LaunchError, SessionExpired
from capture_api.context.worklist import (
    WorkitemClosed,
    WorkitemNotFound,
    WorklistError,
    WorklistUnavailable,
)
from capture_api.encounters.queue_custody import QueueNotYours
from capture_api.exceptions import (
    ArchiveError,
    CaptureConflict,
    CaptureError,
    Conflict,
    ConsentRequired,
    ImageTooLarge,
    InputRejected,
    NotFound,
    NotSignedIn,
    PatientMismatch,
    RoleRequired,
    UnknownContext,
    UnsupportedFormat,
)
from capture_api.privacy.break_glass import AuditUnavailable

__all__ = [
    "STATUS_OF",
    "error_response",
    "install",
    "raises",
    "readable_field_errors",
    "responses",
    "status_for",
    "status_of",
    "validation_response",
]

#: Error class -> HTTP status. Most specific first: the first row a class is a subclass of
#: decides (``InputRejected`` is 422 unless a more specific row above says otherwise).
STATUS_OF: tuple[tuple[type[CaptureError], int], ...] = (
    (NotSignedIn, 401),
    (SessionExpired, 401),
    (PatientMismatch, 403),
    (RoleRequired, 403),
    (QueueNotYours, 403),
    (ConsentRequired, 428),
    (UnknownContext, 404),
    (CaptureConflict, 409),
    (ImageTooLarge, 413),
    (UnsupportedFormat, 415),
    (InputRejected, 422),
    (NotFound, 404),
    (Conflict, 409),
    (AuditUnavailable, 503),
    (ArchiveError, 502),
    (FhirUnauthorized, 401),
    (FhirForbidden, 403),
    (FhirNotFound, 404),
    (FhirUnavailable, 503),
    (FhirError, 502),
    (WorkitemClosed, 409),
    (WorkitemNotFound, 404),
    (WorklistUnavailable, 503),
    (WorklistError, 502),
    (CaptureError, 500),
)


def status_of(error: type[CaptureError]) -> int:
    """The status every error of this class answers with.

    A ``LaunchError`` (but ``SessionExpired``) has none of its own class: each carries it.
    """
    if issubclass(error, LaunchError) and not issubclass(error, SessionExpired):
        raise TypeError(f"a {error.__name__} carries its own status: it cannot be declared")
    return next(code for cls, code in STATUS_OF if issubclass(error, cls))


def status_for(exc: CaptureError) -> int:
    """The status one raised error answers with."""
    if isinstance(exc, LaunchError):  # carries its own: 400/401/403/502
        return exc.status_code
    return status_of(type(exc))


def error_response(exc: CaptureError) -> JSONResponse:
    """The JSON answer to a raised error: its status and its message as ``detail``.

    An error class with a ``code`` (e.g. the worklist's ``workitem-taken``) adds it, so the
    phone can say the case in its own words (web_client/i18n/en.js).
    """
    body = {"detail": str(exc)}
    code, reason = getattr(exc, "code", None), getattr(exc, "reason", None)
    if isinstance(code, str):
        body["code"] = code
        if isinstance(reason, str):  # the other system's own words, e.g. a Warning header
            body["reason"] = reason
    return JSONResponse(body, status_code=status_for(exc))


_F = TypeVar("_F", bound=Callable[..., Any])


def raises(*errors: type[CaptureError]) -> Callable[[_F], _F]:
    """Name the errors a helper of the routes can raise through what it calls.

    The ``raise`` statements of a route and of the helpers it calls are read from their
    source by tests/api/test_error_map.py; what a service below raises is not, so a helper
    that calls one names it here (kept as ``__raises__``), and the test holds every route
    that calls the helper to declaring these too.
    """

    def mark(helper: _F) -> _F:
        helper.__raises__ = errors  # type: ignore[attr-defined]
        return helper

    return mark


#: One error a route declares: its class, or its class and the route's words for it.
Declared = type[CaptureError] | tuple[type[CaptureError], str]


def responses(*errors: Declared) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that raises these errors, one entry per status.

    The status is the map's; the description is the route's words for the error, else the
    first line of the class's docstring (several errors of one status are joined with
    "; "); ``x-errors`` lists the class names (an OpenAPI extension: clients, and the test
    of this map, read which error answers which status).
    """
    out: dict[int | str, dict[str, Any]] = {}
    for declared in errors:
        error, words = declared if isinstance(declared, tuple) else (declared, _summary(declared))
        entry = out.setdefault(status_of(error), {"description": "", "x-errors": []})
        if error.__name__ not in entry["x-errors"]:
            entry["x-errors"].append(error.__name__)
        if words not in entry["description"].split("; "):
            entry["description"] = "; ".join(filter(None, (entry["description"], words)))
    return {status: out[status] for status in sorted(out, key=str)}


def _summary(error: type[CaptureError]) -> str:
    doc = (error.__doc__ or error.__name__).strip()
    return doc.splitlines()[0].rstrip(".")


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


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """422 for fields FastAPI refused: its list of field errors, in readable words."""
    detail = jsonable_encoder(readable_field_errors(exc.errors()))
    return JSONResponse({"detail": detail}, status_code=422)


def install(app: FastAPI) -> None:
    """Register the handlers for every CaptureError and for field validation errors."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CaptureError)
        return error_response(exc)

    async def handle_fields(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_response(exc)

    app.add_exception_handler(CaptureError, handle)
    app.add_exception_handler(RequestValidationError, handle_fields)
