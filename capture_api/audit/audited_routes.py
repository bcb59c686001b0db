"""Which requests are audited, under which action name, and their route template.

Audited: every request under ``/api/v1`` and the sign-in routes (``/launch``,
``/launch/callback``, ``/logout``), whatever its outcome (a 401, 403, 404 or 429 is as
interesting to an auditor as a 200). Not audited, because nothing in them concerns a patient:

* ``/api/v1/body-sites`` (the SNOMED CT body-site lookup: terminology, the same for everyone,
  called on every keystroke of the site search);
* ``/healthz``, ``/readyz``, ``/metrics``, ``/docs``, ``/openapi.json``, the phone client's
  page and static files (``/``, ``/app/...``);
* ``OPTIONS`` (CORS preflight: no data is read or written).

The route template (``/api/v1/contexts/{context_id}``) is recorded, never the raw URL: URLs
carry ids, and query strings may carry an MRN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

API_PREFIX = "/api/v1/"
NOT_AUDITED = ("/api/v1/body-sites",)
SIGN_IN = ("/launch", "/logout")

#: Route template prefix -> action (first match wins; docs/audit.md lists them).
ROUTE_ACTIONS: tuple[tuple[str, str], ...] = (
    ("/launch", "login"),
    ("/logout", "logout"),
    ("/api/v1/session", "session"),
    ("/api/v1/audit", "audit-export"),
    ("/api/v1/contexts/{context_id}/priors", "priors"),
    ("/api/v1/contexts/{context_id}/timeline", "timeline"),
    ("/api/v1/contexts/{context_id}/consent", "consent"),
    ("/api/v1/contexts", "context"),
    ("/api/v1/captures", "capture"),
    ("/api/v1/scan", "scan"),
    ("/api/v1/worklist", "worklist"),
    ("/api/v1/reports", "report"),
    ("/api/v1/queue/handoffs", "queue-handoff"),
    ("/api/v1/queue/reports", "queue-purge"),
    ("/api/v1/queue", "queue-key"),
)

#: Recorded when no route matched (a probe of an unknown URL): never the raw path.
UNMATCHED = "(no route)"


def is_audited(path: str, method: str) -> bool:
    """Whether a request is recorded in the trail (see the module docstring for why not)."""
    if method.upper() == "OPTIONS":
        return False
    if path.startswith(API_PREFIX):
        return not any(path == p or path.startswith(p + "/") for p in NOT_AUDITED)
    return any(path == p or path.startswith(p + "/") for p in SIGN_IN)


#: Route template suffix -> action, checked first (break-the-glass is a POST that reads).
SUFFIX_ACTIONS: tuple[tuple[str, str], ...] = (
    ("/unblur", "unblur"),
    ("/rejection", "reject"),
    ("/rejection/refile", "refile"),
    ("/measurements", "wound-measurement"),
    ("/snap", "wound-photo"),
    ("/calibration", "wound-photo"),
    ("/captures/{capture_id}/image", "wound-photo"),
)


def action_for(template: str) -> str:
    """The action name of a route template (``api`` for any other /api/v1 route)."""
    for suffix, action in SUFFIX_ACTIONS:
        if template.endswith(suffix):
            return action
    for prefix, action in ROUTE_ACTIONS:
        if template == prefix or template.startswith((prefix + "/", prefix + "?")):
            return action
    return "api"


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route's template with its mount prefix (``/api/v1/contexts/{context_id}``).

    FastAPI keeps an included router's prefix out of ``route.path_format``, so the prefix is
    recovered from the request path: the path ends with the template filled with its params.
    """
    template = getattr(scope.get("route"), "path_format", None)
    if not isinstance(template, str):
        return None
    params = scope.get("path_params") or {}
    path = str(scope.get("path", ""))
    try:
        filled = template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template
    if filled and path.endswith(filled):
        return path[: len(path) - len(filled)] + template
    return template
