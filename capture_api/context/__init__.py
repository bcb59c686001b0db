"""Who and where: the EHR and the worklist a capture context comes from.

``smart`` (SMART App Launch 2.2: the authorization request, the token exchange, the EHR
registrations), ``sessions`` (the signed-in user's session, its cookie and its token
refresh), ``launch_roles`` (the roles a launch grants), ``fhir`` and ``fhir_mapping``
(FHIR R4 Patient and Encounter read and mapped to the domain model), ``worklist`` (the
encounter worklist over UPS-RS, IHE EBIW; ``ups_dataset`` its DICOM datasets both ways,
``ups_events`` the UPS event subscription that keeps the list fresh). Clients only:
opening a context from them is ``capture_api.encounters``.
"""

from capture_api.context.fhir import (
    FhirClient,
    FhirError,
    FhirForbidden,
    FhirNotFound,
    FhirUnauthorized,
    FhirUnavailable,
)
from capture_api.context.fhir_mapping import banner, encounter_in, patient_in
from capture_api.context.sessions import COOKIE_NAME, NOT_SIGNED_IN, SessionStore, session_store
from capture_api.context.smart import (
    EHR,
    LaunchError,
    SessionExpired,
    SmartClient,
    find_registration,
)
from capture_api.context.ups_events import LiveWorklist, WorklistEvents
from capture_api.context.worklist import (
    ProducedInstance,
    WorkitemCanceled,
    WorkitemClosed,
    WorkitemCompleted,
    WorkitemNotFound,
    WorkitemTaken,
    WorklistClient,
    WorklistError,
    WorklistRefused,
    WorklistUnavailable,
)

__all__ = [
    "COOKIE_NAME",
    "EHR",
    "NOT_SIGNED_IN",
    "FhirClient",
    "FhirError",
    "FhirForbidden",
    "FhirNotFound",
    "FhirUnauthorized",
    "FhirUnavailable",
    "LaunchError",
    "LiveWorklist",
    "ProducedInstance",
    "SessionExpired",
    "SessionStore",
    "SmartClient",
    "WorkitemCanceled",
    "WorkitemClosed",
    "WorkitemCompleted",
    "WorkitemNotFound",
    "WorkitemTaken",
    "WorklistClient",
    "WorklistError",
    "WorklistEvents",
    "WorklistRefused",
    "WorklistUnavailable",
    "banner",
    "encounter_in",
    "find_registration",
    "patient_in",
    "session_store",
]
