"""GET a JSON document (discovery, JWKS) and turn every way it can fail into our errors.

The one place where httpx errors become ``OAuthUnavailable`` for documents; token requests
have theirs in ``token_endpoint``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from capture_api.oauth.errors import OAuthProtocolError, OAuthUnavailable

#: Answers that say "later", not "never" (RFC 9110 15.5.9 408, RFC 6585 429, 5xx).
TRANSIENT_STATUSES = frozenset({408, 429})


def is_transient(status: int) -> bool:
    return status >= 500 or status in TRANSIENT_STATUSES


def host(url: str) -> str:
    """The host:port of a URL, for messages (never its path or query, which may hold values)."""
    return urlsplit(url).netloc or url


def get_json(http: httpx.Client, url: str, what: str) -> dict[str, Any]:
    """GET ``url`` as a JSON object; ``what`` names it in messages ("the EHR's JWKS")."""
    try:
        response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OAuthUnavailable(
            f"could not reach {what} at {host(url)} ({type(exc).__name__})"
        ) from exc
    if response.status_code != 200:
        error = OAuthUnavailable if is_transient(response.status_code) else OAuthProtocolError
        raise error(f"{what} is not available (HTTP {response.status_code})")
    return json_object(response, what)


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The body as a JSON object; an HTML login page or a proxy's error page is refused."""
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        raise OAuthProtocolError(f"{what} is not JSON ({content_type or 'no content type'})")
    try:
        document = response.json()
    except ValueError as exc:
        raise OAuthProtocolError(f"{what} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise OAuthProtocolError(f"{what} is not a JSON object")
    return document
