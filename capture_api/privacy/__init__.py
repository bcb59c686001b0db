"""Who may see what: roles, sensitive-image enforcement, break-the-glass and consent.

* ``roles`` / ``launch_roles``: the roles (clinician, sensitive-viewer, auditor), resolved
  once at a SMART launch from the verified id_token's claim and ``CAPTURE_ROLE_MAP``;
* ``actor``: the user behind a request, as decisions and audit events name them;
* ``visibility``: what each role is shown of a normal / restricted / very-restricted photo;
* ``break_glass``: unblurring one photo for a typed reason, every attempt audited;
* ``consent_policy`` / ``consents`` / ``consent_fhir``: when a photo needs recorded consent
  first, recording it (FHIR R4 Consent) and the captures that reference it.

docs/privacy.md describes the model end to end.
"""
