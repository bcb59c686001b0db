"""A route class for answers that must never be cached: photos of patients and their lists.

``Cache-Control: no-store`` is added to every answer of a router using ``NoStoreRoute``,
also to the errors our exception handlers would build (404 for another patient's photo, 403
for a missing role), so no browser or proxy keeps anything these routes said.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from capture_api.api.errors import error_response, validation_response
from capture_api.exceptions import CaptureError

NO_STORE = {"Cache-Control": "no-store"}


class NoStoreRoute(APIRoute):
    """Adds ``no-store`` to every answer, also the ones our exception handlers would build."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def no_store(request: Request) -> Response:
            try:
                response = await handler(request)
            except CaptureError as exc:  # as capture_api.api.errors answers it
                response = error_response(exc)
            except HTTPException as exc:  # the framework's own (a body it cannot parse)
                response = JSONResponse(
                    {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
                )
            except RequestValidationError as exc:
                response = validation_response(exc)
            response.headers.update(NO_STORE)
            return response

        return no_store
