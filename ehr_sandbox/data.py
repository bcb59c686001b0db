"""Synthetic patients, encounters and a practitioner (FHIR R4 JSON). No real person.

Chosen to exercise what breaks naive code: non-ASCII and non-Latin names, two patients with
the same name, a missing birth date, an encounter without an identifier, a minor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"
VISIT_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.2"
HOSPITAL = "Sandbox General Hospital"


def _patient(
    pid: str, mrn: str, family: str, given: str, sex: str, birth: str | None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": MRN_SYSTEM,
                "value": mrn,
                "assigner": {"display": HOSPITAL},
            }
        ],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": sex,
    }
    if birth:
        resource["birthDate"] = birth
    return resource


PATIENTS: dict[str, dict[str, Any]] = {
    p["id"]: p
    for p in (
        _patient("pat-muller", "100001", "Müller", "Jürgen", "male", "1950-03-14"),
        _patient("pat-smith-a", "100002", "Smith", "John", "male", "1980-01-01"),
        _patient("pat-smith-b", "100003", "Smith", "John", "male", "1975-06-30"),
        _patient("pat-okada", "100004", "岡田", "花子", "female", None),
        _patient("pat-ngata", "100005", "Ngata", "Aroha", "female", "2014-05-05"),
    )
}


def _practitioner(pid: str, family: str, given: str, prefix: str | None) -> dict[str, Any]:
    name: dict[str, Any] = {"family": family, "given": [given]}
    if prefix:
        name["prefix"] = [prefix]
    return {"resourceType": "Practitioner", "id": pid, "name": [name]}


#: The sandbox EHR's users; its page lets you choose who is signed in.
PRACTITIONERS: dict[str, dict[str, Any]] = {
    p["id"]: p
    for p in (
        _practitioner("prac-nina", "Nurse", "Nina", None),
        _practitioner("prac-vera", "Okafor", "Vera", "Dr"),  # dermatologist: sensitive viewer
        _practitioner("prac-otto", "Berg", "Otto", None),  # privacy officer: auditor
    )
}
PRACTITIONER: dict[str, Any] = PRACTITIONERS["prac-nina"]  # the default user

#: What the sandbox's identity provider says each user may do in capture: the id_token's
#: ``capture_roles`` claim (capture_api.capture.roles). Nina has none beyond the baseline.
CAPTURE_ROLES: dict[str, list[str]] = {
    "prac-nina": ["clinician"],
    "prac-vera": ["clinician", "sensitive-viewer"],
    "prac-otto": ["auditor"],
}


def at_hour(day: dt.date, hour: dt.time) -> dt.datetime:
    """``hour`` of ``day`` in this machine's time zone: the calendar capture's worklist asks
    for ("today", local time), so the sandbox's clinic is open the whole of that day."""
    return dt.datetime.combine(day, hour).astimezone()


def _encounter(
    eid: str,
    pid: str,
    visit: str | None,
    klass: str,
    service: str,
    location: str,
    hour: int,
    day: dt.date,
) -> dict[str, Any]:
    start = at_hour(day, dt.time(hour, 0))
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "in-progress",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": klass,
            "display": {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient"}[klass],
        },
        "serviceType": {"text": service},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start.isoformat()},
        "location": [{"location": {"display": location}}],
    }
    if visit:
        resource["identifier"] = [
            {
                "use": "official",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}
                    ]
                },
                "system": VISIT_SYSTEM,
                "value": visit,
            }
        ]
    return resource


def encounters(day: dt.date | None = None) -> dict[str, dict[str, Any]]:
    """The sandbox's encounters, each at its hour of ``day`` (default: today, local time).

    Built when a sandbox starts, not when this module is imported: a test session imported
    before midnight and run after it asked for "today" and found yesterday's clinic.
    """
    day = day or dt.date.today()
    return {
        e["id"]: e
        for e in (
            _encounter(
                "enc-muller", "pat-muller", "V-5001", "AMB", "Dermatology", "Derm clinic", 9, day
            ),
            _encounter(
                "enc-smith-a", "pat-smith-a", "V-5002", "EMER", "Emergency", "ED bay 4", 10, day
            ),
            _encounter("enc-smith-b", "pat-smith-b", None, "IMP", "Wound care", "Ward 7", 11, day),
            _encounter(
                "enc-okada", "pat-okada", "V-5004", "AMB", "Wound care", "Wound clinic", 13, day
            ),
            _encounter(
                "enc-ngata", "pat-ngata", "V-5005", "EMER", "Paediatrics", "Children's ED", 14, day
            ),
        )
    }


#: The encounters as a sandbox started now has them (for tests that read their shape).
ENCOUNTERS: dict[str, dict[str, Any]] = encounters()
