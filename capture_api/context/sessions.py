"""Server-side sessions after a SMART launch (backend-for-frontend).

SMART App Launch 2.2 (app-launch.html, "Considerations for ... apps") expects an app that can
keep a secret to keep tokens off the browser. capture does: the browser holds one random
``capture_session`` cookie (HttpOnly, Secure, SameSite), the database holds its SHA-256 and
the tokens. Access tokens are refreshed here, transparently, with the refresh token
(app-launch.html "Refresh access token"); when that is impossible the clinician is told to
re-open capture from the chart, which starts a fresh EHR launch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response

from capture_api.config import Settings
from capture_api.context import cookies
from capture_api.context.launch_roles import session_roles
from capture_api.context.smart import LaunchError, SessionExpired, SmartClient, TokenResult
from capture_api.oauth import Discovery
from capture_api.store import sessions as session_rows
from capture_api.store.db import Database
from capture_api.store.records import UserSession, utcnow

COOKIE_NAME = cookies.SESSION_COOKIE
#: Refresh this long before the access token's expiry so a FHIR call never races it.
REFRESH_MARGIN = dt.timedelta(seconds=30)
#: How stale last_seen_at may get: the idle timeout is minutes, a write per request is waste.
TOUCH_EVERY = dt.timedelta(seconds=30)
NOT_SIGNED_IN = "not signed in: open capture from the patient's chart in the EHR"

#: One lock per session id (in this process) so concurrent requests refresh once, not N times;
#: servers that rotate refresh tokens would otherwise revoke the loser's.
_refresh_locks: dict[str, threading.Lock] = {}
_refresh_locks_guard = threading.Lock()


def session_id(cookie: str) -> str:
    """The row id of a cookie value: its SHA-256, so a database reader cannot replay it."""
    return hashlib.sha256(cookie.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class SessionStore:
    """Create, find, refresh and end clinician sessions."""

    def __init__(
        self,
        engine: Database,
        settings: Settings,
        *,
        smart: Callable[[], SmartClient] | None = None,
        discovery: Discovery | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self._smart = smart or (lambda: SmartClient(settings, discovery=discovery))
        self._now = now

    # --- lifecycle -------------------------------------------------------------------------

    def create(self, iss: str, token: TokenResult) -> tuple[str, UserSession]:
        """Store a new session for a completed launch; returns (cookie value, row)."""
        cookie = secrets.token_urlsafe(32)
        now = self._now()
        row = UserSession(
            id=session_id(cookie),
            iss=iss,
            access_token=token.access_token,
            refresh_token=token.refresh_token,
            token_expires_at=token.expires_at,
            scope=token.scope,
            fhir_user=token.fhir_user,
            patient_fhir_id=token.patient,
            encounter_fhir_id=token.encounter,
            need_patient_banner=token.need_patient_banner,
            roles=session_roles(self.settings, iss, token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(seconds=self.settings.session_ttl_seconds),
        )
        session_rows.add(self.engine, row)
        return cookie, row

    def get(self, cookie: str | None) -> UserSession | None:
        """The live session for a cookie, or None (unknown, past its TTL, or idle too long).

        Touches ``last_seen_at`` so the idle timeout counts from the last request.
        """
        if not cookie:
            return None
        return session_rows.get_live(
            self.engine,
            session_id(cookie),
            now=self._now(),
            idle=dt.timedelta(seconds=self.settings.session_idle_seconds),
            touch_every=TOUCH_EVERY,
        )

    def set_context_id(self, row: UserSession, context_id: str | None) -> UserSession:
        """Link the session to the capture context created for its patient/encounter."""
        stored = session_rows.set_context(self.engine, row.id, context_id)
        if stored is None:
            raise SessionExpired()
        return stored

    def delete(self, cookie: str | None) -> None:
        if not cookie:
            return
        self._delete_id(session_id(cookie))

    def _delete_id(self, row_id: str) -> None:
        with _refresh_locks_guard:
            _refresh_locks.pop(row_id, None)
        session_rows.end(self.engine, row_id)

    # --- tokens ----------------------------------------------------------------------------

    def access_token(self, row: UserSession) -> str:
        """A usable access token for calls to the session's EHR, refreshing when needed.

        Refreshes when the token has expired or expires within 30 s. If the EHR refuses the
        refresh (or there is no refresh token) the session is ended and ``SessionExpired``
        raised; if the EHR is unreachable the session is kept (a retry may work) but the
        caller still gets ``SessionExpired`` since there is no valid token to give.
        """
        if not self._needs_refresh(row):
            return row.access_token
        with _lock_for(row.id):
            current = session_rows.get(self.engine, row.id)
            if current is None:
                raise SessionExpired()
            if not self._needs_refresh(current):  # another request refreshed meanwhile
                _copy_tokens(current, row)
                return current.access_token
            if not current.refresh_token:
                self._delete_id(row.id)
                raise SessionExpired()
            try:
                with self._smart() as smart:
                    result = smart.refresh(current.iss, current.refresh_token, current.scope)
            except LaunchError as exc:
                if exc.status_code < 500:  # refused: the grant is gone for good
                    self._delete_id(row.id)
                raise SessionExpired() from exc
            stored = session_rows.save_tokens(
                self.engine,
                row.id,
                access_token=result.access_token,
                refresh_token=result.refresh_token,
                token_expires_at=result.expires_at,
                scope=result.scope,
            )
            if stored is None:
                raise SessionExpired()
            _copy_tokens(stored, row)
            return stored.access_token

    def _needs_refresh(self, row: UserSession) -> bool:
        if row.token_expires_at is None:
            return False
        return _aware(row.token_expires_at) - REFRESH_MARGIN <= self._now()

    # --- cookie ----------------------------------------------------------------------------

    def set_cookie(self, response: Response, value: str) -> None:
        """HttpOnly (no script can read it), Secure and SameSite per settings, Partitioned
        with SameSite=None (``capture_api.context.cookies``)."""
        cookies.set_cookie(
            response,
            self.settings,
            COOKIE_NAME,
            value,
            max_age=self.settings.session_ttl_seconds,
        )

    def clear_cookie(self, response: Response) -> None:
        cookies.clear_cookie(response, self.settings, COOKIE_NAME)


def _copy_tokens(source: UserSession, target: UserSession) -> None:
    target.access_token = source.access_token
    target.refresh_token = source.refresh_token
    target.token_expires_at = source.token_expires_at
    target.scope = source.scope


def _lock_for(row_id: str) -> threading.Lock:
    with _refresh_locks_guard:
        lock = _refresh_locks.get(row_id)
        if lock is None:
            lock = _refresh_locks[row_id] = threading.Lock()
        return lock


# --- FastAPI dependencies ------------------------------------------------------------------------


def session_store(request: Request) -> SessionStore:
    """A SessionStore over the app's runtime (``request.app.state.runtime``)."""
    runtime = request.app.state.runtime
    return SessionStore(runtime.engine, runtime.settings, discovery=runtime.discovery)


def request_cookie(request: Request) -> str | None:
    """The request's session cookie, read the one way every part of capture reads it."""
    return cookies.session_cookie(request.headers.get("cookie"))


def current_session(request: Request) -> UserSession:
    """The signed-in session for this request, or 401 (for any router that needs one)."""
    row = session_store(request).get(request_cookie(request))
    if row is None:
        raise HTTPException(status_code=401, detail=NOT_SIGNED_IN)
    return row


CurrentSession = Annotated[UserSession, Depends(current_session)]
SessionStoreDep = Annotated[SessionStore, Depends(session_store)]
