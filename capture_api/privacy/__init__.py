"""Who may see what: sensitive-image enforcement, break-the-glass and consent.

* ``actor``: the user behind a request, as decisions and audit events name them;
* ``visibility``: what each role (``capture_api.capture.roles``) is shown of a normal /
  restricted / very-restricted photo;
* ``break_glass``: unblurring one photo for a typed reason, every attempt audited;
* ``consents`` / ``consent_fhir``: recording the patient's consent to photography (FHIR R4
  Consent) and the captures that reference it; when a photo needs it first is the domain's
  ``capture_api.capture.consent_policy``.

docs/privacy.md describes the model end to end.
"""

from capture_api.privacy.actor import Actor
from capture_api.privacy.break_glass import MIN_REASON_CHARS, AuditUnavailable, BreakGlass
from capture_api.privacy.consents import (
    ConsentIn,
    captures_under,
    consent_for_capture,
    latest_consent,
    record_consent,
)
from capture_api.privacy.visibility import Visibility

__all__ = [
    "MIN_REASON_CHARS",
    "Actor",
    "AuditUnavailable",
    "BreakGlass",
    "ConsentIn",
    "Visibility",
    "captures_under",
    "consent_for_capture",
    "latest_consent",
    "record_consent",
]
