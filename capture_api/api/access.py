"""What a request may touch: the one place routes ask before reading or writing PHI.

With no EHR registered (integration mode: a trusted system calls the API, README says so)
every context is reachable and the caller holds every role. With EHRs registered, every PHI
route needs a signed-in session and may only use contexts that session opened (launch, scan,
worklist claim); anything else is refused with 403 and audited. The session's roles were
resolved once at launch (``capture_api.capture.roles``) and decide what sensitive photos the
user is shown (``visibility``) and whether they may break the glass (``actor``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from capture_api.api.errors import raises
from capture_api.capture.roles import Role, roles_of
from capture_api.context.sessions import NOT_SIGNED_IN, SessionStore, request_cookie
from capture_api.deliver.archive import Archive
from capture_api.encounters.ehr_context import EhrContexts
from capture_api.encounters.queue_custody import QueueCustody
from capture_api.exceptions import (
    NotFound,
    NotSignedIn,
    PatientMismatch,
    RoleRequired,
    UnknownContext,
)
from capture_api.privacy.actor import Actor
from capture_api.privacy.visibility import Visibility
from capture_api.review.timeline import Timeline, patient_of
from capture_api.runtime import Runtime
from capture_api.store import rejections
from capture_api.store.records import CaptureRecord, ContextRecord, UserSession

#: What ``Access.context`` and ``Access.photos`` refuse with (a route using them declares
#: these: ``errors.responses(*CONTEXT_ERRORS, ...)``).
CONTEXT_ERRORS = (NotSignedIn, PatientMismatch, UnknownContext)

#: What a session may do in an earlier context of the same user that was handed to it to send
#: the photos queued there (``QueueCustody.hand_over``): upload, follow, and record consent.
HANDOFF_ACTIONS = frozenset({"capture", "read", "consent"})

CONTEXTS_FROM_EHR = (
    "this deployment takes patients only from the EHR (launch, wristband scan or worklist); "
    "contexts cannot be created by hand"
)


class Access:
    """Per-request access decisions (a FastAPI dependency)."""

    def __init__(self, request: Request) -> None:
        runtime: Runtime = request.app.state.runtime
        self.runtime = runtime
        self.ehr_mode = bool(runtime.settings.ehrs)
        self.session: UserSession | None = None
        if self.ehr_mode:
            store = SessionStore(runtime.engine, runtime.settings)
            session = store.get(request_cookie(request))
            # A session without a capture role (a patient's, issue 14 finding 10) is no
            # session for the PHI routes: they answer as to a browser that is not signed in.
            if session is not None and roles_of(session, ehr_mode=True):
                self.session = session

    @property
    def roles(self) -> frozenset[Role]:
        """The user's roles (``capture_api.capture.roles``)."""
        return roles_of(self.session, ehr_mode=self.ehr_mode)

    @property
    def visibility(self) -> Visibility:
        """What this user is shown of sensitive photos (``capture_api.privacy.visibility``)."""
        return Visibility(self.roles)

    @property
    def actor(self) -> Actor:
        """The user as privacy decisions and audit events name them."""
        if self.session is None:
            return Actor(self.roles)
        return Actor(self.roles, self.session.fhir_user, self.session.id)

    @raises(NotSignedIn, RoleRequired)
    def require_role(self, role: Role, action: str) -> None:
        """Refuse (403) unless the user has ``role``; ``action`` names what was asked."""
        if self.ehr_mode:
            self.require_session()
        if role not in self.roles:
            raise RoleRequired(f"{action} needs the {role.value!r} role, which you do not have")

    @property
    def contexts(self) -> EhrContexts:
        return self.runtime.ehr_contexts

    @property
    def queue(self) -> QueueCustody:
        """The phone queue's key custody and handoffs (``capture_api.encounters``)."""
        return QueueCustody(self.runtime.engine, self.runtime.settings)

    @raises(NotSignedIn)
    def require_session(self) -> UserSession:
        if self.session is None:
            raise NotSignedIn(NOT_SIGNED_IN)
        return self.session

    @raises(*CONTEXT_ERRORS)
    def context(self, context_id: str, action: str) -> ContextRecord:
        """The context, if this request may use it (404 unknown, 401/403 not allowed)."""
        if not self.ehr_mode:
            return self.runtime.service.context(context_id)
        signed_in = self.require_session()  # before the lookup: no probing of context ids
        record = self.runtime.service.context(context_id)
        if (
            action in HANDOFF_ACTIONS
            and record.session_id != signed_in.id
            and self.queue.handed_over(signed_in, record)
        ):
            return record  # an earlier context of this user, handed over for its queued photos
        self.contexts.check_context(signed_in, record, action=action)
        return record

    @raises(NotSignedIn, NotFound)
    def capture(self, capture_id: str, action: str) -> CaptureRecord:
        """A capture of a context this request may use; ``NotFound`` in the same words for an
        unknown id and for another session's capture (the refusal is audited all the same),
        and the session is asked for first: no answer tells whether an id exists."""
        if self.ehr_mode:
            self.require_session()
        unknown = NotFound(f"no capture {capture_id!r}")
        record = self.runtime.service.get(capture_id)
        if record is None:
            raise unknown
        try:
            self.context(record.context_id, action)
        except (PatientMismatch, UnknownContext):
            raise unknown from None
        return record

    @raises(NotSignedIn, NotFound, PatientMismatch, UnknownContext)
    def correctable(self, capture_id: str, action: str) -> CaptureRecord:
        """A photo this user may take back (issue 18): one of a context their session opened,
        or any photo for an ``imaging-admin``; to re-file, also a photo this same user
        rejected (they open the right patient from the EHR, which starts a new session).
        Another session's photo is refused with 403 and audited
        (``EhrContexts.check_context``); an unknown id is 404."""
        signed_in = self.require_session() if self.ehr_mode else None
        record = self.runtime.service.get(capture_id)
        if record is None:
            raise NotFound(f"no capture {capture_id!r}")
        if signed_in is None or Role.IMAGING_ADMIN in self.roles:
            return record
        if action == "refile" and signed_in.fhir_user:
            rejection = rejections.get(self.runtime.engine, record.id)
            if rejection is not None and rejection.actor == signed_in.fhir_user:
                return record
        context = self.runtime.service.context(record.context_id)
        self.contexts.check_context(signed_in, context, action=action)
        return record

    @raises(*CONTEXT_ERRORS)
    def photos(self, context_id: str, action: str, archive: Archive) -> Timeline:
        """The context's patient's archived photos, as this user may be shown them."""
        record = self.context(context_id, action)
        return Timeline(archive, self.runtime.engine, patient_of(record), self.visibility)

    @raises(PatientMismatch)
    def check_can_create_context(self) -> None:
        if self.ehr_mode:
            raise PatientMismatch(CONTEXTS_FROM_EHR)


AccessDep = Annotated[Access, Depends(Access)]
