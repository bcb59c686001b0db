"""Notify the EHR after verified storage: FHIR R4 Media / DocumentReference, created once.

``NotifyWorker`` (``worker``) is a second durable outbox beside the delivery outbox: it pulls
verified captures into ``notification`` rows and creates each resource with FHIR R4
conditional create (http.html 3.1.0.8.1) on the SOP Instance UID identifier, authenticated by
SMART Backend Services (``backend_auth``). ``resources`` builds and validates the resources;
``fhir_writer`` speaks HTTP to the EHR.
"""

from __future__ import annotations

from capture_api.notify.worker import NotifyWorker

__all__ = ["NotifyWorker"]
