"""Security headers on every response, including errors, redirects and static files.

The Content-Security-Policy allows scripts, styles and connections only from capture's own
origin (no ``unsafe-inline``, no ``unsafe-eval``), so an injected ``<script>`` or a script
from elsewhere cannot run in a page that holds a clinician's session. ``frame-ancestors``
lists the registered EHRs' origins (plus ``CAPTURE_FRAME_ANCESTORS``) so the EHR can embed
capture in the chart while no other site can frame it (clickjacking); for that reason there
is deliberately no ``X-Frame-Options`` (``DENY``/``SAMEORIGIN`` would forbid the EHR).
``Cross-Origin-Resource-Policy: same-origin`` does not stop the EHR framing the page (it only
binds iframe navigations when the embedder sets COEP, which an EHR does not): checked in
Chromium by tests/security/test_browser.py.

FastAPI's interactive docs (``/docs``, ``/redoc``) load Swagger UI / ReDoc from a CDN and
start them with an inline script; they get their own looser policy, and are only served where
no clinician session exists (``docs_enabled``).

Every answer of a PHI route (the routes the audit trail records, ``capture_api.audit.
audited_routes``) is ``Cache-Control: no-store``, refusals from the layers below included: a
browser cache on a shared tablet, or a proxy, keeps nothing a patient's banner or photos said
(issue 14, finding 6). One rule here, so a new router cannot forget it.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capture_api.audit.audited_routes import is_audited
from capture_api.config import Settings
from capture_api.config.origins import origin_of

#: The paths FastAPI serves its interactive documentation on.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})

_APP_POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",  # camera previews and thumbnails made in the page
    "media-src 'self' blob:",  # the live camera stream
    "connect-src 'self'",
    "worker-src 'self'",  # the PWA's service worker
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
)

_CDN = "https://cdn.jsdelivr.net"
_DOCS_POLICY = (
    "default-src 'none'",
    f"script-src {_CDN} 'unsafe-inline'",  # Swagger UI's start-up script is inline
    f"style-src {_CDN} https://fonts.googleapis.com 'unsafe-inline'",
    "font-src https://fonts.gstatic.com",
    f"img-src 'self' data: {_CDN} https://fastapi.tiangolo.com",
    "connect-src 'self'",
    "worker-src blob:",  # ReDoc's search worker
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def docs_enabled(settings: Settings) -> bool:
    """Serve /docs and /redoc? Default: only in integration mode (no EHR, no session cookie).

    With EHRs registered the docs page would run CDN scripts on the origin that holds the
    clinicians' session cookie; a compromised CDN could then read patient data. The schema
    itself stays at /openapi.json and in openapi/openapi.json.
    """
    return settings.api_docs if settings.api_docs is not None else not settings.ehrs


def frame_ancestors(settings: Settings) -> list[str]:
    """``'self'``, each registered EHR's origin, then CAPTURE_FRAME_ANCESTORS (no repeats)."""
    sources = ["'self'", *(origin_of(ehr.iss) for ehr in settings.ehrs), *settings.frame_ancestors]
    return list(dict.fromkeys(sources))


def content_security_policy(settings: Settings) -> str:
    directives = [*_APP_POLICY, "frame-ancestors " + " ".join(frame_ancestors(settings))]
    return "; ".join(directives)


def hsts_value(settings: Settings) -> str | None:
    """``max-age=N`` when browsers reach capture over https; never on plain-http development.

    Browsers ignore HSTS received over http anyway (RFC 6797 8.1), and sending it from a
    development host name that is later served over https elsewhere would pin it.
    """
    if not settings.public_url.lower().startswith("https://"):
        return None
    if settings.hsts_max_age_seconds <= 0:
        return None
    return f"max-age={settings.hsts_max_age_seconds}"


def _common(settings: Settings) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",  # URLs carry context ids; never leak them onwards
        "Permissions-Policy": "camera=(self), geolocation=(), microphone=()",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    hsts = hsts_value(settings)
    if hsts is not None:
        headers["Strict-Transport-Security"] = hsts
    return headers


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to ``http.response.start`` of every response.

    A header a route already set (e.g. the launch pages' own Referrer-Policy) is kept.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        common = _common(settings)
        self.app_headers = {**common, "Content-Security-Policy": content_security_policy(settings)}
        self.docs_headers = {**common, "Content-Security-Policy": "; ".join(_DOCS_POLICY)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chosen = self.docs_headers if scope["path"] in DOCS_PATHS else self.app_headers
        phi = is_audited(scope["path"], scope["method"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                _set_defaults(headers, chosen.items())
                if phi and "no-store" not in headers.get("cache-control", ""):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _set_defaults(headers: MutableHeaders, values: Iterable[tuple[str, str]]) -> None:
    for name, value in values:
        headers.setdefault(name, value)
