"""Break-the-glass: seeing a restricted photo unblurred, for a typed reason, always audited.

The rule (issue 6, item 2): a blurred photo is shown clear only to a user with the
``sensitive-viewer`` role who types why (at least ``MIN_REASON_CHARS`` characters after
trimming). Every attempt is one audit event ``unblur``: refused (no role, no reason, no such
photo) or success, with the reason, the photo's SOP Instance UID, the user and the patient,
and the purpose of use ``ETREAT`` (``capture_api.audit.trail.Purpose``). A success is
recorded *after* the clear image was read and *before* it is sent; if the audit trail cannot
be written the image is not sent at all.
The answer is ``no-store`` and one answer is one view (the route is a POST: nothing to
bookmark, prefetch or replay from a cache).
"""

from __future__ import annotations

from capture_api.audit.trail import Outcome, Purpose, record
from capture_api.capture.roles import Role
from capture_api.exceptions import CaptureError, InputRejected, RoleRequired
from capture_api.privacy.actor import Actor
from capture_api.store.db import Database

ACTION = "unblur"
MIN_REASON_CHARS = 10
MAX_REASON_CHARS = 500
NO_ROLE = (
    "seeing a restricted photo unblurred needs the 'sensitive-viewer' role, which you do not "
    "have: ask your capture administrator if your work needs it"
)
NO_REASON = (
    f"type why you need to see this photo unblurred (at least {MIN_REASON_CHARS} characters, "
    f"at most {MAX_REASON_CHARS}); the reason is kept in the audit trail"
)

NOT_AUDITED = (
    "capture could not write the audit trail, so the photo is not shown unblurred: "
    "try again in a moment, or call support if it keeps happening"
)


class AuditUnavailable(CaptureError):
    """The audit event of a granted unblur could not be stored: nothing is shown (500)."""


class BreakGlass:
    """Checks and audits one unblur request (see the module docstring)."""

    def __init__(
        self, engine: Database, actor: Actor, *, context_id: str, patient: str, photo: str
    ) -> None:
        self.engine = engine
        self.actor = actor
        self.context_id = context_id
        self.patient = patient  # MRN, as every audit event names the patient
        self.photo = photo  # SOP Instance UID

    def check(self, reason: str | None) -> str:
        """The trimmed reason, if the user may unblur; else refuse (audited): 403 or 422."""
        text = " ".join((reason or "").split())
        if not self.actor.has(Role.SENSITIVE_VIEWER):
            self.refused("no sensitive-viewer role", text)
            raise RoleRequired(NO_ROLE)
        if not MIN_REASON_CHARS <= len(text) <= MAX_REASON_CHARS:
            self.refused("no usable reason", text)
            raise InputRejected(NO_REASON)
        return text

    def refused(self, why: str, reason: str) -> None:
        self._audit(Outcome.REFUSED, f"refused ({why}); reason: {reason or '(none)'}")

    def granted(self, reason: str) -> None:
        """Record the view; ``AuditUnavailable`` when the trail could not take it."""
        if not self._audit(Outcome.SUCCESS, f"reason: {reason}"):
            raise AuditUnavailable(NOT_AUDITED)

    def _audit(self, outcome: Outcome, text: str) -> bool:
        stored = record(
            self.engine,
            ACTION,
            outcome,
            actor=self.actor.fhir_user,
            session_id=self.actor.session_id,
            patient=self.patient,
            detail=text,
            purpose=Purpose.ETREAT,
            context_id=self.context_id,
            sop_instance_uid=self.photo,
        )
        return stored is not None
