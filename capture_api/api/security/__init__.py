"""HTTP hardening: security headers and CSP, CSRF, CORS, rate limits and body-size limits.

Everything here is pure ASGI middleware (no ``BaseHTTPMiddleware``), so a streamed photo
upload is never buffered by a security layer; ``stack.install`` puts them in order and
``stack.trust_proxies`` reads the real client address from a trusted proxy.
docs/security.md describes the threat model these answer.

The public face is the modules, imported by name (``from capture_api.api.security import
stack``): this ``__init__`` imports nothing, because the rate limiter answers with the
sign-in error page (``api.routes.launch``), whose route uses ``csrf`` from here.
"""

__all__ = ["body_limits", "csrf", "headers", "rate_limit", "stack"]
