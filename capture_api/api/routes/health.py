"""Operations endpoints at the root (no session, no PHI): liveness, readiness, metrics.

- ``/healthz``: the process is up. For a container HEALTHCHECK and a liveness probe: it never
  depends on anything else, so an archive outage does not get healthy processes restarted.
- ``/readyz``: the database, the spool and the archive are usable now (200), else 503 with the
  dependency that is not and what to check (``capture_api.api.readiness``).
- ``/metrics``: Prometheus text format (``capture_api.observability.metrics``).
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from capture_api import __version__
from capture_api.api.deps import get_runtime
from capture_api.api.readiness import Readiness
from capture_api.observability import metrics

router = APIRouter(tags=["health"])
_readiness_lock = threading.Lock()


class Health(BaseModel):
    """Liveness answer: the process is up and which version it runs."""

    status: str
    version: str


class CheckOut(BaseModel):
    """One dependency: usable or not, how long the check took, and what to fix."""

    ok: bool
    ms: float
    detail: str | None = None


class ReadinessOut(BaseModel):
    """Readiness answer: ``ready`` with every check ok, else ``not ready`` (HTTP 503)."""

    status: str
    checks: dict[str, CheckOut]


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up (no dependency is checked: that is /readyz)."""
    return Health(status="ok", version=__version__)


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "a dependency is not usable"}},
)
def readyz(request: Request) -> JSONResponse:
    """Database (``SELECT 1``), spool folder and archive (QIDO-RS, or its folder) usable now,
    and no background loop failing again and again."""
    results = _readiness(request).check()
    ready = all(r.ok for r in results)
    body = ReadinessOut(
        status="ready" if ready else "not ready",
        checks={
            r.name: CheckOut(ok=r.ok, ms=round(r.seconds * 1000, 1), detail=r.detail)
            for r in results
        },
    )
    return JSONResponse(
        body.model_dump(),
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def prometheus_metrics(request: Request) -> Response:
    """Counters and STOW latency of this process, outbox depth from the database."""
    body = metrics.render(get_runtime(request).engine)
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})


def _readiness(request: Request) -> Readiness:
    """One ``Readiness`` per app (it keeps the archive's auth, and so an OAuth2 token)."""
    with _readiness_lock:
        checks: Readiness | None = getattr(request.app.state, "readiness", None)
        if checks is None:
            runtime = get_runtime(request)
            checks = Readiness(runtime.settings, runtime.engine, loops=runtime.loops)
            request.app.state.readiness = checks
        return checks
