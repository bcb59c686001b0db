"""Who is acting, as the privacy decisions and their audit events need it."""

from __future__ import annotations

from dataclasses import dataclass

from capture_api.capture.roles import Role


@dataclass(frozen=True)
class Actor:
    """The user behind a request: roles, and how the audit trail names them.

    In integration mode (no EHR registered) there is no session: ``fhir_user`` and
    ``session_id`` are None and the trusted caller has every role.
    """

    roles: frozenset[Role]
    fhir_user: str | None = None
    session_id: str | None = None

    def has(self, role: Role) -> bool:
        return role in self.roles
