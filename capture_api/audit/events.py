"""The audit vocabulary: what each recorded ``action`` means in DICOM and in FHIR (IHE BALP).

One table, ``ACTIONS``, so the database row, the FHIR AuditEvent (export) and the DICOM audit
message (syslog) can never disagree about an event. The DICOM codes and their meanings come
from pydicom's copy of the DICOM code dictionary (PS3.16 CID 400-404), not typed by hand.

* Request events (recorded by ``capture_api.api.audit_middleware`` for every PHI request): the
  action is named by the route (``context``, ``capture``, ``priors``...), the BALP action by
  the HTTP method (GET/HEAD=R, POST=C, PUT/PATCH=U, DELETE=D) unless the action fixes it
  (login/logout and the audit export are E = execute).
* Domain events (recorded with ``capture_api.audit.trail.record``): the action fixes
  everything. An action this table does not know is recorded as a Patient Record read, so a
  new caller never loses an event; add it here to give it its own codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

#: FHIR system of DICOM's DCM codes (FHIR R4 terminologies-systems.html).
DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"


class BalpAction(StrEnum):
    """FHIR AuditEvent.action = DICOM EventActionCode."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


#: HTTP method -> what the request does to the data it touches.
METHOD_ACTIONS: dict[str, BalpAction] = {
    "GET": BalpAction.READ,
    "HEAD": BalpAction.READ,
    "POST": BalpAction.CREATE,
    "PUT": BalpAction.UPDATE,
    "PATCH": BalpAction.UPDATE,
    "DELETE": BalpAction.DELETE,
}

#: BALP action -> FHIR restful-interaction code of a request (AuditEvent.subtype).
INTERACTIONS: dict[BalpAction, str] = {
    BalpAction.READ: "read",
    BalpAction.CREATE: "create",
    BalpAction.UPDATE: "update",
    BalpAction.DELETE: "delete",
    BalpAction.EXECUTE: "search-type",
}


class Outcome(StrEnum):
    """What became of the event; ``OUTCOME_CODES`` gives its DICOM/FHIR outcome code."""

    SUCCESS = "success"  # 0
    REFUSED = "refused"  # 4: minor failure, refused or invalid (the user can act on it)
    RETRY = "retry"  # 4: minor failure, retried by capture itself (e.g. archive down)
    FAILED = "failed"  # 8: serious failure, given up


#: FHIR AuditEvent.outcome = DICOM EventOutcomeIndicator.
OUTCOME_CODES: dict[str, str] = {
    Outcome.SUCCESS: "0",
    Outcome.REFUSED: "4",
    Outcome.RETRY: "4",
    Outcome.FAILED: "8",
}


class Purpose(StrEnum):
    """Purpose of use (HL7 v3 ActReason, ``http://terminology.hl7.org/CodeSystem/v3-ActReason``).

    Pass one to ``record(purpose=...)``; any other code is kept as given (as text).
    """

    TREAT = "TREAT"  # treatment: capturing and viewing for the patient in front of you
    ETREAT = "ETREAT"  # emergency treatment: break-the-glass unblur (reason in ``detail``)
    BTG = "BTG"  # break the glass, for EHRs whose policies use that code instead of ETREAT
    HOPERAT = "HOPERAT"  # healthcare operations: audit review and export, reports
    PATRQT = "PATRQT"  # patient requested: e.g. consent recorded at the patient's request
    HSYSADMIN = "HSYSADMIN"  # system administration: re-sending, purging


@dataclass(frozen=True)
class EventKind:
    """The codes of one action: DICOM EventID, default BALP action, optional EventTypeCode."""

    event_id: Code
    action: BalpAction
    event_type: Code | None = None
    fixed: bool = False  # True: the request method does not change the BALP action
    when: str = ""  # for docs/audit.md and the reader of an export


_PATIENT = codes.DCM.PatientRecord
_INSTANCES = codes.DCM.DICOMInstancesAccessed

ACTIONS: dict[str, EventKind] = {
    # --- requests (middleware), named by route ------------------------------------------------
    "login": EventKind(
        codes.DCM.UserAuthentication,
        BalpAction.EXECUTE,
        codes.DCM.Login,
        fixed=True,
        when="GET /launch, /launch/callback: SMART App Launch (EHR or standalone)",
    ),
    "logout": EventKind(
        codes.DCM.UserAuthentication,
        BalpAction.EXECUTE,
        codes.DCM.Logout,
        fixed=True,
        when="POST /logout",
    ),
    "session": EventKind(_PATIENT, BalpAction.READ, when="GET /api/v1/session"),
    "context": EventKind(_PATIENT, BalpAction.READ, when="/api/v1/contexts[/{id}]"),
    "consent": EventKind(_PATIENT, BalpAction.CREATE, when="/api/v1/contexts/{id}/consent"),
    "capture": EventKind(
        _INSTANCES,
        BalpAction.CREATE,
        when="/api/v1/captures...: upload (C), status and list (R); domain: encoder refusal",
    ),
    "priors": EventKind(_INSTANCES, BalpAction.READ, when="/api/v1/contexts/{id}/priors..."),
    "timeline": EventKind(_INSTANCES, BalpAction.READ, when="/api/v1/contexts/{id}/timeline..."),
    "scan": EventKind(_PATIENT, BalpAction.READ, when="POST /api/v1/scan (wristband)"),
    "worklist": EventKind(_PATIENT, BalpAction.READ, when="/api/v1/worklist..."),
    "report": EventKind(
        codes.DCM.Query, BalpAction.READ, when="/api/v1/reports... (aggregate, no patient)"
    ),
    "audit-export": EventKind(
        codes.DCM.AuditLogUsed,
        BalpAction.EXECUTE,
        fixed=True,
        when="GET /api/v1/audit: the audit trail read or exported",
    ),
    "api": EventKind(_PATIENT, BalpAction.READ, when="any other /api/v1 request"),
    # --- domain events (trail.record) ---------------------------------------------------------
    "launch": EventKind(
        _PATIENT, BalpAction.READ, when="patient and encounter read from the EHR at launch"
    ),
    "read": EventKind(_PATIENT, BalpAction.READ, when="refused: another session's context"),
    "worklist-claim": EventKind(
        _PATIENT, BalpAction.CREATE, when="refused: worklist item of another patient"
    ),
    "stow": EventKind(
        codes.DCM.DICOMInstancesTransferred,
        BalpAction.CREATE,
        fixed=True,
        when="STOW-RS to the archive: stored (0), will retry (4), refused (8)",
    ),
    "verify": EventKind(
        codes.DCM.Query,
        BalpAction.EXECUTE,
        fixed=True,
        when="QIDO-RS shows the stored instance: verified (0), refused (8)",
    ),
    "spool-purge": EventKind(
        _INSTANCES,
        BalpAction.DELETE,
        fixed=True,
        when="the spooled photo and DICOM object deleted after verification",
    ),
    "notify": EventKind(
        _PATIENT,
        BalpAction.CREATE,
        fixed=True,
        when="FHIR Media/DocumentReference created in the EHR (0) or refused (8)",
    ),
    # --- taking photos back (IHE IOCM, capture_api.correct; issue 18) --------------------------
    "reject": EventKind(
        _INSTANCES,
        BalpAction.DELETE,
        when="/api/v1/captures/{id}/rejection...; domain: a photo rejected (wrong patient, "
        "quality, worklist entry: reason and KOS in detail), or refused (another session's)",
    ),
    "refile": EventKind(
        _INSTANCES,
        BalpAction.CREATE,
        fixed=True,
        when="a rejected photo issued again for the right patient: one event per patient, each "
        "naming the other instance",
    ),
    "retract": EventKind(
        _PATIENT,
        BalpAction.UPDATE,
        fixed=True,
        when="a rejected photo's FHIR Media/DocumentReference set to entered-in-error (0), "
        "or refused (8)",
    ),
    # --- the phone's offline queue (requests under /api/v1/queue, and their decisions) ---------
    "queue-key": EventKind(
        codes.DCM.SecurityAlert,
        BalpAction.EXECUTE,
        fixed=True,
        when="/api/v1/queue/keys...: a phone queue key created, handed out, refused (another "
        "user's), released, or destroyed by capture (unused past the retention limit)",
    ),
    "queue-handoff": EventKind(
        _PATIENT,
        BalpAction.UPDATE,
        fixed=True,
        when="POST /api/v1/queue/handoffs: an earlier context handed to a later session of the "
        "same user, or refused",
    ),
    "queue-purge": EventKind(
        _INSTANCES,
        BalpAction.DELETE,
        fixed=True,
        when="POST /api/v1/queue/reports: photos the phone deleted unsent (retention limit, "
        "discarded, damaged, key gone)",
    ),
    "unblur": EventKind(
        _INSTANCES,
        BalpAction.READ,
        codes.DCM.EmergencyOverrideStarted,
        fixed=True,
        when="break-the-glass (request, and the privacy module's decision with the reason)",
    ),
    # --- wound measurement (issue 16) ----------------------------------------------------------
    "wound-measurement": EventKind(
        _INSTANCES,
        BalpAction.READ,
        when="/api/v1/captures/{id}/measurements: a photo's wound measured (its SR created, C) "
        "or its measurements listed (R)",
    ),
    "wound-photo": EventKind(
        _INSTANCES,
        BalpAction.READ,
        fixed=True,
        when="/api/v1/captures/{id}/snap, /calibration, /image: the photo's pixels read to "
        "trace, calibrate or refine a wound outline",
    ),
}

DEFAULT = EventKind(_PATIENT, BalpAction.READ, when="an action not in this table")


def kind_of(action: str) -> EventKind:
    """The codes of ``action`` (unknown actions are Patient Record reads)."""
    return ACTIONS.get(action, DEFAULT)


def balp_action(action: str, method: str | None) -> BalpAction:
    """The BALP action of an event: fixed by the action, else by the request's method."""
    kind = kind_of(action)
    if kind.fixed or method is None:
        return kind.action
    return METHOD_ACTIONS.get(method.upper(), kind.action)


def meaning(code: str | None) -> str:
    """The DCM meaning of a stored EventID / EventTypeCode value ("" when unknown)."""
    if code is None:
        return ""
    return _MEANINGS.get(code, "")


def code_of(value: str) -> Code | None:
    """The pydicom ``Code`` of a stored DCM code value."""
    return _BY_VALUE.get(value)


_ALL: list[Code] = [k.event_id for k in ACTIONS.values()] + [
    k.event_type for k in ACTIONS.values() if k.event_type is not None
]
_BY_VALUE: dict[str, Code] = {c.value: c for c in _ALL}
_MEANINGS: dict[str, str] = {c.value: c.meaning for c in _ALL}
