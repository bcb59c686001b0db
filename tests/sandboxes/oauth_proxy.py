"""An OAuth2-protected DICOMweb archive for tests: a token endpoint in front of Orthanc.

Orthanc only knows HTTP Basic, but hospital archives increasingly want OAuth2 access tokens
(client-credentials grant, RFC 6749 section 4.4) or static Bearer tokens (RFC 6750). This
FastAPI app, run by uvicorn in a thread on a free port, plays that archive:

- ``POST /token``: the client-credentials grant; the client authenticates with HTTP Basic
  (RFC 6749 2.3.1) or ``client_id``/``client_secret`` form fields, and gets
  ``{"access_token", "token_type": "Bearer", "expires_in"}`` or 401 ``invalid_client``;
- ``/dicom-web/*``: forwarded to the upstream Orthanc only with a valid ``Authorization:
  Bearer`` token (an issued one, or one of ``static_tokens``), 401 otherwise.

``revoke_all()`` forgets issued tokens (as an archive restart would), ``issued`` counts grants.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from typing import Annotated
from urllib.parse import unquote

from fastapi import FastAPI, Form, Header, Request, Response
from fastapi.responses import JSONResponse

from tests.sandboxes.threaded import ThreadedSandbox

_FORWARDED_REQUEST_HEADERS = ("content-type", "accept")
_FORWARDED_RESPONSE_HEADERS = ("content-type", "warning", "location", "content-location")


class OAuthProxy(ThreadedSandbox):
    """A token endpoint plus a Bearer-checking reverse proxy to ``upstream`` (Orthanc's root)."""

    label = "OAuth proxy"

    def __init__(
        self,
        upstream: str,
        *,
        client_id: str = "capture",
        client_secret: str = "capture-secret",
        expires_in: int = 3600,
        static_tokens: frozenset[str] = frozenset(),
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.static_tokens = static_tokens
        self.issued = 0
        self.rejected = 0  # archive requests refused with 401
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._lock = threading.Lock()
        self._serve()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()

    # --- the app -------------------------------------------------------------------------------

    def _app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/token")
        def token(
            grant_type: Annotated[str, Form()],
            scope: Annotated[str | None, Form()] = None,
            client_id: Annotated[str | None, Form()] = None,
            client_secret: Annotated[str | None, Form()] = None,
            authorization: Annotated[str | None, Header()] = None,
        ) -> Response:
            if grant_type != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            if authorization and authorization.lower().startswith("basic "):
                decoded = base64.b64decode(authorization[6:]).decode()
                client_id, _, client_secret = decoded.partition(":")
                client_id, client_secret = unquote(client_id), unquote(client_secret)
            if client_id != self.client_id or client_secret != self.client_secret:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            access_token = secrets.token_urlsafe(24)
            with self._lock:
                self._tokens[access_token] = time.monotonic() + self.expires_in
                self.issued += 1
            body = {"access_token": access_token, "token_type": "Bearer"}
            return JSONResponse({**body, "expires_in": self.expires_in, "scope": scope or ""})

        @app.api_route("/dicom-web/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
        async def dicomweb(path: str, request: Request) -> Response:
            if not self._valid(request.headers.get("authorization", "")):
                self.rejected += 1
                return JSONResponse(
                    {"error": "invalid_token"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            upstream = await asyncio.to_thread(
                self._http.request,
                request.method,
                f"{self.upstream}/dicom-web/{path}",
                params=list(request.query_params.multi_items()),
                content=await request.body(),
                headers={
                    k: v for k, v in request.headers.items() if k in _FORWARDED_REQUEST_HEADERS
                },
            )
            headers = {
                k: v for k, v in upstream.headers.items() if k in _FORWARDED_RESPONSE_HEADERS
            }
            return Response(upstream.content, status_code=upstream.status_code, headers=headers)

        return app

    def _valid(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        if token in self.static_tokens:
            return True
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.monotonic()
