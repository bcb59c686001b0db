"""What taking a photo back can refuse (mapped to HTTP in ``capture_api.api.errors``)."""

from __future__ import annotations

from capture_api.exceptions import Conflict


class NotArchived(Conflict):
    """The photo is not in the archive yet (or never will be): nothing to reject there."""


class RefileRefused(Conflict):
    """The photo cannot be re-filed as asked: not rejected for another patient, the same
    patient, or already re-filed to someone else (the message says which)."""
