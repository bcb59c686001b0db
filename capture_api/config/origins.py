"""Parse and check the origins and proxy addresses that appear in the security settings.

These values end up verbatim in response headers (CSP ``frame-ancestors``,
``Access-Control-Allow-Origin``), so anything that is not a plain origin is refused when the
settings are read: a stray ``;`` or space would otherwise inject a CSP directive.
"""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

_HOST = r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\]"
_ORIGIN = re.compile(rf"^https?://({_HOST})(:[0-9]{{1,5}})?$")
#: CSP host-source also allows a leading ``*.`` for every subdomain (CSP3 "host-source").
_SOURCE = re.compile(rf"^https?://(\*\.)?({_HOST})(:[0-9]{{1,5}})?$")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL (RFC 6454 serialisation, default ports dropped)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{scheme}://{host}{port}"


def check_origin(value: str, *, setting: str, wildcard: bool = False) -> str:
    """The origin without a trailing slash, or ValueError naming the setting and the fix."""
    value = value.strip().rstrip("/")
    if value == "*":
        raise ValueError(f"{setting} must list origins; '*' would let any web site in")
    pattern = _SOURCE if wildcard else _ORIGIN
    if not pattern.match(value):
        raise ValueError(
            f"{setting}: {value!r} is not an origin like https://ehr.hospital.example[:port]"
        )
    return value.lower()


def check_proxy(value: str) -> str:
    """An IP address or network (CIDR) of a trusted reverse proxy."""
    value = value.strip()
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"CAPTURE_TRUSTED_PROXIES: {value!r} is not an IP address or network "
            "(e.g. 10.0.0.5 or 10.0.0.0/24); '*' is refused: any client could forge its address"
        ) from None
    return value


def split_list(value: object) -> object:
    """Accept a comma-separated string as well as a JSON list in the environment."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item for item in (part.strip() for part in text.split(",")) if item]
    return value
