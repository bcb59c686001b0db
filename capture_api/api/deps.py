"""Dependencies shared by the routers (FastAPI template style: Annotated aliases).

The dependencies are ``async def`` because they only read ``app.state``: FastAPI runs a plain
``def`` dependency in the thread pool, one thread hop per dependency and request (issue 13:
the hops were 3% of the service's Python time under load). ``get_runtime`` stays a plain
function for the routes that call it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from capture_api.correct import Corrections
from capture_api.deliver.archive import Archive
from capture_api.intake.service import CaptureService
from capture_api.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_service(request: Request) -> CaptureService:
    return get_runtime(request).service


async def get_archive(request: Request) -> Archive:
    return get_runtime(request).archive


async def get_corrections(request: Request) -> Corrections:
    runtime = get_runtime(request)
    return Corrections(runtime.service, runtime.archive)


CorrectionsDep = Annotated[Corrections, Depends(get_corrections)]
ServiceDep = Annotated[CaptureService, Depends(get_service)]
ArchiveDep = Annotated[Archive, Depends(get_archive)]
