"""capture's two browser cookies, and the one way a request's cookies are read.

* ``capture_session``: the signed-in session (``capture_api.context.sessions``), HttpOnly,
  Secure per ``CAPTURE_COOKIE_SECURE``, SameSite per ``CAPTURE_COOKIE_SAMESITE``;
* ``capture_launch`` (``__Host-capture_launch`` when Secure): the pre-login cookie that binds a
  SMART launch to the browser that started it (``capture_api.context.browser_binding``),
  for ten minutes.

With ``SameSite=None`` (an EHR that frames capture from another site) both are also
``Partitioned`` (CHIPS): browsers that block third-party cookies keep a partitioned one for
the frame, in a jar of the EHR's site. The header is written here because Starlette's
``set_cookie`` writes ``Partitioned`` only on Python 3.14+.

**One reader**: every part of capture that needs the session cookie (the routes' access
checks, the CSRF guard, the audit middleware) reads it with ``session_cookie``, Starlette's
cookie parser, which is what ``request.cookies`` is. Two parsers that disagree on a hostile
header (``Cookie: a=b c; capture_session=...``) would let a request read a patient's data
while its audit row names nobody (issue 14, finding 2).
"""

from __future__ import annotations

from starlette.requests import cookie_parser
from starlette.responses import Response

from capture_api.config import Settings

SESSION_COOKIE = "capture_session"
LAUNCH_COOKIE = "capture_launch"
#: RFC 6265bis 4.1.3.2: a ``__Host-`` cookie is Secure, has Path=/ and no Domain, so neither a
#: plain-http page nor a sibling host name (``evil.hospital.example``) can set it.
HOST_PREFIX = "__Host-"


def launch_cookie_name(settings: Settings) -> str:
    """``__Host-capture_launch`` when cookies are Secure (https), else ``capture_launch``."""
    return f"{HOST_PREFIX}{LAUNCH_COOKIE}" if settings.cookie_secure else LAUNCH_COOKIE


def cookie_value(cookie_header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, as ``request.cookies`` reads it."""
    value = cookie_parser(cookie_header or "").get(name)
    return value or None


def session_cookie(cookie_header: str | None) -> str | None:
    """The session cookie of a request's ``Cookie`` header (the one reader, see above)."""
    return cookie_value(cookie_header, SESSION_COOKIE)


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, *, max_age: int
) -> None:
    """Add one ``Set-Cookie``: HttpOnly, Path=/, Secure and SameSite per settings,
    Partitioned with SameSite=None."""
    response.headers.append("set-cookie", _header(settings, name, value, max_age))


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    """Tell the browser to drop the cookie (same attributes, or a partitioned one stays)."""
    response.headers.append("set-cookie", _header(settings, name, '""', 0, expire=True))


def _header(settings: Settings, name: str, value: str, max_age: int, expire: bool = False) -> str:
    """The attributes as Starlette's ``set_cookie`` writes them, plus ``Partitioned``."""
    parts = [f"{name}={value}"]
    if expire:
        parts.append("expires=Thu, 01 Jan 1970 00:00:00 GMT")
    parts += [f"Max-Age={max_age}", "Path=/"]
    if settings.cookie_secure:
        parts.append("Secure")
    parts += ["HttpOnly", f"SameSite={settings.cookie_samesite}"]
    if settings.cookie_samesite == "none":
        parts.append("Partitioned")
    return "; ".join(parts)
