"""The roles of a session being created by a SMART launch (stored once on ``user_session``).

Glue between the launch (a verified token response, the EHR's registration) and
``capture_api.capture.roles.resolve_roles``, kept apart from ``roles`` because the settings
import that module.
"""

from __future__ import annotations

from capture_api.capture.roles import resolve_roles, roles_text
from capture_api.config import Settings
from capture_api.context.smart import TokenResult, find_registration


def session_roles(settings: Settings, iss: str, token: TokenResult) -> str:
    """The stored form (``roles_text``) of the launched user's roles."""
    return roles_text(
        resolve_roles(
            claims=token.id_token_claims,
            claim_name=find_registration(settings, iss).role_claim,
            fhir_user=token.fhir_user,
            iss=iss,
            role_map=settings.role_map,
        )
    )
