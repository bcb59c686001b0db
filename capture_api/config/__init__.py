"""The service's settings (``CAPTURE_*`` environment variables): one ``Settings`` object.

The bottom of the application's layering (``docs/architecture.md``): everything may read the
settings, the settings read nothing of the application but the domain types they are made of.
"""

from capture_api.config.settings import (
    ArchiveAuthKind,
    ClientAuthMethod,
    EhrRegistration,
    Settings,
    absolute,
    get_settings,
)

__all__ = [
    "ArchiveAuthKind",
    "ClientAuthMethod",
    "EhrRegistration",
    "Settings",
    "absolute",
    "get_settings",
]
