"""Liveness for load balancers and ``make run`` checks."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from capture_api import __version__

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Liveness answer: the process is up and which version it runs."""

    status: str
    version: str


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up (no dependency is checked: that is /readyz, with delivery)."""
    return Health(status="ok", version=__version__)
