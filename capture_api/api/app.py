"""The FastAPI application: thin routers over the data-path packages.

It must start with no EHR and no archive configured (README: ``make run``), so nothing
here connects anywhere at start-up.
"""

from __future__ import annotations

from fastapi import FastAPI

from capture_api import __version__
from capture_api.api.routes import body_sites, health


def create_app() -> FastAPI:
    """Build the app (a factory, so tests and uvicorn get fresh instances)."""
    app = FastAPI(
        title="capture",
        version=__version__,
        summary="Point-of-care clinical photo capture into DICOM archives.",
        description=(
            "Phone photos become DICOM VL Photographic Images with coded anatomy, "
            "delivered to the archive. All PHI-bearing routes live under /api/v1."
        ),
    )
    app.include_router(health.router)
    app.include_router(body_sites.router, prefix="/api/v1")
    return app
