"""The routers, one module per resource; ``capture_api.api.app`` mounts them.

Every router is thin: it validates its input (pydantic, FastAPI parameters), asks
``capture_api.api.access`` what the request may touch, calls one service and shapes the
answer. Errors are raised as ``capture_api.exceptions`` classes and declared with
``capture_api.api.errors.responses``; none builds an error answer itself.
"""

from capture_api.api.routes import (
    audit,
    body_sites,
    captures,
    consent,
    contexts,
    health,
    launch,
    lesions,
    measurements,
    priors,
    queue,
    refiling,
    rejections,
    reports,
    scan,
    timeline,
    unblur,
    worklist,
)

__all__ = [
    "audit",
    "body_sites",
    "captures",
    "consent",
    "contexts",
    "health",
    "launch",
    "lesions",
    "measurements",
    "priors",
    "queue",
    "refiling",
    "rejections",
    "reports",
    "scan",
    "timeline",
    "unblur",
    "worklist",
]
