"""What a user is shown of a photo, by its sensitivity level and the user's roles.

The one table every view (priors, timeline) applies, so they cannot drift apart:

============== ======================== =====================================================
level          clinician                sensitive-viewer
============== ======================== =====================================================
normal         listed, clear            listed, clear
restricted     listed, blurred          listed, blurred; clear only by break-the-glass
very-restr.    not listed, 404          listed, blurred; clear only by break-the-glass
============== ======================== =====================================================

"Blurred" means blurred on the server: the clear pixels of a restricted photo never leave
capture except through the audited unblur (``capture_api.privacy.break_glass``).
"""

from __future__ import annotations

from dataclasses import dataclass

from capture_api.capture.roles import Role
from capture_api.capture.sensitivity import SensitivityLevel


@dataclass(frozen=True)
class Visibility:
    """The decisions for one user (a set of roles); the default sees nothing sensitive."""

    roles: frozenset[Role] = frozenset()

    @property
    def sensitive_viewer(self) -> bool:
        return Role.SENSITIVE_VIEWER in self.roles

    def listed(self, level: SensitivityLevel) -> bool:
        """Whether the photo appears at all (very restricted: only to sensitive viewers)."""
        return level is not SensitivityLevel.VERY_RESTRICTED or self.sensitive_viewer

    @staticmethod
    def blurred(level: SensitivityLevel) -> bool:
        """Whether its images are served blurred (everything above normal, for everyone)."""
        return level is not SensitivityLevel.NORMAL

    def may_unblur(self, level: SensitivityLevel) -> bool:
        """Whether break-the-glass is offered for it (a blurred photo, a sensitive viewer)."""
        return self.blurred(level) and self.sensitive_viewer
