"""The roles capture checks before showing sensitive images or the audit trail.

Where a signed-in user's roles come from, decided once at launch and stored on the session
(``user_session.roles``), so no request re-reads a token:

* every signed-in user is a ``clinician`` (they launched capture from a patient's chart);
* the SMART id_token's role claim (``EhrRegistration.role_claim``, default ``capture_roles``:
  a JSON list, or one space/comma separated string, of the role names below), from an EHR or
  identity provider that can issue it; the claim is read only after ``SmartClient`` verified the
  id_token's signature, issuer, audience and nonce;
* local configuration ``CAPTURE_ROLE_MAP`` (JSON: fhirUser -> role names), for EHRs that cannot
  put roles in the token; keys may be absolute (``https://ehr/fhir/Practitioner/1``) or
  relative to the EHR's FHIR base (``Practitioner/1``).

Names that are not capture roles are ignored: an EHR's own role vocabulary never grants
anything here by accident. In integration mode (no EHR registered) the calling system is
trusted with all roles, as README says for that mode.

**Patients hold no role.** A SMART launch whose ``fhirUser`` is a ``Patient`` or a
``RelatedPerson`` (a patient portal, the public SMART launcher's patient-standalone launch)
is a patient or their representative, not staff: they get no capture role at all, whatever
a token claim or the role map says, and the launch is refused (capture is a clinician's tool;
patient-generated photos would need their own review and provenance, issue 14 finding 10).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from capture_api.store.records import UserSession

#: The id_token claim read for roles when a registration does not name another.
DEFAULT_ROLE_CLAIM = "capture_roles"


class Role(StrEnum):
    """What a user may do beyond capturing for the launched patient."""

    CLINICIAN = "clinician"  # capture, see normal priors, see restricted ones blurred
    SENSITIVE_VIEWER = "sensitive-viewer"  # unblur restricted / list very-restricted (audited)
    AUDITOR = "auditor"  # read and export the audit trail
    IMAGING_ADMIN = "imaging-admin"  # reject (IOCM) and re-file any photo, with a reason


ALL_ROLES: frozenset[Role] = frozenset(Role)
#: What every signed-in user has.
BASELINE: frozenset[Role] = frozenset({Role.CLINICIAN})


#: FHIR resource types of a ``fhirUser`` who is a patient or speaks for one (SMART App Launch
#: 2.2 scopes-and-launch-context.html: fhirUser is a Patient, Practitioner, PractitionerRole,
#: RelatedPerson or Person).
PATIENT_USER_TYPES = frozenset({"Patient", "RelatedPerson"})


def is_patient_user(fhir_user: str | None) -> bool:
    """Whether ``fhirUser`` (relative or absolute URL) names a Patient or RelatedPerson."""
    if not fhir_user:
        return False
    parts = [p for p in fhir_user.split("?")[0].split("/") if p]
    if len(parts) >= 4 and parts[-2] == "_history":  # .../Patient/7/_history/2
        parts = parts[:-2]
    return len(parts) >= 2 and parts[-2] in PATIENT_USER_TYPES


def roles_of(session: UserSession | None, *, ehr_mode: bool) -> frozenset[Role]:
    """The roles of a request's user (integration mode: the trusted caller has all; a patient
    user none, whatever was stored for their session)."""
    if not ehr_mode:
        return ALL_ROLES
    if session is None or is_patient_user(session.fhir_user):
        return frozenset()
    return BASELINE | parse_roles(session.roles)


def parse_roles(value: object) -> frozenset[Role]:
    """Role names from a claim or a stored column: a list, or a space/comma separated string.

    Unknown names are dropped (never an error: an EHR may send its own vocabulary too).
    """
    if isinstance(value, str):
        names: Iterable[object] = value.replace(",", " ").split()
    elif isinstance(value, list | tuple):
        names = value
    else:
        return frozenset()
    known = {r.value: r for r in Role}
    return frozenset(known[n.strip()] for n in names if isinstance(n, str) and n.strip() in known)


def roles_text(roles: Iterable[Role]) -> str:
    """The stored form: sorted names, comma separated (``user_session.roles``)."""
    return ",".join(sorted(r.value for r in roles))


def resolve_roles(
    *,
    claims: Mapping[str, Any],
    claim_name: str | None,
    fhir_user: str | None,
    iss: str,
    role_map: Mapping[str, Iterable[Role]],
) -> frozenset[Role]:
    """A new session's roles: the baseline, the token's claim and the local map, united;
    none for a patient user (``is_patient_user``)."""
    if is_patient_user(fhir_user):
        return frozenset()
    roles = set(BASELINE)
    if claim_name:
        roles |= parse_roles(claims.get(claim_name))
    if fhir_user:
        for key in _user_keys(fhir_user, iss):
            roles |= set(role_map.get(key, ()))
    return frozenset(roles)


def _user_keys(fhir_user: str, iss: str) -> tuple[str, ...]:
    """The fhirUser as given, plus its relative form when it lies under the EHR's base."""
    base = iss.rstrip("/") + "/"
    if fhir_user.startswith(base):
        return (fhir_user, fhir_user[len(base) :])
    return (fhir_user, f"{base}{fhir_user}")
