"""One settings object, read from the environment (``CAPTURE_*``), with working defaults.

The service must come up on a bare machine with no EHR and no archive configured, so every
setting has an embedded default; README.md lists them all.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_UID_ROOT = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))*$")


class Settings(BaseSettings):
    """Service configuration. Field names map to ``CAPTURE_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CAPTURE_", extra="ignore")

    uid_root: str | None = Field(
        default=None,
        description="Your organisation's DICOM UID root; unset uses UUID-derived 2.25 UIDs.",
    )
    data_dir: Path = Field(default=Path("./var"), description="Spool and local archive folder.")
    max_upload_bytes: int = Field(default=80 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=210_000_000, gt=0, description="Decompression-bomb guard.")
    institution_name: str | None = Field(default=None, max_length=64)
    station_name: str | None = Field(default=None, max_length=16)
    host: str = "127.0.0.1"
    port: int = 8000

    @field_validator("uid_root")
    @classmethod
    def _check_root(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.rstrip(".")
        if not _UID_ROOT.match(value) or len(value) > 40:
            raise ValueError("uid_root must be a dotted numeric OID of at most 40 characters")
        return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` instead)."""
    return Settings()
