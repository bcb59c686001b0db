"""Put the security middleware on the app, in the one order that works.

Starlette runs the middleware added last first, so they are added innermost first. From the
outside in:

0. ``trust_proxies``: uvicorn's ``ProxyHeadersMiddleware`` (only with
   ``CAPTURE_TRUSTED_PROXIES``), added after every other middleware of the app so that all of
   them (audit trail, request log, rate limits) see the real client address; ``capture-api
   run`` turns uvicorn's own copy off so nothing else is trusted;
1. ``SecurityHeaders``: so even a 403/413/429 from the layers below carries them;
2. Starlette's ``CORSMiddleware`` (only with ``CAPTURE_CORS_ORIGINS``), never with credentials;
3. ``RateLimit``: counts every attempt, even ones refused below;
4. ``CsrfGuard``: refuses a forged request before its body is read;
5. ``SmallBodyLimit``: 413 for large non-upload bodies (the photo limit sits inside it).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from capture_api.api.security.body_limits import SmallBodyLimit
from capture_api.api.security.csrf import CsrfGuard, warn_if_key_is_ephemeral
from capture_api.api.security.headers import SecurityHeaders
from capture_api.api.security.rate_limit import RateLimit
from capture_api.config import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Add the security layers around everything added to ``app`` before."""
    app.add_middleware(SmallBodyLimit, settings=settings)
    app.add_middleware(CsrfGuard, settings=settings)
    app.add_middleware(RateLimit, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,  # integrations authenticate otherwise; cookies stay ours
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders, settings=settings)
    warn_if_key_is_ephemeral(settings)


def trust_proxies(app: FastAPI, settings: Settings) -> None:
    """Believe X-Forwarded-For/-Proto from CAPTURE_TRUSTED_PROXIES only; call it last."""
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
