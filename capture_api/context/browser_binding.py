"""Bind a SMART launch to the browser that started it (login CSRF, issue 14 finding 1).

Without this, ``state`` lives only on the server: an attacker can start a launch as
themselves, stop at the callback URL, and send that link to a victim, whose browser then
finishes the attacker's sign-in (the victim's photos go to the attacker's patient). So
``/launch`` gives the browser a random pre-login cookie (``capture_api.context.cookies``:
``__Host-capture_launch`` under https, ten minutes) and stores its SHA-256 with the launch
state; ``/launch/callback`` signs in only a browser that presents that cookie.

A browser keeps one pre-login value while it is fresh and reuses it for every launch it
starts, so two tabs launching at once both finish; the value is no credential (it signs
nobody in by itself), and under https no sibling host can plant it (``__Host-``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from fastapi import Request, Response

from capture_api.config import Settings
from capture_api.context import cookies

#: As long as a launch state lives (``api.routes.launch.LAUNCH_STATE_TTL``).
MAX_AGE_SECONDS = 600
_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)


def browser_value(request: Request, settings: Settings) -> str:
    """This browser's pre-login value: the one it holds if well-formed, else a new one."""
    name = cookies.launch_cookie_name(settings)
    held = cookies.cookie_value(request.headers.get("cookie"), name)
    return held if held is not None and _VALUE.match(held) else secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """What the launch state stores: the SHA-256, so a database reader cannot replay it."""
    return hashlib.sha256(f"capture-launch-v1:{value}".encode()).hexdigest()


def remember(response: Response, settings: Settings, value: str) -> None:
    """Set (or refresh) the pre-login cookie on the redirect to the EHR."""
    name = cookies.launch_cookie_name(settings)
    cookies.set_cookie(response, settings, name, value, max_age=MAX_AGE_SECONDS)


def same_browser(request: Request, settings: Settings, stored: str | None) -> bool:
    """Whether this request comes from the browser the launch was started in."""
    held = cookies.cookie_value(request.headers.get("cookie"), cookies.launch_cookie_name(settings))
    if stored is None or held is None:
        return False
    return hmac.compare_digest(digest(held), stored)
