"""An audit row as a FHIR R4 AuditEvent, following IHE Basic Audit Log Patterns (BALP 1.1).

Built as JSON and validated with the ``fhir.resources`` R4B models (R4B's AuditEvent is R4's,
unchanged), as ``capture_api.notify.resources`` does for Media and DocumentReference.

The mapping, documented once here (docs/audit.md has the table per action):

* **type/subtype**: a request is ``audit-event-type#rest`` with the FHIR restful-interaction
  (``read``/``create``/``update``/``delete``; ``search-type`` for the audit export) and the DICOM
  EventID (e.g. DCM 110110 Patient Record) as subtypes; a domain event (STOW, verification,
  login...) has its DICOM EventID as type and its DICOM EventTypeCode, if any, as subtype.
* **agent**: the user (fhirUser, or ``integration`` for a trusted integration caller) with
  ``requestor = true`` and the purpose of use; for a request, the client (its address) and this
  server, typed DCM 110152 Destination / 110153 Source the BALP way (for a read the data
  flows to the client, so the client is the destination); for a worker's event, capture as
  the requesting application and the archive or EHR it talked to as the destination.
* **source**: ``observer`` = ``<app>@<host>``, type 4 (application server), ``site``.
* **entity**: the patient (``audit-entity-type#1``, ``object-role#1``, a logical reference by
  MRN with its issuer), the data (``#2``/``#4``: the SOP Instance UID as ``urn:dicom:uid``,
  else the capture or context id, else the route template), the X-Request-Id
  (``BasicAuditEntityType#XrequestId``) and, for the export, the query (base64).
* **meta.profile**: claimed only where the event meets that BALP profile (a successful read or
  create: ``IHE.BasicAudit.[Patient]Read`` / ``[Patient]Create``).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from capture_api.audit import events
from capture_api.audit.events import DCM_SYSTEM, OUTCOME_CODES, BalpAction
from capture_api.audit.source import AuditSource
from capture_api.audit.wire import KNOWN_PURPOSES, is_ip_address, utc_instant
from capture_api.store.records import AuditEventRecord

BALP_PROFILE = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
EVENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/security-source-type"
NETWORK_TYPE_SYSTEM = "http://hl7.org/fhir/network-type"  # codes only, in agent.network.type

#: What the integration-mode caller is called (README: with no EHR the caller is trusted).
INTEGRATION_ACTOR = "integration"

_DESTINATION = {"system": DCM_SYSTEM, "code": "110152", "display": "Destination Role ID"}
_SOURCE = {"system": DCM_SYSTEM, "code": "110153", "display": "Source Role ID"}
_APPLICATION = {"system": DCM_SYSTEM, "code": "110150", "display": "Application"}
_RECIPIENT = {"system": PARTICIPATION_SYSTEM, "code": "IRCP", "display": "information recipient"}
_AUTHOR = {"system": PARTICIPATION_SYSTEM, "code": "AUT", "display": "author"}


def audit_event(row: AuditEventRecord, source: AuditSource) -> AuditEvent:
    """The row as a validated R4 AuditEvent (a model error here is a bug in this module)."""
    return AuditEvent.model_validate(audit_event_json(row, source))


def audit_event_json(row: AuditEventRecord, source: AuditSource) -> dict[str, Any]:
    """The row as AuditEvent JSON (not yet validated; ``audit_event`` validates it)."""
    action = BalpAction(row.balp_action or events.balp_action(row.action, row.method))
    outcome = OUTCOME_CODES.get(row.outcome, "8")
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "type": _type(row, action),
        "subtype": _subtypes(row, action),
        "action": action.value,
        "recorded": utc_instant(row.at),
        "outcome": outcome,
        "agent": _agents(row, action, source),
        "source": _source(row, source),
        "entity": _entities(row, source),
    }
    if outcome != "0" and row.detail:
        resource["outcomeDesc"] = row.detail
    if row.purpose:
        resource["purposeOfEvent"] = [_purpose(row.purpose)]
    profile = _profile(row, action, outcome)
    if profile:
        resource["meta"] = {"profile": [profile]}
    return {k: v for k, v in resource.items() if v}


def bundle(
    rows: list[AuditEventRecord], source: AuditSource, *, self_url: str, next_url: str | None
) -> dict[str, Any]:
    """A validated ``searchset`` Bundle of the rows' AuditEvents (one page of an export)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    data = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": utc_instant(dt.datetime.now(dt.UTC)),
        "link": links,
        "entry": [
            {"resource": audit_event_json(row, source), "search": {"mode": "match"}} for row in rows
        ],
    }
    validated = Bundle.model_validate(data)
    out: dict[str, Any] = validated.model_dump(mode="json", exclude_none=True)
    return out


# --- parts ---------------------------------------------------------------------------------------


def _is_request(row: AuditEventRecord) -> bool:
    return row.route is not None and row.action not in ("login", "logout")


def _dcm(code: str | None) -> dict[str, str]:
    coding = {"system": DCM_SYSTEM, "code": code or ""}
    if events.meaning(code):
        coding["display"] = events.meaning(code)
    return coding


def _type(row: AuditEventRecord, action: BalpAction) -> dict[str, str]:
    if _is_request(row):
        return {"system": EVENT_TYPE_SYSTEM, "code": "rest", "display": "Restful Operation"}
    return _dcm(row.event_code or events.kind_of(row.action).event_id.value)


def _subtypes(row: AuditEventRecord, action: BalpAction) -> list[dict[str, str]]:
    if _is_request(row):
        interaction = events.INTERACTIONS[action]
        event_id = row.event_code or events.kind_of(row.action).event_id.value
        return [{"system": INTERACTION_SYSTEM, "code": interaction}, _dcm(event_id)]
    return [_dcm(row.event_type)] if row.event_type else []


def _purpose(code: str) -> dict[str, Any]:
    if code in KNOWN_PURPOSES:
        return {"coding": [{"system": ACT_REASON_SYSTEM, "code": code}]}
    return {"text": code}


def _user_who(row: AuditEventRecord) -> dict[str, Any]:
    actor = row.actor
    if actor is None:
        return {"display": "anonymous (not signed in)"}
    if actor.startswith(("http://", "https://")):
        return {"reference": actor}  # the fhirUser (SMART), an absolute Practitioner URL
    return {"identifier": {"value": actor}, "display": actor}


def _network(address: str | None) -> dict[str, str] | None:
    """agent.network: an IP address (type 2), else a machine name (type 1)."""
    if not address:
        return None
    return {"address": address, "type": "2" if is_ip_address(address) else "1"}


def _agents(row: AuditEventRecord, action: BalpAction, source: AuditSource) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = []
    reads = action in (BalpAction.READ, BalpAction.EXECUTE)
    peer = source.peer_of(row.action, row.peer)
    if row.actor is not None or row.route is not None:
        user: dict[str, Any] = {
            "type": {"coding": [_RECIPIENT if reads else _AUTHOR]},
            "who": _user_who(row),
            "requestor": True,
        }
        if row.session_id:
            user["altId"] = row.session_id
        if row.purpose:
            user["purposeOfUse"] = [_purpose(row.purpose)]
        agents.append(user)
    server: dict[str, Any] = {
        "who": {"display": source.observer(row.node)},
        "network": {"address": source.public_url, "type": "5"},  # 5 = URI
    }
    if row.route is not None:
        client: dict[str, Any] = {
            "type": {"coding": [_DESTINATION if reads else _SOURCE]},
            "who": {"display": row.client_ip or "unknown client"},
            "requestor": False,
        }
        network = _network(row.client_ip)
        if network:
            client["network"] = network
        agents.append(client)
        server |= {"type": {"coding": [_SOURCE if reads else _DESTINATION]}, "requestor": False}
    else:
        acts_alone = row.actor is None
        server |= {
            "type": {"coding": [_SOURCE if peer else _APPLICATION]},
            "requestor": acts_alone,
        }
    agents.append(server)
    if peer and row.route is None:
        destination: dict[str, Any] = {
            "type": {"coding": [_DESTINATION]},
            "who": {"display": peer},
            "requestor": False,
        }
        if "://" in peer:
            destination["network"] = {"address": peer, "type": "5"}
        agents.append(destination)
    return agents


def _source(row: AuditEventRecord, source: AuditSource) -> dict[str, Any]:
    return {
        "site": source.site or urlsplit(source.public_url).hostname or source.public_url,
        "observer": {"display": source.observer(row.node)},
        "type": [{"system": SOURCE_TYPE_SYSTEM, "code": "4", "display": "Application Server"}],
    }


def patient_reference(mrn: str, issuer: str | None) -> dict[str, Any]:
    """A logical Patient reference by MRN (R4 references.html: Reference.identifier)."""
    identifier: dict[str, Any] = {"value": mrn}
    if issuer and _is_oid(issuer):
        identifier["system"] = f"urn:oid:{issuer}"
    elif issuer and ":" in issuer:
        identifier["system"] = issuer  # already a URI
    elif issuer:
        identifier["assigner"] = {"display": issuer}  # a local namespace, not a URI
    return {"type": "Patient", "identifier": identifier}


def _is_oid(value: str) -> bool:
    return bool(value) and all(p.isdigit() for p in value.split("."))


def _data_what(row: AuditEventRecord, source: AuditSource) -> dict[str, Any]:
    """The object of the event: its SOP instance, else capture, else context, else route."""
    base = source.public_url
    if row.sop_instance_uid:
        system, value = "urn:dicom:uid", f"urn:oid:{row.sop_instance_uid}"
    elif row.capture_id:
        system, value = f"{base}/api/v1/captures", row.capture_id
    elif row.context_id:
        system, value = f"{base}/api/v1/contexts", row.context_id
    elif row.route:
        system, value = "urn:ietf:rfc:3986", f"{base}{row.route}"
    else:
        return {"display": row.action}
    return {"identifier": {"system": system, "value": value}}


def _entities(row: AuditEventRecord, source: AuditSource) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if row.patient:
        entities.append(
            {
                "what": patient_reference(row.patient, row.patient_issuer),
                "type": {"system": ENTITY_TYPE_SYSTEM, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "1", "display": "Patient"},
            }
        )
    data: dict[str, Any] = {
        "what": _data_what(row, source),
        "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE_SYSTEM, "code": "4", "display": "Domain Resource"},
    }
    if row.route:
        data["name"] = f"{row.method} {row.route}"
    if row.detail and row.outcome == "success" and row.action != "audit-export":
        data["description"] = row.detail
    entities.append(data)
    if row.action == "audit-export" and row.detail:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE_SYSTEM, "code": "24", "display": "Query"},
                "query": base64.b64encode(row.detail.encode()).decode("ascii"),
            }
        )
    if row.request_id:
        entities.append(
            {
                "what": {"identifier": {"value": row.request_id}},
                "type": {"system": BALP_ENTITY_TYPE, "code": "XrequestId"},
            }
        )
    return entities


def _profile(row: AuditEventRecord, action: BalpAction, outcome: str) -> str | None:
    """The BALP profile this event meets, if any (successful REST reads and creates)."""
    if outcome != "0" or not _is_request(row) or not row.client_ip:
        return None
    names = {BalpAction.READ: "Read", BalpAction.CREATE: "Create"}
    if action not in names:
        return None
    return BALP_PROFILE + ("Patient" if row.patient else "") + names[action]
