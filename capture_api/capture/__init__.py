"""The domain model: what a clinical photo is about, with no I/O and no settings.

The patient and encounter (``patient``: DICOM's value rules; ``schemas``: their JSON form),
coded anatomy (``anatomy``: SNOMED CT sites of DICOM CID 4029/4031, laterality, the one
display name of each site, search), sensitivity (``sensitivity``, the sensitive-site rules
of ``sensitivity_policy``), the consent rules (``consent_policy``), the roles a user can hold
(``roles``), the one rule for typed free text (``text``) and the capture context the encoder
turns into DICOM (``model``). Every layer
above may use these names; nothing here reads the database, the network or the settings.
"""

from capture_api.capture.anatomy import (
    BodySite,
    Laterality,
    SiteMatch,
    all_sites,
    get_site,
    offer,
    resolve,
    search,
    site_name,
)
from capture_api.capture.consent_policy import (
    NEVER,
    ConsentPolicy,
    ConsentRules,
    ConsentSetting,
    is_consent_form,
)
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import (
    LO_MAX,
    Encounter,
    Issuer,
    Patient,
    PersonName,
    Sex,
    UniversalIdType,
    check_lo,
    same_authority,
)
from capture_api.capture.rejection import RejectReason
from capture_api.capture.retrieval import Retrieval
from capture_api.capture.roles import (
    DEFAULT_ROLE_CLAIM,
    Role,
    is_patient_user,
    parse_roles,
    resolve_roles,
    roles_of,
    roles_text,
)
from capture_api.capture.schemas import (
    ContextIn,
    EncounterIn,
    IssuerIn,
    NameIn,
    PatientIn,
    unit_of,
)
from capture_api.capture.sensitivity import (
    ACT_CODE_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    Sensitivity,
    SensitivityCategory,
    SensitivityLevel,
)
from capture_api.capture.sensitivity_policy import (
    SensitiveSiteRule,
    SensitivityPolicy,
    default_policy,
    policy_for,
)
from capture_api.capture.text import (
    FreeText,
    MultilineText,
    check_free_text,
    refused_character,
    storable,
)

__all__ = [
    "ACT_CODE_SYSTEM",
    "CONFIDENTIALITY_SYSTEM",
    "DEFAULT_ROLE_CLAIM",
    "LO_MAX",
    "NEVER",
    "BodySite",
    "CaptureContext",
    "ConsentPolicy",
    "ConsentRules",
    "ConsentSetting",
    "ContextIn",
    "Encounter",
    "EncounterIn",
    "FreeText",
    "Issuer",
    "IssuerIn",
    "Laterality",
    "MultilineText",
    "NameIn",
    "Patient",
    "PatientIn",
    "PersonName",
    "RejectReason",
    "Retrieval",
    "Role",
    "SensitiveSiteRule",
    "Sensitivity",
    "SensitivityCategory",
    "SensitivityLevel",
    "SensitivityPolicy",
    "Sex",
    "SiteMatch",
    "UniversalIdType",
    "all_sites",
    "check_free_text",
    "check_lo",
    "default_policy",
    "get_site",
    "is_consent_form",
    "is_patient_user",
    "offer",
    "parse_roles",
    "policy_for",
    "refused_character",
    "resolve",
    "resolve_roles",
    "roles_of",
    "roles_text",
    "same_authority",
    "search",
    "site_name",
    "storable",
    "unit_of",
]
