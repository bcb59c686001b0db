"""The sandbox as one ASGI app: FHIR at /fhir, SMART authorization at /auth, UPS-RS at
/dicom-web/workitems, and an "EHR" page at / that launches the capture app."""

from __future__ import annotations

from fastapi import FastAPI

from ehr_sandbox import auth_server, fhir_server, ups_server
from ehr_sandbox.state import SandboxState


def create_app(state: SandboxState) -> FastAPI:
    app = FastAPI(title="capture EHR sandbox (synthetic data only)")
    app.state.sandbox = state
    for module in (fhir_server, auth_server, ups_server):
        app.include_router(module.router(state))
    return app
