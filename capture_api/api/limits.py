"""Refuse oversized uploads with 413 before they are read (pure ASGI middleware).

FastAPI parses a multipart body before any dependency runs, so a size check inside a route
comes too late: a 2 GB upload would be spooled first. This checks Content-Length up front
and counts the bytes of chunked bodies as they arrive.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Answer 413 for request bodies larger than ``max_bytes`` on POST/PUT."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received, too_large, refused, read_all = 0, False, False, False

        async def counting_receive() -> Message:
            nonlocal received, too_large, read_all
            message = await receive()
            received += len(message.get("body", b""))
            read_all = read_all or not message.get("more_body", False)
            if received > self.max_bytes:
                too_large = True
                raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # FastAPI turns any error while reading the body into its own 400: once the
            # limit is crossed, whatever the app answers is replaced by our 413.
            nonlocal refused
            if not too_large:
                if message["type"] == "http.response.start" and received and not read_all:
                    # Answered before the body was read (the streamed photo was refused): close,
                    # or the client sends the rest of a huge body before it reads the answer.
                    headers = list(message.get("headers") or [])
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(send)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            if not refused:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        limit = self.max_bytes / 1e6
        body = json.dumps({"detail": f"the upload is larger than the {limit:.3g} MB limit"})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
