"""The FastAPI application: thin routers over the data-path packages.

It must start with no EHR and no archive configured (README: ``make run``): the default
archive is a local DICOMDIR folder, and nothing connects anywhere at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from capture_api import __version__
from capture_api.api import errors
from capture_api.api.limits import BodySizeLimit
from capture_api.api.routes import (
    body_sites,
    captures,
    contexts,
    health,
    launch,
    priors,
    reports,
    scan,
    timeline,
    worklist,
)
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
        app.state.on_launch = runtime.ehr_contexts.on_launch
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
    app.include_router(launch.router)  # /launch, /launch/callback, /logout, /api/v1/session
    routers = (body_sites, contexts, scan, captures, priors, timeline, worklist, reports)
    for module in routers:
        app.include_router(module.router, prefix="/api/v1")
    _mount_client(app, settings)
    return app


def _mount_client(app: FastAPI, settings: Settings) -> None:
    """The phone client's static files at /app, its page at / (when the folder exists)."""
    folder = settings.web_client_dir
    if not (folder / "index.html").is_file():
        return
    app.mount("/app", StaticFiles(directory=folder), name="client")

    @app.get("/", include_in_schema=False, response_model=None)
    def client_page() -> FileResponse | RedirectResponse:
        return FileResponse(folder / "index.html", headers={"Cache-Control": "no-cache"})
