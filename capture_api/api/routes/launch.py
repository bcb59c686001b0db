"""SMART App Launch 2.2 endpoints: EHR launch, standalone launch, callback, logout, session.

* ``GET /launch?iss=&launch=`` -- the EHR launch URL (app-launch.html "Launch App: EHR
  Launch"); without ``launch`` it is a standalone launch ("Launch App: Standalone Launch",
  ``iss`` optional when exactly one EHR is registered).
* ``GET /launch/callback?code=&state=`` -- the redirect URI ("Obtain authorization code").
* ``POST /logout`` and ``GET /api/v1/session``.

These are browser navigations, so failures are a small HTML page with the reason, not JSON.
The authorization request's secrets (state, PKCE verifier, nonce) are kept in the
``launch_state`` table, never in the browser, and each is single use. The state is bound to
the browser that started the launch (a pre-login cookie, ``capture_api.context.
browser_binding``): a callback URL opened in another browser signs nobody in (login CSRF).
Signing in ends the session the browser held before, and a launch whose user is a patient
(``fhirUser`` a Patient or RelatedPerson) is refused: capture is for clinical staff.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from capture_api.api.security.csrf import signing_key, token_for_session
from capture_api.capture.roles import is_patient_user, roles_of
from capture_api.config import Settings
from capture_api.context import browser_binding
from capture_api.context.sessions import (
    NOT_SIGNED_IN,
    SessionStore,
    request_cookie,
    session_store,
)
from capture_api.context.smart import LaunchError, SmartClient
from capture_api.exceptions import CaptureError
from capture_api.store import sessions as session_rows
from capture_api.store.records import LaunchState, UserSession, utcnow

router = APIRouter(tags=["launch"])

#: How long the clinician may take at the EHR's authorization step (login, patient picker).
LAUNCH_STATE_TTL = dt.timedelta(minutes=10)

#: The hook the integrator sets on ``app.state.on_launch``: build the capture context for a
#: new session (e.g. read Patient/Encounter from FHIR) and return its id.
OnLaunch = Callable[[UserSession], str | None]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


log = logging.getLogger("capture.launch")

ANOTHER_BROWSER = (
    "this sign-in was started in another browser (or this browser did not keep capture's "
    "sign-in cookie), so capture did not sign you in: a sign-in link from someone else would "
    "sign you in as them"
)
NOT_STAFF = (
    "capture is for clinical staff: a patient or a patient's representative cannot sign in "
    "to capture"
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


def error_page(message: str, status_code: int, *, log_reason: str | None = None) -> HTMLResponse:
    """A minimal page for a failed launch; the message is escaped (it may quote the EHR).

    The reason is logged too (``log_reason``, else the message: our own words, no patient
    data), so an administrator sees why a sign-in failed, not only ``/launch/callback 403``.
    """
    log.warning("sign-in refused (HTTP %d): %s", status_code, log_reason or message)
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<title>capture: sign-in failed</title></head><body>"
        "<h1>capture could not open</h1>"
        f"<p role=alert>{html.escape(message)}</p>"
        "<p>Open capture again from the patient's chart in the EHR.</p></body></html>"
    )
    return HTMLResponse(body, status_code=status_code, headers=_NO_STORE)


@router.get("/launch", response_class=HTMLResponse, status_code=302)
def launch(request: Request, iss: str | None = None, launch: str | None = None) -> Response:
    """Start the authorization request and redirect the browser to the EHR.

    app-launch.html: the app SHALL only proceed for an ``iss`` it trusts (checked before any
    network call), discovers the endpoints, and sends ``aud`` = iss with PKCE S256.
    """
    settings = _settings(request)
    try:
        if not iss:
            if launch or len(settings.ehrs) != 1:
                raise LaunchError("open capture from the patient's chart in the EHR (no iss)")
            iss = settings.ehrs[0].iss
        with SmartClient(settings, discovery=request.app.state.runtime.discovery) as smart:
            auth = smart.begin(iss, launch)
    except LaunchError as exc:
        return error_page(str(exc), exc.status_code)
    pending = LaunchState(
        state=auth.state,
        iss=auth.iss,
        code_verifier=auth.code_verifier,
        launch=auth.launch,
        nonce=auth.nonce,
    )
    browser = browser_binding.browser_value(request, settings)
    pending.browser_binding = browser_binding.digest(browser)
    engine = request.app.state.runtime.engine
    session_rows.add_launch_state(engine, pending, purge_before=utcnow() - LAUNCH_STATE_TTL)
    response = RedirectResponse(auth.url, status_code=302, headers=_NO_STORE)
    browser_binding.remember(response, settings, browser)
    return response


@router.get("/launch/callback", response_class=HTMLResponse, status_code=303)
def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    """Finish the launch: check ``state``, exchange the code, start the session.

    app-launch.html: the app SHALL validate ``state`` (here: it must be one we issued, unused,
    younger than ten minutes, and started by this very browser); an ``error`` from the EHR is
    shown as sent. The session this browser held before is ended.
    """
    runtime = request.app.state.runtime
    pending = session_rows.take_launch_state(runtime.engine, state) if state else None
    if error:
        detail = f"the EHR did not authorize capture ({error[:64]}"
        detail += f": {error_description[:200]})" if error_description else ")"
        reason = f"the EHR answered error={error[:64]!r}"  # its description stays off the log
        return error_page(detail, 403 if error == "access_denied" else 400, log_reason=reason)
    if not code or not state:
        return error_page("the EHR's answer is missing its code or state", 400)
    if pending is None:
        return error_page("this sign-in is unknown or was already used", 403)
    if utcnow() - _aware(pending.created_at) > LAUNCH_STATE_TTL:
        return error_page("this sign-in took too long", 403)
    if not browser_binding.same_browser(request, runtime.settings, pending.browser_binding):
        return error_page(ANOTHER_BROWSER, 403, log_reason="launch state of another browser")
    store = SessionStore(runtime.engine, runtime.settings)
    try:
        with SmartClient(runtime.settings, discovery=runtime.discovery) as smart:
            result = smart.exchange_code(
                pending.iss,
                code,
                pending.code_verifier,
                launch=pending.launch,
                nonce=pending.nonce,
            )
        if is_patient_user(result.fhir_user):
            return error_page(NOT_STAFF, 403, log_reason="fhirUser is a patient")
        cookie, row = store.create(pending.iss, result)
    except LaunchError as exc:
        return error_page(str(exc), exc.status_code)
    hook: OnLaunch | None = getattr(request.app.state, "on_launch", None)
    if hook is not None:
        try:
            context_id = hook(row)
        except CaptureError as exc:
            store.delete(cookie)
            status = exc.status_code if isinstance(exc, LaunchError) else 400
            return error_page(str(exc), status)
        if context_id is not None:
            row = store.set_context_id(row, context_id)
    store.delete(request_cookie(request))  # one browser, one session: the old one ends here
    response = RedirectResponse("/", status_code=303, headers=_NO_STORE)
    store.set_cookie(response, cookie)
    return response


@router.post("/logout", status_code=204)
def logout(request: Request) -> Response:
    """End the session here (the EHR's own session is the EHR's business)."""
    store = session_store(request)
    store.delete(request_cookie(request))
    response = Response(status_code=204)
    store.clear_cookie(response)
    return response


@router.get("/api/v1/session")
def get_session(request: Request) -> JSONResponse:
    """Who and what this browser is signed in for; never any access or refresh token.

    ``csrf_token`` is what the page sends as ``X-CSRF-Token`` on every POST/PUT/PATCH/DELETE
    (capture_api.api.security.csrf); only a same-origin page can read this answer.
    """
    row = session_store(request).get(request_cookie(request))
    if row is None:
        return JSONResponse({"detail": NOT_SIGNED_IN}, status_code=401)
    csrf_token = token_for_session(signing_key(_settings(request)), row.id)
    body = {**session_json(row), "csrf_token": csrf_token}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def session_json(row: UserSession) -> dict[str, Any]:
    return {
        "iss": row.iss,
        "patient_fhir_id": row.patient_fhir_id,
        "encounter_fhir_id": row.encounter_fhir_id,
        "fhir_user": row.fhir_user,
        "need_patient_banner": row.need_patient_banner,
        "context_id": row.context_id,
        "roles": sorted(r.value for r in roles_of(row, ehr_mode=True)),
        "expires_at": _aware(row.expires_at).isoformat(),
    }


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
