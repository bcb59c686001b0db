"""FHIR R4 context reading: the sandbox server, the client over real HTTP, and the mapping.

The sandbox runs on loopback (``SandboxServer``); tokens are issued straight into its registry,
as its authorization server would after a SMART launch.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner

from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import PersonName, Sex, UniversalIdType
from capture_api.context.fhir import (
    FhirClient,
    FhirError,
    FhirForbidden,
    FhirNotFound,
    FhirUnauthorized,
    FhirUnavailable,
)
from capture_api.context.fhir_mapping import banner, encounter_in, patient_in, word_truncate
from capture_api.encode.pipeline import wrap_photo
from capture_api.exceptions import CaptureError, InvalidMetadata
from ehr_sandbox import data
from ehr_sandbox.server import SandboxServer, free_port
from ehr_sandbox.tokens import TokenInfo
from tests.conftest import dciodvfy_errors, phone_jpeg

MRN_OID = "2.16.840.1.113883.3.9999.1"
VISIT_OID = "2.16.840.1.113883.3.9999.2"
PATIENT_SCOPES = "launch openid fhirUser patient/Patient.rs patient/Encounter.rs"
USER_SCOPES = "openid fhirUser user/Patient.rs user/Encounter.rs user/Practitioner.rs"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


Issue = Callable[..., str]


@pytest.fixture
def issue(sandbox: SandboxServer) -> Issue:
    def make(scope: str = PATIENT_SCOPES, patient: str | None = None, **kw: Any) -> str:
        info = TokenInfo(client_id="capture", scope=scope, patient=patient, **kw)
        return sandbox.state.tokens.issue(info)

    return make


def client_for(sandbox: SandboxServer, token: str) -> FhirClient:
    return FhirClient(sandbox.fhir_base, token)


def _patient(pid: str) -> Patient:
    return Patient.model_validate(data.PATIENTS[pid])


def _encounter(eid: str) -> Encounter:
    return Encounter.model_validate(data.ENCOUNTERS[eid])


# --- the sandbox server ----------------------------------------------------------------------


def test_every_sandbox_resource_is_valid_r4(sandbox: SandboxServer) -> None:
    for resource in sandbox.state.patients.values():
        assert Patient.model_validate(resource).id == resource["id"]
    for resource in sandbox.state.encounters.values():
        assert Encounter.model_validate(resource).id == resource["id"]
    Practitioner.model_validate(data.PRACTITIONER)


def test_capability_statement(sandbox: SandboxServer) -> None:
    response = httpx.get(f"{sandbox.fhir_base}/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    assert statement.kind == "instance"
    assert statement.rest is not None
    rest = statement.rest[0]
    kinds = {r.type: {i.code for i in r.interaction or []} for r in rest.resource or []}
    assert kinds == {
        "Patient": {"read", "search-type"},
        "Encounter": {"read"},
        "Practitioner": {"read"},
        "Media": {"create", "read", "update", "search-type"},  # notify; entered-in-error
        "DocumentReference": {"create", "read", "update", "search-type"},
        "Observation": {"create", "read", "update", "search-type"},  # a measured wound
    }
    writable = [
        r for r in rest.resource or [] if r.type in {"Media", "DocumentReference", "Observation"}
    ]
    assert all(r.conditionalCreate for r in writable)
    patient = next(r for r in rest.resource or [] if r.type == "Patient")
    assert [(p.name, p.type) for p in patient.searchParam or []] == [("identifier", "token")]
    assert rest.security is not None
    oauth = next(iter(rest.security.extension or []))
    assert str(oauth.url).endswith("/oauth-uris")
    uris = {e.url: e.valueUri for e in oauth.extension or []}
    assert uris == {
        "authorize": f"{sandbox.state.base_url}/auth/authorize",
        "token": f"{sandbox.state.base_url}/auth/token",
    }


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic dXNlcjpwYXNz"])
def test_401_is_an_operation_outcome_with_www_authenticate(
    sandbox: SandboxServer, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{sandbox.fhir_base}/Patient/pat-muller", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].code == "login"


def test_403_and_404_are_operation_outcomes(sandbox: SandboxServer, issue: Issue) -> None:
    headers = {"Authorization": f"Bearer {issue(patient='pat-muller')}"}
    other = httpx.get(f"{sandbox.fhir_base}/Patient/pat-okada", headers=headers)
    assert other.status_code == 403
    assert OperationOutcome.model_validate(other.json()).issue[0].code == "forbidden"
    missing = httpx.get(f"{sandbox.fhir_base}/Encounter/enc-nobody", headers=headers)
    assert missing.status_code == 404
    assert OperationOutcome.model_validate(missing.json()).issue[0].code == "not-found"


def test_search_answers_a_valid_searchset(sandbox: SandboxServer, issue: Issue) -> None:
    headers = {"Authorization": f"Bearer {issue(USER_SCOPES)}"}
    response = httpx.get(
        f"{sandbox.fhir_base}/Patient",
        params={"identifier": f"{data.MRN_SYSTEM}|100003"},
        headers=headers,
    )
    bundle = Bundle.model_validate(response.json())
    assert (bundle.type, bundle.total) == ("searchset", 1)
    entry = (bundle.entry or [])[0]
    assert entry.fullUrl == f"{sandbox.fhir_base}/Patient/pat-smith-b"
    assert entry.search is not None and entry.search.mode == "match"
    unsupported = httpx.get(
        f"{sandbox.fhir_base}/Patient", params={"name": "Smith"}, headers=headers
    )
    assert unsupported.status_code == 400


# --- the client over HTTP --------------------------------------------------------------------


def test_patient_scope_reads_its_own_patient_and_encounter(
    sandbox: SandboxServer, issue: Issue
) -> None:
    with client_for(sandbox, issue(patient="pat-muller")) as fhir:
        patient = fhir.read_patient("pat-muller")
        encounter = fhir.read_encounter("enc-muller")
    assert patient.name is not None and patient.name[0].family == "Müller"
    assert encounter.subject is not None and encounter.subject.reference == "Patient/pat-muller"


def test_patient_scope_forbids_another_patient(sandbox: SandboxServer, issue: Issue) -> None:
    fhir = client_for(sandbox, issue(patient="pat-muller"))
    with fhir, pytest.raises(FhirForbidden, match="does not allow capture to read this patient"):
        fhir.read_patient("pat-smith-a")
        with pytest.raises(FhirForbidden):
            fhir.read_encounter("enc-smith-a")  # another patient's encounter


def test_v1_read_scopes_are_understood(sandbox: SandboxServer, issue: Issue) -> None:
    token = issue("launch patient/Patient.read patient/Encounter.read", patient="pat-okada")
    with client_for(sandbox, token) as fhir:
        assert fhir.read_patient("pat-okada").id == "pat-okada"
        assert fhir.read_encounter("enc-okada").id == "enc-okada"
        with pytest.raises(FhirForbidden):
            fhir.read_patient("pat-muller")


def test_scope_without_the_resource_type_is_forbidden(sandbox: SandboxServer, issue: Issue) -> None:
    fhir = client_for(sandbox, issue("launch patient/Patient.rs", patient="pat-muller"))
    with fhir, pytest.raises(FhirForbidden):
        fhir.read_encounter("enc-muller")


def test_user_scope_reads_any_patient(sandbox: SandboxServer, issue: Issue) -> None:
    with client_for(sandbox, issue(USER_SCOPES)) as fhir:
        assert fhir.read_patient("pat-ngata").id == "pat-ngata"
        assert fhir.read_encounter("enc-smith-b").id == "enc-smith-b"


def test_no_token_or_expired_token_is_unauthorized(sandbox: SandboxServer, issue: Issue) -> None:
    expired = issue(patient="pat-muller", expires_at=time.time() - 1)
    for token in ("", "not-a-token", expired):
        with client_for(sandbox, token) as fhir, pytest.raises(FhirUnauthorized) as caught:
            fhir.read_patient("pat-muller")
        assert caught.value.status == 401
        assert "expired or invalid" in str(caught.value)
        if token:
            assert token not in str(caught.value)  # never leak the token


def test_unknown_id_is_not_found(sandbox: SandboxServer, issue: Issue) -> None:
    fhir = client_for(sandbox, issue(USER_SCOPES))
    with fhir, pytest.raises(FhirNotFound):
        fhir.read_patient("pat-nobody")
        with pytest.raises(FhirError, match="not a FHIR Patient id"):
            fhir.read_patient("../metadata")


def test_search_by_mrn_finds_exactly_one_john_smith(sandbox: SandboxServer, issue: Issue) -> None:
    with client_for(sandbox, issue(USER_SCOPES)) as fhir:
        both = [p for p in fhir.search_patients(None, "100002")]
        by_system = fhir.search_patients(data.MRN_SYSTEM, "100003")
        none = fhir.search_patients("urn:oid:1.2.3", "100003")
    assert [p.id for p in both] == ["pat-smith-a"]
    assert [p.id for p in by_system] == ["pat-smith-b"]
    assert none == []
    mapped = patient_in(by_system[0], mrn_system=data.MRN_SYSTEM, issuer=None)
    assert mapped.id == "100003" and mapped.birth_date == dt.date(1975, 6, 30)


def test_patient_scope_search_stays_in_the_compartment(
    sandbox: SandboxServer, issue: Issue
) -> None:
    with client_for(sandbox, issue(patient="pat-muller")) as fhir:
        assert fhir.search_patients(data.MRN_SYSTEM, "100003") == []
        assert [p.id for p in fhir.search_patients(data.MRN_SYSTEM, "100001")] == ["pat-muller"]


def test_connection_refused_is_unavailable() -> None:
    fhir = FhirClient(f"http://127.0.0.1:{free_port()}/fhir", "t", timeout=2)
    with fhir, pytest.raises(FhirUnavailable, match="could not reach"):
        fhir.read_patient("pat-muller")


# --- the client against misbehaving servers (httpx.MockTransport) -----------------------------


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> FhirClient:
    return FhirClient(
        "https://ehr.test/fhir",
        "secret",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def _searchset(resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
        **extra,
    }


def test_server_ignoring_the_identifier_does_not_produce_matches() -> None:
    everyone = list(data.PATIENTS.values())
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_searchset(everyone))

    with _mock(handler) as fhir:
        found = fhir.search_patients(data.MRN_SYSTEM, "100002")
    assert [p.id for p in found] == ["pat-smith-a"]
    assert seen[0].url.params["identifier"] == f"{data.MRN_SYSTEM}|100002"
    assert seen[0].headers["authorization"] == "Bearer secret"
    assert seen[0].headers["accept"] == "application/fhir+json"


def test_search_value_is_escaped() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_searchset([]))

    with _mock(handler) as fhir:
        fhir.search_patients(None, "a|b,c")
    assert seen[0].url.params["identifier"] == "a\\|b\\,c"


def test_paged_search_is_refused() -> None:
    body = _searchset(
        [data.PATIENTS["pat-smith-a"]],
        total=2,
        link=[{"relation": "next", "url": "https://ehr.test/fhir/Patient?page=2"}],
    )
    fhir = _mock(lambda _: httpx.Response(200, json=body))
    with fhir, pytest.raises(FhirError, match="more results than one page"):
        fhir.search_patients(data.MRN_SYSTEM, "100002")


def test_invalid_resource_is_a_readable_error() -> None:
    broken = copy.deepcopy(data.PATIENTS["pat-muller"])
    broken["name"][0]["given"] = "Jürgen"  # must be a list
    fhir = _mock(lambda _: httpx.Response(200, json=broken))
    with fhir, pytest.raises(FhirError, match=r"not valid FHIR: name\.0\.given"):
        fhir.read_patient("pat-muller")


def test_wrong_resource_type_or_id_is_refused() -> None:
    encounter = data.ENCOUNTERS["enc-muller"]
    fhir = _mock(lambda _: httpx.Response(200, json=encounter))
    with fhir, pytest.raises(FhirError, match="answered a Encounter resource"):
        fhir.read_patient("pat-muller")
    other = data.PATIENTS["pat-smith-a"]
    fhir = _mock(lambda _: httpx.Response(200, json=other))
    with fhir, pytest.raises(FhirError, match="asked for Patient/pat-smith-b"):
        fhir.read_patient("pat-smith-b")


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, FhirUnavailable), (500, FhirUnavailable), (429, FhirUnavailable), (400, FhirError)],
)
def test_status_mapping(status: int, error: type[FhirError]) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "transient", "diagnostics": "database down"}],
    }
    fhir = _mock(lambda _: httpx.Response(status, json=outcome))
    with fhir, pytest.raises(error, match="database down") as caught:
        fhir.read_encounter("enc-muller")
    assert type(caught.value) is error and isinstance(caught.value, CaptureError)


def test_timeout_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with _mock(handler) as fhir, pytest.raises(FhirUnavailable, match="in time"):
        fhir.read_patient("pat-muller")


def test_non_json_answer_is_an_error() -> None:
    fhir = _mock(lambda _: httpx.Response(200, text="<html>login</html>"))
    with fhir, pytest.raises(FhirError, match="not JSON"):
        fhir.read_patient("pat-muller")


# --- mapping ---------------------------------------------------------------------------------


def test_muller_maps_exactly() -> None:
    mapped = patient_in(_patient("pat-muller"), mrn_system=None, issuer=None)
    patient = mapped.to_patient()
    assert patient.name == PersonName("Müller", "Jürgen")
    assert patient.name.dicom() == "Müller^Jürgen"
    assert patient.patient_id == "100001"
    assert patient.issuer is not None
    assert patient.issuer.universal_id == MRN_OID
    assert patient.issuer.universal_id_type is UniversalIdType.ISO
    assert patient.issuer.local_namespace == data.HOSPITAL
    assert patient.birth_date == dt.date(1950, 3, 14)
    assert patient.sex is Sex.MALE


def test_mrn_by_configured_system_and_configured_issuer() -> None:
    mapped = patient_in(_patient("pat-ngata"), mrn_system=data.MRN_SYSTEM, issuer="urn:oid:1.2.3.4")
    assert mapped.id == "100005"
    assert mapped.issuer is not None
    assert (mapped.issuer.universal_id, mapped.issuer.namespace) == ("1.2.3.4", None)
    assert patient_in(_patient("pat-ngata"), mrn_system=None, issuer="SGH").issuer is not None
    local = patient_in(_patient("pat-ngata"), mrn_system=None, issuer="SGH").issuer
    assert local is not None and (local.namespace, local.universal_id) == ("SGH", None)


def test_configured_mrn_system_absent_is_refused_not_guessed() -> None:
    with pytest.raises(InvalidMetadata, match="no medical record number"):
        patient_in(_patient("pat-muller"), mrn_system="urn:oid:1.2.3", issuer=None)


def test_patient_without_mr_identifier_is_refused() -> None:
    resource = copy.deepcopy(data.PATIENTS["pat-muller"])
    resource["identifier"][0]["type"]["coding"][0]["code"] = "SS"
    with pytest.raises(InvalidMetadata, match="no medical record number"):
        patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)
    del resource["identifier"]
    with pytest.raises(InvalidMetadata, match="no medical record number"):
        patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)


def test_two_different_mrns_are_refused_and_old_ones_ignored() -> None:
    resource = copy.deepcopy(data.PATIENTS["pat-muller"])
    second = copy.deepcopy(resource["identifier"][0])
    second["value"] = "999999"
    resource["identifier"].append(second)
    with pytest.raises(InvalidMetadata, match="more than one medical record number"):
        patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)
    second["use"] = "old"
    mapped = patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)
    assert mapped.id == "100001"


def test_uri_system_and_long_system() -> None:
    resource = copy.deepcopy(data.PATIENTS["pat-smith-a"])
    resource["identifier"][0]["system"] = "https://ehr.example.org/mrn"
    mapped = patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)
    patient = mapped.to_patient()
    assert patient.issuer is not None
    assert patient.issuer.universal_id == "https://ehr.example.org/mrn"
    assert patient.issuer.universal_id_type is UniversalIdType.URI
    resource["identifier"][0]["system"] = "https://ehr.example.org/" + "x" * 60
    with pytest.raises(InvalidMetadata, match="longer than DICOM"):
        patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)


def test_cjk_patient_without_birth_date() -> None:
    mapped = patient_in(_patient("pat-okada"), mrn_system=None, issuer=None)
    assert mapped.birth_date is None
    assert mapped.name is not None and (mapped.name.family, mapped.name.given) == ("岡田", "花子")
    assert mapped.sex is Sex.FEMALE


def test_names_gender_and_partial_birth_date() -> None:
    resource = copy.deepcopy(data.PATIENTS["pat-smith-a"])
    resource["name"] = [
        {"use": "usual", "family": "Smithy", "given": ["Jack"]},
        {"use": "official", "family": "Smith", "given": ["John", "Paul"]},
    ]
    resource["gender"] = "unknown"
    resource["birthDate"] = "1980"
    mapped = patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)
    assert mapped.name is not None and (mapped.name.family, mapped.name.given) == (
        "Smith",
        "John Paul",
    )
    assert mapped.sex is None and mapped.birth_date is None
    resource["name"] = [{"text": "Aroha Ngata"}]
    resource["gender"] = "other"
    mapped = patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)
    assert mapped.name is not None and (mapped.name.family, mapped.name.given) == (
        "Aroha Ngata",
        "",
    )
    assert mapped.sex is Sex.OTHER


def test_merged_patient_is_refused() -> None:
    resource = copy.deepcopy(data.PATIENTS["pat-smith-a"])
    resource["link"] = [{"other": {"reference": "Patient/pat-smith-b"}, "type": "replaced-by"}]
    with pytest.raises(InvalidMetadata, match="merged"):
        patient_in(Patient.model_validate(resource), mrn_system=None, issuer=None)


def test_encounter_with_identifier() -> None:
    mapped = encounter_in(_encounter("enc-muller"), patient_id="pat-muller")
    encounter = mapped.to_encounter()
    assert encounter.admission_id == "V-5001"
    assert encounter.issuer is not None
    assert encounter.issuer.universal_id == VISIT_OID
    assert encounter.issuer.universal_id_type is UniversalIdType.ISO
    assert encounter.description == "Dermatology, ambulatory, Derm clinic"
    assert encounter.started_at is not None and encounter.started_at.hour == 9
    assert encounter.started_at.tzinfo is not None


def test_encounter_without_identifier_has_no_admission_id() -> None:
    mapped = encounter_in(_encounter("enc-smith-b"))
    assert (mapped.admission_id, mapped.issuer) == (None, None)
    assert mapped.description == "Wound care, inpatient, Ward 7"


def test_encounter_of_another_patient_or_in_error_is_refused() -> None:
    with pytest.raises(InvalidMetadata, match="different patient"):
        encounter_in(_encounter("enc-smith-a"), patient_id="pat-smith-b")
    resource = copy.deepcopy(data.ENCOUNTERS["enc-muller"])
    resource["status"] = "entered-in-error"
    with pytest.raises(InvalidMetadata, match="entered-in-error"):
        encounter_in(Encounter.model_validate(resource))


def test_description_is_cut_at_a_word_boundary() -> None:
    resource = copy.deepcopy(data.ENCOUNTERS["enc-muller"])
    resource["serviceType"] = {"text": "Plastic and reconstructive surgery outpatient follow-up"}
    mapped = encounter_in(Encounter.model_validate(resource))
    assert mapped.description == "Plastic and reconstructive surgery outpatient follow-up"
    assert word_truncate(["a" * 70]) == "a" * 64
    assert word_truncate(["Dermatology", "ambulatory", "x" * 50]) == "Dermatology, ambulatory"


def test_banner_shows_what_tells_two_john_smiths_apart() -> None:
    a = banner(patient_in(_patient("pat-smith-a"), mrn_system=None, issuer=None))
    b = banner(patient_in(_patient("pat-smith-b"), mrn_system=None, issuer=None))
    assert a["name"] == b["name"] == "Smith, John"
    assert (a["mrn"], a["birth_date"]) != (b["mrn"], b["birth_date"])
    okada = banner(
        patient_in(_patient("pat-okada"), mrn_system=None, issuer=None), today=dt.date(2026, 1, 1)
    )
    assert okada == {
        "name": "岡田, 花子",
        "birth_date": "unknown",
        "age": "unknown",
        "mrn": "100004",
        "mrn_issuer": data.HOSPITAL,
        "sex": "female",
    }
    ngata = banner(
        patient_in(_patient("pat-ngata"), mrn_system=None, issuer=None), today=dt.date(2026, 5, 4)
    )
    assert ngata["age"] == "11 y"


# --- end to end: EHR -> context -> DICOM -----------------------------------------------------


def test_launch_context_to_dicom(sandbox: SandboxServer, issue: Issue, tmp_path: Path) -> None:
    with client_for(sandbox, issue(patient="pat-muller")) as fhir:
        patient = patient_in(fhir.read_patient("pat-muller"), mrn_system=None, issuer=None)
        encounter = encounter_in(fhir.read_encounter("enc-muller"), patient_id="pat-muller")
    ctx = CaptureContext(
        capture_id="fhir-e2e-1",
        patient=patient.to_patient(),
        encounter=encounter.to_encounter(),
    )
    path = tmp_path / "muller.dcm"
    wrap_photo(phone_jpeg(64, 48), ctx).save(path)

    ds = pydicom.dcmread(path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Müller^Jürgen"
    assert ds.PatientName.family_name == "Müller" and ds.PatientName.given_name == "Jürgen"
    assert ds.PatientID == "100001"
    assert ds.IssuerOfPatientID == data.HOSPITAL
    qualifiers = ds.IssuerOfPatientIDQualifiersSequence[0]
    assert (qualifiers.UniversalEntityID, qualifiers.UniversalEntityIDType) == (MRN_OID, "ISO")
    assert ds.PatientBirthDate == "19500314"
    assert ds.PatientSex == "M"
    assert ds.AdmissionID == "V-5001"
    visit_issuer = ds.IssuerOfAdmissionIDSequence[0]
    assert (visit_issuer.UniversalEntityID, visit_issuer.UniversalEntityIDType) == (
        VISIT_OID,
        "ISO",
    )
    assert ds.StudyDescription == "Dermatology, ambulatory, Derm clinic"
    assert dciodvfy_errors(path) == []


def test_cjk_patient_without_visit_number_to_dicom(
    sandbox: SandboxServer, issue: Issue, tmp_path: Path
) -> None:
    with client_for(sandbox, issue(USER_SCOPES)) as fhir:
        patient = patient_in(fhir.read_patient("pat-okada"), mrn_system=None, issuer=None)
        resource = fhir.read_encounter("enc-smith-b")
    encounter = encounter_in(resource)
    ctx = CaptureContext(
        capture_id="fhir-e2e-2", patient=patient.to_patient(), encounter=encounter.to_encounter()
    )
    path = tmp_path / "okada.dcm"
    wrap_photo(phone_jpeg(64, 48), ctx).save(path)
    ds = pydicom.dcmread(path)
    assert str(ds.PatientName) == "岡田^花子"
    assert ds.PatientBirthDate == ""
    assert "AdmissionID" not in ds
    assert dciodvfy_errors(path) == []
