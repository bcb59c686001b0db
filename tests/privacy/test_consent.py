"""Consent before photography: the per-site policy (428 until recorded), recording it with a
scanned form as a FHIR R4 Consent, and captures referencing it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fhir.resources.R4B.consent import Consent

from capture_api.capture.consent_policy import ConsentPolicy, ConsentRules
from capture_api.capture.sensitivity import CONFIDENTIALITY_SYSTEM, SensitivityLevel
from capture_api.capture.sensitivity_policy import default_policy
from capture_api.config import Settings
from capture_api.privacy.consent_fhir import (
    METHOD_EXTENSION,
    PARTICIPATION_MODE,
    ConsentFacts,
    build_consent,
)
from capture_api.store.records import CaptureRecord
from ehr_sandbox.server import SandboxServer
from tests.privacy.people import NINA, audit_events, fhir_user, send_photo, sign_in, stored_capture
from tests.security.conftest import AppFactory

GENITAL_SKIN = "60944009"  # "Skin of external genitalia": the default site policy says restricted
RULES = ConsentRules(units=["Children's ED"], min_sensitivity=SensitivityLevel.RESTRICTED)
NORMAL, RESTRICTED, _ = list(SensitivityLevel)


def _reason(setting: object, **photo: object) -> str | None:
    facts = {"unit": None, "level": NORMAL, "body_site": None, "view": None} | photo
    return ConsentPolicy(setting, default_policy()).reason(**facts)  # type: ignore[arg-type]


def test_the_policy_decides_per_unit_per_sensitivity_and_never_for_the_form() -> None:
    assert _reason("never", level=RESTRICTED) is None
    assert _reason("always") is not None
    assert _reason("always", view="  Consent   FORM ") is None  # the form itself never waits
    assert (
        _reason(RULES, unit="children's  ed")
        == "photos in children's  ed need the patient's consent"
    )
    assert _reason(RULES, unit="Derm clinic") is None
    assert _reason(RULES, unit="Derm clinic", level=RESTRICTED) is not None
    # a genital site marked normal still counts as restricted (the site policy's suggestion)
    assert (
        _reason(RULES, body_site=GENITAL_SKIN) == "a restricted photo needs the patient's consent"
    )
    assert _reason(ConsentRules(units=["Ward 7"]), body_site=GENITAL_SKIN) is None


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTURE_CONSENT_REQUIRED", '{"units": ["Ward 7"]}')
    assert Settings().consent_required == ConsentRules(units=["Ward 7"])
    monkeypatch.setenv("CAPTURE_CONSENT_REQUIRED", "always")
    assert Settings().consent_required == "always"
    monkeypatch.setenv("CAPTURE_CONSENT_REQUIRED", '{"unit": ["typo"]}')
    with pytest.raises(ValueError, match="consent_required"):
        Settings()


def test_the_fhir_consent_of_a_guardians_verbal_consent() -> None:
    consent_id = uuid.uuid4().hex
    resource = build_consent(
        ConsentFacts(
            consent_id=consent_id,
            patient={"reference": "Patient/pat-ngata"},
            consenter="guardian",
            consenter_name="Mere Ngata",
            method="verbal",
            recorded_at=dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC),
        )
    )
    Consent.model_validate(resource)
    assert resource["identifier"][0]["value"] == f"urn:uuid:{uuid.UUID(hex=consent_id)}"
    assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
    assert resource["category"][0]["coding"][0]["code"] == "59284-0"
    assert resource["policyRule"]["coding"][0]["code"] == "OPTIN"  # ppc-1
    assert resource["patient"] == {"reference": "Patient/pat-ngata"}  # ppc-2
    assert resource["performer"] == [{"type": "RelatedPerson", "display": "Mere Ngata (guardian)"}]
    assert resource["extension"] == [
        {
            "url": METHOD_EXTENSION,
            "valueCoding": {"system": PARTICIPATION_MODE, "code": "VERBAL", "display": "verbal"},
        }
    ]
    assert resource["dateTime"] == "2026-11-23T09:30:00Z"
    assert resource["provision"]["type"] == "permit"
    assert "sourceReference" not in resource
    assert "verbally by the patient's guardian" in resource["text"]["div"]


def test_consent_is_required_in_the_listed_unit_then_recorded_and_referenced(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr, consent_required=RULES.model_dump(mode="json"))
    ctx = sign_in(client, ehr, NINA, "enc-ngata")["context_id"]  # a child, in Children's ED

    held = send_photo(client, ctx, "arm-1")
    assert held.status_code == 428, held.text
    assert (
        f"record the patient's consent first (POST /api/v1/contexts/{ctx}/consent)"
        in (held.json()["detail"])
    )
    assert stored_capture(client, "arm-1") is None  # nothing of the photo was kept
    none_yet = client.get(f"/api/v1/contexts/{ctx}/consent")
    assert none_yet.status_code == 404 and none_yet.headers["cache-control"] == "no-store"

    form = send_photo(client, ctx, "form-1", seed=9, site=None, side=None, view="consent form")
    assert form.status_code == 202, form.text
    url = f"/api/v1/contexts/{ctx}/consent"
    for bad, words in (
        ({"consenter": "guardian", "method": "verbal"}, "guardian's name"),
        ({"consenter": "patient", "method": "verbal", "form_capture_id": "form-1"}, "written"),
        ({"consenter": "patient", "method": "written", "form_capture_id": "nope"}, "no photo"),
        ({"consenter": "mother", "method": "verbal"}, "consenter"),
    ):
        answer = client.post(url, json=bad)
        assert answer.status_code == 422 and words in answer.text, answer.text

    body = {
        "consenter": "guardian",
        "consenter_name": " Mere   Ngata ",
        "method": "written",
        "form_capture_id": "form-1",
    }
    recorded = client.post(url, json=body)
    assert recorded.status_code == 201, recorded.text
    consent = recorded.json()
    assert consent["consenter_name"] == "Mere Ngata"
    assert consent["recorded_by"] == fhir_user(ehr, NINA)
    resource = consent["fhir"]
    Consent.model_validate(resource)
    assert resource["patient"] == {"reference": "Patient/pat-ngata"}
    form_sop = form.json()["sop_instance_uid"]
    assert resource["sourceReference"]["identifier"] == {
        "system": "urn:dicom:uid",
        "value": f"urn:oid:{form_sop}",
    }
    assert resource["extension"][0]["valueCoding"]["code"] == "WRITTEN"
    assert resource["meta"]["security"][0]["system"] == CONFIDENTIALITY_SYSTEM

    accepted = send_photo(client, ctx, "arm-1")
    assert accepted.status_code == 202, accepted.text
    now = client.get(url).json()
    assert now["consent_id"] == consent["consent_id"]
    assert now["captures"] == ["form-1", "arm-1"]
    stored = [stored_capture(client, c) for c in ("form-1", "arm-1")]
    assert [c.consent_id for c in stored if isinstance(c, CaptureRecord)] == [
        consent["consent_id"]
    ] * 2
    (event,) = audit_events(client, "consent")
    assert (event.outcome, event.actor, event.patient) == (
        "success",
        fhir_user(ehr, NINA),
        "100005",
    )
    assert "written, by the guardian, form form-1" in (event.detail or "")


def test_elsewhere_only_sensitive_photos_wait_for_consent(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr, consent_required=RULES.model_dump(mode="json"))
    ctx = sign_in(client, ehr, NINA, "enc-muller")["context_id"]  # Derm clinic
    plain = send_photo(client, ctx, "arm")
    assert plain.status_code == 202, plain.text
    assert stored_capture(client, "arm").consent_id is None  # type: ignore[union-attr]
    genital = send_photo(client, ctx, "gen", site=GENITAL_SKIN, side=None, sensitivity="normal")
    assert genital.status_code == 428 and "a restricted photo" in genital.json()["detail"]
    other = client.post(
        f"/api/v1/contexts/{ctx}/consent", json={"consenter": "patient", "method": "verbal"}
    )
    assert other.status_code == 201
    again = send_photo(client, ctx, "gen", site=GENITAL_SKIN, side=None, sensitivity="normal")
    assert again.status_code == 202


def test_integration_mode_always_policy(make_app: AppFactory) -> None:
    client = make_app(consent_required="always")
    made = client.post(
        "/api/v1/contexts", json={"patient": {"id": "MRN-C", "issuer": {"universal_id": "1.2.3"}}}
    )
    ctx = made.json()["context_id"]
    assert send_photo(client, ctx, "p1").status_code == 428
    recorded = client.post(
        f"/api/v1/contexts/{ctx}/consent", json={"consenter": "patient", "method": "verbal"}
    )
    assert recorded.status_code == 201
    patient = recorded.json()["fhir"]["patient"]
    assert patient == {
        "type": "Patient",
        "identifier": {"system": "urn:oid:1.2.3", "value": "MRN-C"},
    }
    assert recorded.json()["fhir"]["performer"] == [patient]
    assert send_photo(client, ctx, "p1").status_code == 202
