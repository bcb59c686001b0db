"""Roles: resolved once at a real SMART launch (sandbox id_token claim, local role map), stored
on the session, and what each role is shown."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.practitioner import Practitioner
from sqlmodel import Session

from capture_api.capture.roles import Role, parse_roles, resolve_roles, roles_of
from capture_api.capture.sensitivity import SensitivityLevel
from capture_api.context.sessions import COOKIE_NAME, session_id
from capture_api.privacy.visibility import Visibility
from capture_api.store.records import UserSession
from ehr_sandbox import data
from ehr_sandbox.server import SandboxServer
from tests.privacy.people import NINA, OTTO, VERA, sign_in
from tests.security.conftest import AppFactory, registration

ISS = "https://ehr.example/fhir"


def test_claim_values_are_read_leniently_and_never_grant_unknown_names() -> None:
    assert parse_roles(["sensitive-viewer", "auditor"]) == {Role.SENSITIVE_VIEWER, Role.AUDITOR}
    assert parse_roles("sensitive-viewer, auditor") == {Role.SENSITIVE_VIEWER, Role.AUDITOR}
    assert parse_roles(["admin", "SENSITIVE-VIEWER", 7, None]) == frozenset()
    assert parse_roles({"role": "auditor"}) == frozenset()  # not a list or a string
    assert parse_roles("") == frozenset()


def test_roles_unite_baseline_claim_and_map_by_absolute_or_relative_fhir_user() -> None:
    def resolve(
        claims: dict[str, object], user: str | None, role_map: dict[str, list[Role]]
    ) -> frozenset[Role]:
        return resolve_roles(
            claims=claims, claim_name="capture_roles", fhir_user=user, iss=ISS, role_map=role_map
        )

    assert resolve({}, None, {}) == {Role.CLINICIAN}
    assert resolve({"capture_roles": ["auditor"]}, None, {}) == {Role.CLINICIAN, Role.AUDITOR}
    assert resolve({"roles": ["auditor"]}, None, {}) == {Role.CLINICIAN}  # another claim
    relative = {"Practitioner/7": [Role.SENSITIVE_VIEWER]}
    absolute = {f"{ISS}/Practitioner/7": [Role.SENSITIVE_VIEWER]}
    for role_map in (relative, absolute):
        for user in (f"{ISS}/Practitioner/7", "Practitioner/7"):
            assert Role.SENSITIVE_VIEWER in resolve({}, user, role_map)
    assert resolve({}, f"{ISS}/Practitioner/8", relative) == {Role.CLINICIAN}
    assert resolve({}, "https://other.example/fhir/Practitioner/7", relative) == {Role.CLINICIAN}


def test_what_each_role_is_shown() -> None:
    clinician, viewer = Visibility(frozenset({Role.CLINICIAN})), Visibility(frozenset(Role))
    normal, restricted, very = list(SensitivityLevel)
    assert [clinician.listed(level) for level in (normal, restricted, very)] == [True, True, False]
    assert [viewer.listed(level) for level in (normal, restricted, very)] == [True, True, True]
    assert [Visibility.blurred(level) for level in (normal, restricted, very)] == [
        False,
        True,
        True,
    ]
    assert not clinician.may_unblur(restricted) and not viewer.may_unblur(normal)
    assert viewer.may_unblur(restricted) and viewer.may_unblur(very)
    assert Visibility().listed(very) is False  # the default is fail closed
    assert roles_of(None, ehr_mode=False) == frozenset(Role)  # integration mode: trusted caller
    assert roles_of(None, ehr_mode=True) == frozenset()


def _stored_roles(client: TestClient) -> str:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    cookie = client.cookies.get(COOKIE_NAME)
    assert cookie is not None
    with Session(runtime.engine) as s:
        row = s.get(UserSession, session_id(cookie))
    assert row is not None
    return row.roles


@pytest.mark.parametrize(
    ("user", "roles"),
    [
        (NINA, ["clinician"]),
        (VERA, ["clinician", "sensitive-viewer"]),
        (OTTO, ["auditor", "clinician"]),
    ],
)
def test_roles_come_from_the_verified_id_token_at_launch(
    make_app: AppFactory, ehr: SandboxServer, user: str, roles: list[str]
) -> None:
    client = make_app(ehr=ehr)
    session = sign_in(client, ehr, user)
    assert session["fhir_user"] == f"{ehr.fhir_base}/Practitioner/{user}"
    assert session["roles"] == roles
    assert _stored_roles(client) == ",".join(roles)  # resolved once, at launch


def test_the_local_role_map_grants_roles_the_token_does_not_carry(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    client = make_app(ehr=ehr, role_map={"Practitioner/prac-nina": ["sensitive-viewer"]})
    assert sign_in(client, ehr, NINA)["roles"] == ["clinician", "sensitive-viewer"]


def test_a_registration_can_ignore_the_token_claim(
    make_app: AppFactory, ehr: SandboxServer
) -> None:
    no_claim = registration(ehr).model_copy(update={"role_claim": None})
    client = make_app(ehrs=[no_claim])
    assert sign_in(client, ehr, VERA)["roles"] == ["clinician"]


def test_the_sandbox_ehr_page_chooses_who_is_signed_in(ehr: SandboxServer) -> None:
    page = httpx.get(f"{ehr.state.base_url}/?user={VERA}")
    assert page.status_code == 200
    assert "Signed in as Dr Vera Okafor (capture roles: clinician, sensitive-viewer)" in page.text
    assert f"/ehr/launch/enc-muller?user={VERA}" in page.text
    assert "Nina Nurse</a>" in page.text and "Otto Berg</a>" in page.text  # switch user
    assert httpx.get(f"{ehr.state.base_url}/?user=prac-nobody").status_code == 404
    unknown = httpx.get(f"{ehr.state.base_url}/ehr/launch/enc-muller?user=prac-nobody")
    assert unknown.status_code == 404
    for resource in data.PRACTITIONERS.values():
        Practitioner.model_validate(resource)
