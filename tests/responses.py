"""One name for an HTTP response in the tests: Starlette's TestClient answers with ``httpx2``'s
(Starlette 1.2+ prefers Pydantic's maintained fork of httpx), a real client with ``httpx``'s.
The two have the same API; helpers that take either say ``Response``."""

from __future__ import annotations

import httpx
import httpx2

Response = httpx.Response | httpx2.Response
