"""The HTTP face: FastAPI routers (thin), access rules, error mapping, middleware.

``create_app`` (``app``) builds the application; ``routes`` are the routers, each of which
validates its input, calls one service and shapes the answer; ``access`` decides what a
request may touch; ``errors`` is the one map from the exception tree to HTTP statuses;
``security`` the hardening middleware; ``audit_middleware`` records every PHI request;
``readiness`` the /readyz checks.
"""

from capture_api.api.app import create_app

__all__ = [
    "create_app",
]
