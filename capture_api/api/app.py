"""The FastAPI application: thin routers over the data-path packages.

It must start with no EHR and no archive configured (README: ``make run``): the default
archive is a local DICOMDIR folder, and nothing connects anywhere at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from capture_api import __version__
from capture_api.api import errors
from capture_api.api.audit_middleware import AuditMiddleware
from capture_api.api.limits import BodySizeLimit
from capture_api.api.request_log import RequestLog
from capture_api.api.routes import (
    audit,
    body_sites,
    captures,
    consent,
    contexts,
    health,
    launch,
    lesions,
    measurements,
    priors,
    queue,
    refiling,
    rejections,
    reports,
    scan,
    timeline,
    unblur,
    worklist,
)
from capture_api.api.security import stack as security
from capture_api.api.security.headers import docs_enabled
from capture_api.config import Settings, get_settings
from capture_api.runtime import Runtime

log = logging.getLogger("capture.app")

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
        docs_url="/docs" if docs_enabled(settings) else None,  # docs/security.md: why
        redoc_url="/redoc" if docs_enabled(settings) else None,
    )
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes + _FORM_OVERHEAD)
    security.install(app, settings)  # headers, CORS, rate limits, CSRF, body limits
    app.add_middleware(RequestLog)  # the access log: route template, status, duration, no PHI
    app.add_middleware(AuditMiddleware, settings=settings)  # outermost: every PHI request
    security.trust_proxies(app, settings)  # before all of them: the real client address
    app.include_router(health.router)
    app.include_router(launch.router)  # /launch, /launch/callback, /logout, /api/v1/session
    routers: tuple[ModuleType, ...] = (
        *(body_sites, contexts, scan, captures, priors, timeline, lesions, worklist, reports),
        measurements,  # capture_api.wounds: wound measurement on a photo
        *(unblur, consent),  # capture_api.privacy: break-the-glass, consent
        audit,  # capture_api.audit: the audit trail export
        queue,  # capture_api.encounters.queue_custody: the phone's offline queue
        rejections,  # capture_api.correct: IHE IOCM rejection and re-filing
        refiling,  # capture_api.correct: what the phone offers to file for this patient
    )
    for module in routers:
        app.include_router(module.router, prefix="/api/v1")
    _mount_client(app, settings)
    return app


def _mount_client(app: FastAPI, settings: Settings) -> None:
    """The phone client (PWA, web_client/README.md): page at /, worker at /sw.js, files at /app.

    The service worker is served from the root because a worker only controls pages below its
    own path. Every shell file is ``no-cache`` (revalidated by ETag before use), so a release
    reaches phones at once; the worker keeps its own copy for starting offline. None of these
    files holds patient data: the page asks the /api/v1 routes, which answer ``no-store``.
    """
    folder = settings.web_client_dir
    if not (folder / "index.html").is_file():
        log.warning(
            "no phone client at %s: / and /app are not served; run from the project folder "
            "or set CAPTURE_WEB_CLIENT_DIR",
            folder,
        )
        return
    revalidate = {"Cache-Control": "no-cache"}

    class ShellFiles(StaticFiles):
        def file_response(self, *args: Any, **kwargs: Any) -> Response:
            response = super().file_response(*args, **kwargs)
            response.headers.update(revalidate)
            return response

    app.mount("/app", ShellFiles(directory=folder), name="client")

    @app.get("/", include_in_schema=False, response_model=None)
    def client_page() -> FileResponse | RedirectResponse:
        return FileResponse(folder / "index.html", headers=revalidate)

    @app.get("/sw.js", include_in_schema=False)
    def service_worker() -> FileResponse:
        return FileResponse(folder / "sw.js", media_type="text/javascript", headers=revalidate)
