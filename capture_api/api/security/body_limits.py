"""A small body limit (``CAPTURE_MAX_JSON_BYTES``, 64 KB) on every route except the upload.

``capture_api.api.limits.BodySizeLimit`` already refuses anything over the photo limit
(80 MB) before reading it; that is far too generous for a JSON body of a few hundred bytes,
which the server parses into memory in one piece. This applies the same 413-before-reading
guard with the small figure to everything but ``POST /api/v1/captures``.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from capture_api.api.limits import BodySizeLimit
from capture_api.config import Settings

#: (method, path) of the routes that take a photo; they keep the large limit only.
UPLOAD_ROUTES = frozenset({("POST", "/api/v1/captures")})


class SmallBodyLimit:
    """Pure ASGI middleware: 413 for non-upload bodies over ``settings.max_json_bytes``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limited = _SmallBodySizeLimit(app, settings.max_json_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) not in UPLOAD_ROUTES:
            await self.limited(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _SmallBodySizeLimit(BodySizeLimit):
    """BodySizeLimit with a message about request bodies (not uploads) in kilobytes."""

    async def _refuse(self, send: Send) -> None:
        kilobytes = self.max_bytes / 1024
        detail = f"the request body is larger than the {kilobytes:.3g} KB this route accepts"
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})
