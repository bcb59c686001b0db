"""The FastAPI application: thin routers over the data-path packages.

It must start with no EHR and no archive configured (README: ``make run``): the default
archive is a local DICOMDIR folder, and nothing connects anywhere at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from capture_api import __version__
from capture_api.api import errors
from capture_api.api.limits import BodySizeLimit
from capture_api.api.routes import body_sites, captures, contexts, health, priors
from capture_api.config import Settings, get_settings
from capture_api.runtime import Runtime

#: Room for the multipart envelope and form fields around the photo itself.
_FORM_OVERHEAD = 256 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app (a factory, so tests and uvicorn get fresh instances)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        app.state.runtime = runtime
        runtime.start()
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(
        title="capture",
        version=__version__,
        summary="Point-of-care clinical photo capture into DICOM archives.",
        description=(
            "Phone photos become DICOM VL Photographic Images with coded anatomy, "
            "delivered to the archive through a durable outbox. PHI routes live under /api/v1."
        ),
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes + _FORM_OVERHEAD)
    app.include_router(health.router)
    for router in (body_sites.router, contexts.router, captures.router, priors.router):
        app.include_router(router, prefix="/api/v1")
    return app
