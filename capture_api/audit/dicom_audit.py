"""An audit row as a DICOM audit message (PS3.15 A.5), the body of an ATNA syslog message.

Built with the standard library's ElementTree (it escapes every value; nothing is pasted into
XML text by hand). Element order follows the schema (A.5.1): EventIdentification, one or more
ActiveParticipant, AuditSourceIdentification, then the ParticipantObjectIdentification
elements. Choices, per A.5.2/A.5.3 and ITI TF-2 3.20:

* EventID/EventTypeCode/EventActionCode/EventOutcomeIndicator: the same codes as the FHIR
  export (``capture_api.audit.events``); EventOutcomeDescription carries the reason of a failure.
* PurposeOfUse (the IHE XUA++ addition to EventIdentification) only when the event has one.
* ActiveParticipant: the user (fhirUser, ``integration``, or capture itself for a worker's
  event) as requestor, with the client's address; capture as the server, ``UserID`` its public
  URL plus the route template (never a URL with ids); the archive or EHR of a worker's event
  as the destination (RoleIDCode 110152).
* ParticipantObjectIdentification: the patient (type 1, role 1, RFC-3881 ID type 2 "Patient
  Number", the ID in HL7 CX form ``MRN^^^&OID&ISO`` when the issuer is an OID); the study with
  its one SOP instance (type 2, role 3, DCM 110180, SOPClass VL Photographic Image Storage);
  the audit export's query (role 24, base64). No names or birth dates: the MRN identifies.
"""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from capture_api.audit import events
from capture_api.audit.events import OUTCOME_CODES, BalpAction
from capture_api.audit.source import AuditSource
from capture_api.audit.wire import KNOWN_PURPOSES, is_ip_address, utc_instant
from capture_api.capture import storable
from capture_api.store.records import AuditEventRecord

VL_PHOTOGRAPHIC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.4"
ACT_REASON_OID = "2.16.840.1.113883.5.8"  # HL7 v3 ActReason (purpose of use)


def audit_message(row: AuditEventRecord, source: AuditSource) -> bytes:
    """The DICOM audit message of one row, as UTF-8 XML with its declaration."""
    root = ET.Element("AuditMessage")
    _event(root, row)
    for participant in _participants(row, source):
        root.append(participant)
    audit_source = ET.SubElement(
        root, "AuditSourceIdentification", AuditSourceID=source.observer(row.node)
    )
    if source.site:
        audit_source.set("AuditEnterpriseSiteID", source.site)
    ET.SubElement(audit_source, "AuditSourceTypeCode", {"csd-code": "4"})  # application server
    for participant_object in _objects(row):
        root.append(participant_object)
    _xml_safe(root)
    message: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return message


def _xml_safe(root: ET.Element) -> None:
    """Replace what XML 1.0 cannot hold (most C0 controls, lone surrogates, U+FFFE/U+FFFF)
    with U+FFFD: ElementTree escapes markup but writes these as they are, and the collector
    would then drop a message that is not well-formed (a row written before issue 14 may
    hold one; newer rows never do, ``trail.append``)."""
    for element in root.iter():
        if element.text:
            element.text = storable(element.text)
        for name, value in element.attrib.items():
            element.set(name, storable(value))


def _coded(parent: ET.Element, tag: str, code: str, system: str, meaning: str) -> ET.Element:
    return ET.SubElement(
        parent,
        tag,
        {"csd-code": code, "codeSystemName": system, "originalText": meaning or code},
    )


def _event(root: ET.Element, row: AuditEventRecord) -> None:
    action = row.balp_action or events.balp_action(row.action, row.method).value
    event_code = row.event_code or events.kind_of(row.action).event_id.value
    outcome = OUTCOME_CODES.get(row.outcome, "8")
    event = ET.SubElement(
        root,
        "EventIdentification",
        EventActionCode=action,
        EventDateTime=utc_instant(row.at),
        EventOutcomeIndicator=outcome,
    )
    _coded(event, "EventID", event_code, "DCM", events.meaning(event_code))
    if row.event_type:
        _coded(event, "EventTypeCode", row.event_type, "DCM", events.meaning(row.event_type))
    if outcome != "0" and row.detail:
        ET.SubElement(event, "EventOutcomeDescription").text = row.detail
    if row.purpose:
        system = ACT_REASON_OID if row.purpose in KNOWN_PURPOSES else "local"
        _coded(event, "PurposeOfUse", row.purpose, system, row.purpose)


def _participant(
    user_id: str,
    *,
    requestor: bool,
    role: str | None = None,
    access_point: str | None = None,
    alternative: str | None = None,
) -> ET.Element:
    element = ET.Element(
        "ActiveParticipant", UserID=user_id, UserIsRequestor="true" if requestor else "false"
    )
    if alternative:
        element.set("AlternativeUserID", alternative)
    if access_point:
        element.set("NetworkAccessPointID", access_point)
        element.set("NetworkAccessPointTypeCode", "2" if is_ip_address(access_point) else "1")
    if role:
        meaning = "Destination Role ID" if role == "110152" else "Source Role ID"
        _coded(element, "RoleIDCode", role, "DCM", meaning)
    return element


def _participants(row: AuditEventRecord, source: AuditSource) -> list[ET.Element]:
    action = BalpAction(row.balp_action or events.balp_action(row.action, row.method))
    server_host = urlsplit(source.public_url).hostname
    pid = str(os.getpid())
    if row.route is not None:  # a request: the user at a client, and this server
        reads = action in (BalpAction.READ, BalpAction.EXECUTE)
        data_flow = row.action not in ("login", "logout")
        user = _participant(
            row.actor or "anonymous",
            requestor=True,
            role=("110152" if reads else "110153") if data_flow else None,
            access_point=row.client_ip,
            alternative=row.session_id,
        )
        server = _participant(
            f"{source.public_url}{row.route}",
            requestor=False,
            role=("110153" if reads else "110152") if data_flow else None,
            access_point=server_host,
            alternative=pid,
        )
        return [user, server]
    participants: list[ET.Element] = []
    peer = source.peer_of(row.action, row.peer)
    if row.actor:
        participants.append(_participant(row.actor, requestor=True, alternative=row.session_id))
    participants.append(
        _participant(
            source.observer(row.node),
            requestor=not row.actor,
            role="110153" if peer else None,
            access_point=server_host,
            alternative=pid,
        )
    )
    if peer:
        peer_host = urlsplit(peer).hostname
        participants.append(
            _participant(peer, requestor=False, role="110152", access_point=peer_host)
        )
    return participants


def patient_id_cx(mrn: str, issuer: str | None) -> str:
    """HL7 v2 CX as IHE audit messages carry a patient id: ``MRN^^^&OID&ISO`` (or namespace)."""
    if not issuer:
        return mrn
    if all(p.isdigit() for p in issuer.split(".")):
        return f"{mrn}^^^&{issuer}&ISO"
    return f"{mrn}^^^{issuer}"


def _objects(row: AuditEventRecord) -> list[ET.Element]:
    objects: list[ET.Element] = []
    if row.patient:
        patient = ET.Element(
            "ParticipantObjectIdentification",
            ParticipantObjectID=patient_id_cx(row.patient, row.patient_issuer),
            ParticipantObjectTypeCode="1",
            ParticipantObjectTypeCodeRole="1",
        )
        _coded(patient, "ParticipantObjectIDTypeCode", "2", "RFC-3881", "Patient Number")
        objects.append(patient)
    if row.study_uid and row.sop_instance_uid:
        study = ET.Element(
            "ParticipantObjectIdentification",
            ParticipantObjectID=row.study_uid,
            ParticipantObjectTypeCode="2",
            ParticipantObjectTypeCodeRole="3",
        )
        _coded(study, "ParticipantObjectIDTypeCode", "110180", "DCM", "Study Instance UID")
        description = ET.SubElement(study, "ParticipantObjectDescription")
        sop_class = ET.SubElement(
            description, "SOPClass", UID=VL_PHOTOGRAPHIC_IMAGE_STORAGE, NumberOfInstances="1"
        )
        ET.SubElement(sop_class, "Instance", UID=row.sop_instance_uid)
        objects.append(study)
    if row.action == "audit-export" and row.detail:
        query = ET.Element(
            "ParticipantObjectIdentification",
            ParticipantObjectID="audit_event",
            ParticipantObjectTypeCode="2",
            ParticipantObjectTypeCodeRole="24",
        )
        _coded(query, "ParticipantObjectIDTypeCode", "10", "RFC-3881", "Search Criteria")
        ET.SubElement(query, "ParticipantObjectQuery").text = base64.b64encode(
            row.detail.encode()
        ).decode("ascii")
        objects.append(query)
    return objects
