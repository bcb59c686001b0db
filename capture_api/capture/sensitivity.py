"""How sensitive a photo is: chosen by the clinician at capture, honoured everywhere after.

Levels are HL7 v3 Confidentiality codes (N, R, V); categories are HL7 v3 ActCode
information-sensitivity codes where one fits (STANDARDS.md 5.4). DICOM has no image-level
attribute for either (STANDARDS.md 5.5), so the encoder writes a documented private block
(see ``capture_api.encode.vl_photo``) and the database keeps the value too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from capture_api.exceptions import InvalidMetadata

CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


class SensitivityLevel(StrEnum):
    """The three levels a clinician can choose; values are the CLI/API spellings."""

    NORMAL = "normal"
    RESTRICTED = "restricted"
    VERY_RESTRICTED = "very-restricted"

    @property
    def confidentiality_code(self) -> str:
        """HL7 v3 Confidentiality code (2.16.840.1.113883.5.25): N, R or V."""
        return {"normal": "N", "restricted": "R", "very-restricted": "V"}[self.value]


class SensitivityCategory(StrEnum):
    """Why a photo is sensitive. Values are ActCode codes, or ours where ActCode has none."""

    SEXUAL_GENITAL = "SEX"  # ActCode SEX: sexuality and reproductive health
    ABUSE_FORENSIC = "SDV"  # ActCode SDV: sexual assault, abuse or domestic violence
    MINOR = "ADOL"  # ActCode ADOL: adolescent information sensitivity
    BREAST = "BREAST"  # no ActCode: ours, documented in the conformance notes
    IDENTIFIABLE_FACE = "FACE"  # no ActCode: ours; also sets Recognizable Visual Features

    @property
    def is_act_code(self) -> bool:
        """Whether the value is an HL7 ActCode (else a capture-local code)."""
        return self.value in {"SEX", "SDV", "ADOL"}


@dataclass(frozen=True)
class Sensitivity:
    """A level plus zero or more categories; a category never lowers the level."""

    level: SensitivityLevel = SensitivityLevel.NORMAL
    categories: frozenset[SensitivityCategory] = frozenset()

    @classmethod
    def parse(cls, level: str, categories: list[str] | None = None) -> Sensitivity:
        """Build from user-facing strings, with an error that lists what is allowed."""
        try:
            lvl = SensitivityLevel(level)
        except ValueError:
            allowed = ", ".join(v.value for v in SensitivityLevel)
            raise InvalidMetadata(f"sensitivity {level!r} is not one of: {allowed}") from None
        cats = set()
        for c in categories or []:
            try:
                cats.add(SensitivityCategory(c))
            except ValueError:
                allowed = ", ".join(v.value for v in SensitivityCategory)
                raise InvalidMetadata(
                    f"sensitivity category {c!r} is not one of: {allowed}"
                ) from None
        return cls(lvl, frozenset(cats))

    @property
    def is_restricted(self) -> bool:
        """Anything above normal is shown blurred and audited."""
        return self.level is not SensitivityLevel.NORMAL
