"""When a photo needs the patient's recorded consent first: the deployment's consent policy.

``CAPTURE_CONSENT_REQUIRED`` is one of:

* ``never`` (the default): consent may be recorded, nothing waits for it;
* ``always``: every photo of a context waits until a consent is recorded for that context;
* a JSON object of rules (any that matches requires consent)::

    {"units": ["Children's ED", "Sexual health clinic"], "min_sensitivity": "restricted"}

  ``units``: the hospital site's wards or clinics (the encounter's unit, as the EHR names it:
  FHIR Encounter.location display; compared ignoring case and spacing) where every photo needs
  consent. ``min_sensitivity``: photos at or above this level need consent anywhere; the level
  is the higher of the one chosen for the photo and the one the sensitive-site policy
  suggests for its body site (``CAPTURE_SENSITIVE_SITES``), so a genital or facial photo
  cannot skip consent by being marked normal.

A photo whose view is ``consent form`` (``CONSENT_FORM_VIEW``) never waits: it is the scanned
form the consent will point to. ``POST /api/v1/captures`` answers 428 Precondition Required
(RFC 6585) while consent is missing; nothing of the photo is stored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from capture_api.capture.sensitivity import SensitivityLevel
from capture_api.capture.sensitivity_policy import SensitivityPolicy, default_policy

#: The view (``CaptureRecord.view``) of the photo of a signed consent form.
CONSENT_FORM_VIEW = "consent form"
_ORDER = list(SensitivityLevel)


class ConsentRules(BaseModel):
    """The JSON form of ``CAPTURE_CONSENT_REQUIRED``: which photos need consent first."""

    model_config = ConfigDict(extra="forbid")
    units: list[str] = Field(
        default_factory=list, description="Encounter units (wards, clinics) where consent is needed"
    )
    min_sensitivity: SensitivityLevel | None = Field(
        default=None, description="Photos at or above this level need consent in every unit"
    )


ConsentSetting = Literal["never", "always"] | ConsentRules


def is_consent_form(view: str | None) -> bool:
    """Whether a photo is the scanned consent form itself."""
    return " ".join((view or "").split()).casefold() == CONSENT_FORM_VIEW


class ConsentPolicy:
    """Decides, per photo, whether a recorded consent must exist (see the module docstring)."""

    def __init__(self, setting: ConsentSetting, sites: SensitivityPolicy) -> None:
        self.setting = setting
        self.sites = sites

    def reason(
        self, *, unit: str | None, level: SensitivityLevel, body_site: str | None, view: str | None
    ) -> str | None:
        """Why this photo needs consent first (a phrase for the message), or None."""
        if self.setting == "never" or is_consent_form(view):
            return None
        if self.setting == "always":
            return "this service requires the patient's consent before any photo"
        rules = self.setting
        if unit and _norm(unit) in {_norm(u) for u in rules.units}:
            return f"photos in {unit} need the patient's consent"
        if rules.min_sensitivity is not None:
            suggested = self.sites.suggest(body_site)
            if suggested is not None:
                level = max(level, suggested.level, key=_ORDER.index)
            if _ORDER.index(level) >= _ORDER.index(rules.min_sensitivity):
                return f"a {level.value} photo needs the patient's consent"
        return None


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


#: What a service built without settings (tests, the CLI) applies: nothing waits for consent.
NEVER = ConsentPolicy("never", default_policy())
