"""HTTP hardening: security headers and CSP, CSRF, CORS, rate limits and body-size limits.

Everything here is pure ASGI middleware (no ``BaseHTTPMiddleware``), so a streamed photo
upload is never buffered by a security layer; ``stack.install`` puts them in order.
docs/security.md describes the threat model these answer.

This ``__init__`` imports nothing, so ``capture_api.config`` can use ``origins`` without an
import cycle.
"""
