"""SMART discovery: ``{issuer}/.well-known/smart-configuration``, fetched once per issuer.

SMART App Launch STU 2.2 conformance.html: a FHIR server publishes one JSON document with its
``authorization_endpoint`` (EHR and standalone launch), ``token_endpoint`` (every grant,
including SMART Backend Services' client_credentials, backend-services.html),
``code_challenge_methods_supported`` and ``jwks_uri``/``issuer`` (id_token checks). The
document is the same for the clinician's launch and for notifications, so one ``Discovery``
serves both and keeps each issuer's document for ``ttl`` seconds.

Hand-written on purpose: authlib's RFC 8414 helpers put ``.well-known`` between host and path
(``get_well_known_url``) where SMART appends it to the FHIR base, and its
``AuthorizationServerMetadata.validate`` insists on https and RFC 8414 fields that a SMART
document need not carry (``response_types_supported``), so neither fits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from capture_api.oauth._http import get_json
from capture_api.oauth.errors import OAuthProtocolError

WELL_KNOWN = ".well-known/smart-configuration"
#: How long a fetched document is trusted; short enough that an EHR's move is noticed soon.
DEFAULT_TTL_SECONDS = 600.0


@dataclass(frozen=True)
class SmartConfiguration:
    """The parts of ``.well-known/smart-configuration`` we use (SMART 2.2 conformance.html)."""

    issuer: str | None
    authorization_endpoint: str | None
    token_endpoint: str
    jwks_uri: str | None
    capabilities: frozenset[str]
    code_challenge_methods_supported: frozenset[str]
    token_endpoint_auth_methods_supported: frozenset[str]
    scopes_supported: frozenset[str]

    @classmethod
    def parse(cls, document: Mapping[str, Any], server: str = "the EHR") -> SmartConfiguration:
        """Validate a discovery document; refuse a server that cannot do SMART 2 PKCE.

        ``token_endpoint`` is needed by every grant. A server with an
        ``authorization_endpoint`` must list ``S256`` in ``code_challenge_methods_supported``
        (conformance.html: REQUIRED, SHALL include S256; app-launch.html: apps SHALL use
        PKCE S256); a backend-services-only server may have neither.
        """
        token = _string(document.get("token_endpoint"))
        if token is None:
            raise OAuthProtocolError(f"{server}'s SMART configuration has no token_endpoint")
        authorize = _string(document.get("authorization_endpoint"))
        methods = _strings(document.get("code_challenge_methods_supported"))
        if authorize is not None and "S256" not in methods:
            raise OAuthProtocolError(
                f"{server} does not offer PKCE with S256 (SMART App Launch 2 requires it); "
                f"ask {server} team to enable it"
            )
        return cls(
            issuer=_string(document.get("issuer")),
            authorization_endpoint=authorize,
            token_endpoint=token,
            jwks_uri=_string(document.get("jwks_uri")),
            capabilities=_strings(document.get("capabilities")),
            code_challenge_methods_supported=methods,
            token_endpoint_auth_methods_supported=_strings(
                document.get("token_endpoint_auth_methods_supported")
            ),
            scopes_supported=_strings(document.get("scopes_supported")),
        )


class Discovery:
    """SMART configurations per issuer, each fetched once and kept for ``ttl`` seconds.

    Thread-safe. Only documents that parsed are kept: a failure is retried on the next call.
    The HTTP client is passed per call, so callers with different timeouts share the cache.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        server: str = "the EHR",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.server = server
        self._clock = clock
        self._documents: dict[str, tuple[float, SmartConfiguration]] = {}
        self._lock = threading.Lock()

    def get(self, issuer: str, http: httpx.Client) -> SmartConfiguration:
        """The issuer's configuration; GET ``{issuer}/.well-known/smart-configuration`` when
        unknown or older than ``ttl`` (conformance.html: JSON whatever the Accept header)."""
        key = issuer.rstrip("/")
        with self._lock:
            known = self._documents.get(key)
        if known is not None and known[0] > self._clock():
            return known[1]
        document = get_json(http, f"{key}/{WELL_KNOWN}", f"{self.server}'s SMART configuration")
        config = SmartConfiguration.parse(document, self.server)
        with self._lock:
            self._documents[key] = (self._clock() + self.ttl, config)
        return config


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str))
