"""The roles capture checks before showing sensitive images or the audit trail.

Roles come from the signed-in clinician's SMART token (claims) or from local configuration
(by fhirUser); in integration mode (no EHR registered) the calling system is trusted with all
roles, as README says. The full resolution is built with the privacy issue; until then a
signed-in user is a clinician only.
"""

from __future__ import annotations

from enum import StrEnum

from capture_api.store.records import UserSession


class Role(StrEnum):
    """What a user may do beyond capturing for the launched patient."""

    CLINICIAN = "clinician"  # capture, see normal priors, see restricted ones blurred
    SENSITIVE_VIEWER = "sensitive-viewer"  # unblur restricted / list very-restricted (audited)
    AUDITOR = "auditor"  # read and export the audit trail


ALL_ROLES: frozenset[Role] = frozenset(Role)


def roles_of(session: UserSession | None, *, ehr_mode: bool) -> frozenset[Role]:
    """The roles of a request's user (integration mode: the trusted caller has all)."""
    if not ehr_mode:
        return ALL_ROLES
    if session is None:
        return frozenset()
    return frozenset({Role.CLINICIAN})
