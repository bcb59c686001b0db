"""Rate limits on sign-in, wristband lookups and uploads: in-memory token buckets, 429.

What is limited, per client IP and, when a session cookie is present, per session too (a
session that moves between networks keeps its budget):

* ``/launch`` and ``/launch/callback`` (sign-in): ``CAPTURE_RATE_LIMIT_LOGIN_PER_MINUTE``;
* ``POST /api/v1/scan`` (a patient lookup by identifier, so also an enumeration tool): the
  same per-minute figure, in its own buckets;
* ``POST /api/v1/captures`` (uploads): ``CAPTURE_RATE_LIMIT_UPLOADS_PER_MINUTE``, sized for a
  nurse sending a burst of 10-20 photos, many times over.

Each bucket holds one minute's allowance (the burst) and refills continuously; 0 turns a limit
off. The buckets live in this process: with several replicas each limits on its own, so the
reverse proxy should limit as well (docs/security.md has the nginx ``limit_req`` lines). The
client IP is the TCP peer, or the ``X-Forwarded-For`` client when the peer is one of
``CAPTURE_TRUSTED_PROXIES`` (uvicorn's ProxyHeadersMiddleware, ``stack.trust_proxies``).

Hand-written because the well-kept libraries (``limits``, ``slowapi``) offer fixed and moving
windows but no token bucket, and a bucket is the shape that lets a burst through then paces.
It runs on the event loop without awaiting between check and update, so needs no lock.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from capture_api.api.routes.launch import error_page
from capture_api.config import Settings
from capture_api.context.cookies import session_cookie
from capture_api.context.sessions import session_id

#: Buckets kept per family before idle ones are dropped (bounds memory under a flood).
MAX_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A token bucket per key: ``per_minute`` capacity, refilled at ``per_minute / 60`` a second."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket  # most recently used last
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)  # the longest idle: nearest to full anyway
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


@dataclass(frozen=True)
class _Rule:
    """Which requests a family of buckets counts, and what a refused client is told."""

    name: str
    matches: Callable[[str, str], bool]  # (method, path)
    message: str  # {wait}: whole seconds
    html: bool  # a browser navigation (sign-in) gets a page, an API call JSON


_RULES = (
    _Rule(
        "login",
        lambda _, path: path == "/launch" or path.startswith("/launch/"),
        "too many sign-in attempts from this device: wait {wait} s, "
        "then open capture again from the patient's chart",
        html=True,
    ),
    _Rule(
        "scan",
        lambda method, path: method == "POST" and path == "/api/v1/scan",
        "too many wristband scans from this device: wait {wait} s and scan again",
        html=False,
    ),
    _Rule(
        "upload",
        lambda method, path: method == "POST" and path == "/api/v1/captures",
        "too many photos sent from this device in a minute: wait {wait} s and send again",
        html=False,
    ),
)


def _per_minute(rule: _Rule, settings: Settings) -> int:
    if rule.name == "upload":
        return settings.rate_limit_uploads_per_minute
    return settings.rate_limit_login_per_minute


class RateLimit:
    """Pure ASGI middleware applying ``_RULES``; limits set to 0 are left out entirely."""

    def __init__(
        self, app: ASGIApp, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.limits = [
            (rule, TokenBuckets(_per_minute(rule, settings), clock=clock))
            for rule in _RULES
            if _per_minute(rule, settings) > 0
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for rule, buckets in self.limits:
                if rule.matches(scope["method"], scope["path"]):
                    wait = _spend(buckets, _keys(scope))
                    if wait > 0:
                        await _too_many(rule, wait)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


def _keys(scope: Scope) -> list[str]:
    """The client IP, and the session (by its row id, never the cookie itself) if any."""
    client = scope.get("client")
    keys = [f"ip:{client[0] if client else 'unknown'}"]
    cookie = session_cookie(Headers(scope=scope).get("cookie"))
    if cookie:
        keys.append(f"session:{session_id(cookie)}")
    return keys


def _spend(buckets: TokenBuckets, keys: list[str]) -> float:
    for key in keys:
        wait = buckets.take(key)
        if wait > 0:
            return wait
    return 0.0


def _too_many(rule: _Rule, wait: float) -> Response:
    seconds = max(1, math.ceil(wait))
    message = rule.message.format(wait=seconds)
    response: Response = (
        error_page(message, 429) if rule.html else JSONResponse({"detail": message}, 429)
    )
    response.headers["Retry-After"] = str(seconds)
    return response
