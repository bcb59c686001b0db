"""The sandbox's issued access tokens, shared by its authorization and resource servers."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field


@dataclass
class TokenInfo:
    """What an access token grants (SMART: scopes plus launch context)."""

    client_id: str
    scope: str
    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    expires_at: float = field(default_factory=lambda: time.time() + 3600)

    @property
    def scopes(self) -> set[str]:
        return set(self.scope.split())


class TokenRegistry:
    """In-memory, thread-safe; tokens are opaque random strings."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.Lock()

    def issue(self, info: TokenInfo) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = info
        return token

    def lookup(self, token: str) -> TokenInfo | None:
        with self._lock:
            info = self._tokens.get(token)
        if info is None or info.expires_at < time.time():
            return None
        return info

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens.clear()
