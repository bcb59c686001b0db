"""One settings object, read from the environment (``CAPTURE_*``), with working defaults.

The service must come up on a bare machine with no EHR and no archive configured, so every
setting has an embedded default; README.md lists them all.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from capture_api.capture.consent_policy import ConsentSetting
from capture_api.capture.roles import DEFAULT_ROLE_CLAIM, Role
from capture_api.capture.sensitivity_policy import SensitiveSiteRule
from capture_api.config import origins
from capture_api.config.syslog import SyslogTarget

_UID_ROOT = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))*$")


def absolute(path: Path | None) -> Path | None:
    """A path setting made absolute once, when the settings are read (at start-up).

    Relative values (the default ``./var``) are taken from the directory the service was started
    in; resolving them once means a later ``chdir`` or a ``file://`` URI built from them (the
    embedded archive's) cannot go wrong (issue 12: ``make run`` never delivered a photo).
    """
    return None if path is None else Path(os.path.abspath(path.expanduser()))


class ArchiveAuthKind(StrEnum):
    """How we authenticate to the DICOMweb archive."""

    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"
    OAUTH2 = "oauth2"  # client credentials grant (RFC 6749 4.4)


class ClientAuthMethod(StrEnum):
    """How we authenticate at an EHR's token endpoint (SMART App Launch 2 client types)."""

    NONE = "none"  # public client: PKCE only
    CLIENT_SECRET_BASIC = "client_secret_basic"
    PRIVATE_KEY_JWT = "private_key_jwt"  # asymmetric (RS384/ES384), SMART "confidential-asymmetric"


class EhrRegistration(BaseModel):
    """One EHR (FHIR server) this deployment is registered with; launches from others fail."""

    iss: str = Field(description="The FHIR base URL the EHR sends as iss")
    client_id: str
    auth_method: ClientAuthMethod = ClientAuthMethod.NONE
    client_secret: SecretStr | None = None
    private_key_file: Path | None = Field(default=None, description="PEM key for private_key_jwt")
    private_key_id: str | None = Field(default=None, description="kid of that key in our JWKS")
    # online_access: without it an EHR issues no refresh token, and the session ends with the
    # first access token (often 5 to 60 minutes), however long the nurse's round is.
    scopes: str = "launch openid fhirUser online_access patient/Patient.rs patient/Encounter.rs"
    standalone_scopes: str = (
        "launch/patient openid fhirUser online_access patient/Patient.rs patient/Encounter.rs"
    )
    mrn_system: str | None = Field(
        default=None, description="Patient.identifier.system of the MRN (else type MR is used)"
    )
    issuer_of_patient_id: str | None = Field(
        default=None, description="Issuer of Patient ID for DICOM (default: the MRN system)"
    )
    notify: list[str] = Field(
        default_factory=list,
        description="FHIR resources to create after verified storage: Media, DocumentReference, "
        "Observation (a measured wound's WoundSize panel; add system/Observation.cu to "
        "backend_scopes)",
    )
    backend_scopes: str = Field(
        default="system/Media.cu system/DocumentReference.cu",
        description="Client-credentials scopes for notifications (SMART Backend Services)",
    )
    role_claim: str | None = Field(
        default=DEFAULT_ROLE_CLAIM,
        description="id_token claim listing the user's capture roles (null: CAPTURE_ROLE_MAP only)",
    )

    _absolute_key_file = field_validator("private_key_file")(absolute)


class Settings(BaseSettings):
    """Service configuration. Field names map to ``CAPTURE_<NAME>`` environment variables."""

    # hide_input_in_errors: a bad value must not print a secret (or CAPTURE_EHRS) into the log.
    model_config = SettingsConfigDict(
        env_prefix="CAPTURE_", extra="ignore", hide_input_in_errors=True
    )

    uid_root: str | None = Field(
        default=None,
        description="Your organisation's DICOM UID root; unset uses UUID-derived 2.25 UIDs.",
    )
    data_dir: Path = Field(default=Path("./var"), description="Spool and local archive folder.")
    max_upload_bytes: int = Field(default=80 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=210_000_000, gt=0, description="Decompression-bomb guard.")
    decode_memory_mb: int = Field(
        default=768,
        gt=0,
        description="Memory the encoder may hold in whole images at once (rotations, "
        "re-encodes, HEIC); photos wait for each other, one that alone needs more is refused.",
    )
    encode_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Photos encoded at once (each holds its photo in memory); unset: the cores.",
    )
    institution_name: str | None = Field(default=None, max_length=64)
    station_name: str | None = Field(default=None, max_length=16)
    host: str = "127.0.0.1"
    port: int = 8000

    # --- persistence -------------------------------------------------------------------------
    database_url: SecretStr | None = Field(  # a URL may carry the database password
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "CAPTURE_DATABASE_URL"),
        description="SQLAlchemy URL; unset uses SQLite (WAL) in data_dir/capture.db.",
    )

    # --- archive -----------------------------------------------------------------------------
    dicomweb_url: str | None = Field(
        default=None,
        description="DICOMweb base URL (e.g. http://pacs/dicom-web); unset uses the local archive.",
    )
    archive_delete_rejected: bool = Field(
        default=False,
        description="After a rejection note (IOCM KOS) is in the archive, also delete the "
        "rejected instance through Orthanc's REST API (docs/iocm.md); off: the archive keeps it.",
    )
    archive_rest_url: str | None = Field(
        default=None,
        description="Orthanc's REST base for CAPTURE_ARCHIVE_DELETE_REJECTED; unset: "
        "CAPTURE_DICOMWEB_URL without its last path segment (/dicom-web).",
    )
    archive_auth: ArchiveAuthKind = ArchiveAuthKind.NONE
    archive_username: str | None = None
    archive_password: SecretStr | None = None
    archive_token: SecretStr | None = None
    archive_token_url: str | None = None
    archive_client_id: str | None = None
    archive_client_secret: SecretStr | None = None
    archive_scope: str | None = None
    archive_timeout_seconds: float = Field(default=30.0, gt=0)

    # --- outbox ------------------------------------------------------------------------------
    worker_enabled: bool = Field(default=True, description="Run the delivery worker in-process.")
    worker_threads: int = Field(default=2, ge=1, le=64)
    notify_enabled: bool = Field(
        default=True, description="Run the EHR notification worker in this process."
    )
    lease_seconds: float = Field(
        default=15.0, gt=0, description="A claim's lifetime, renewed while its work runs."
    )
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    verify_attempts: int = Field(default=10, ge=1, description="QIDO misses before a re-send.")
    spool_retention_seconds: float = Field(
        default=0.0, ge=0, description="Keep spooled bytes this long after verification."
    )
    spool: Literal["folder", "database"] = Field(
        default="folder",
        description="Where spooled photos and DICOM objects are kept until verified: the "
        "folder (CAPTURE_DATA_DIR/spool), or the folder and the database, so replicas on "
        "PostgreSQL share nothing else: one delivers what a dead one accepted.",
    )
    poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Idle workers' safety poll: they wake on commits (PostgreSQL LISTEN/NOTIFY "
        "across replicas, a signal in-process), and poll this often in case one was missed.",
    )
    bench_counters: bool = Field(
        default=False,
        description="Count fsyncs, database commits and SQL statements in /metrics (make bench).",
    )

    # --- EHR context (SMART App Launch 2, FHIR R4, UPS-RS) --------------------------------------
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="How browsers reach this service; the SMART redirect URI is built from it.",
    )
    ehrs: list[EhrRegistration] = Field(
        default_factory=list, description="JSON list of EHR registrations (CAPTURE_EHRS)."
    )
    session_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    session_idle_seconds: int = Field(default=30 * 60, gt=0)
    queue_retention_hours: float = Field(
        default=72.0,
        gt=0,
        le=24 * 31,
        description=(
            "How long a photo may wait, encrypted on the phone, to be sent; then it is purged "
            "(with a message, and an audit event once the phone is online)."
        ),
    )
    cookie_secure: bool = Field(default=True, description="Secure cookie flag; only off in dev.")
    cookie_samesite: str = Field(
        default="lax",
        pattern="^(lax|strict|none)$",
        description="lax | strict | none (framed by an EHR on another site: Secure, Partitioned)",
    )
    worklist_url: str | None = Field(default=None, description="UPS-RS base URL (DICOMweb)")
    worklist_station_code: str | None = Field(
        default=None, description="Scheduled Station Name Code Sequence > Code Value to match"
    )
    worklist_label: str | None = Field(default=None, description="Worklist Label to match")
    worklist_aet: str = Field(default="CAPTURE", max_length=16, description="Our AE title (UPS)")
    wado_url: str | None = Field(
        default=None, description="WADO-RS base the EHR links to (default: the DICOMweb URL)"
    )
    archive_retrieve_aet: str | None = Field(
        default=None,
        max_length=16,
        description="The archive's AE title for C-MOVE/C-GET, if it offers DIMSE retrieval "
        "(worklist completion: DICOM Retrieval Sequence)",
    )
    worklist_events: bool = Field(
        default=True,
        description="Subscribe to the worklist's UPS events (PS3.18 11.10) where it offers them",
    )
    worklist_abandon_hours: float = Field(
        default=12.0,
        ge=0,
        description="Give back (CANCELED) a claim left this long without a completion (0: never)",
    )
    worklist_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a worklist kept fresh by UPS events is answered without a search",
    )
    sensitive_sites: list[SensitiveSiteRule] | None = Field(
        default=None,
        description="Sites whose photos are suggested restricted (JSON rules; default built in)",
    )
    # --- privacy: roles and consent (capture_api/privacy, docs/privacy.md) ----------------------
    role_map: dict[str, list[Role]] = Field(
        default_factory=dict,
        description="fhirUser -> capture roles (JSON); every signed-in user is a clinician",
    )
    consent_required: ConsentSetting = Field(
        default="never",
        description="never | always | JSON rules (units, min_sensitivity): consent before photos",
    )
    web_client_dir: Path = Field(
        default=Path("web_client"), description="The phone client's static files (served at /)."
    )

    # --- HTTP hardening (capture_api/api/security, docs/security.md) -------------------------
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs CSRF tokens; the same on every replica (unset: random per process)",
    )
    frame_ancestors: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins that may frame capture besides the EHRs' own (CSP frame-ancestors)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API cross-origin, without cookies (default none)",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies (IPs/CIDRs) whose X-Forwarded-For/-Proto are believed",
    )
    hsts_max_age_seconds: int = Field(
        default=63_072_000, ge=0, description="HSTS max-age with an https public URL; 0: none"
    )
    rate_limit_login_per_minute: int = Field(default=30, ge=0, description="per client; 0: off")
    rate_limit_uploads_per_minute: int = Field(default=240, ge=0, description="per client; 0: off")
    max_json_bytes: int = Field(default=64 * 1024, gt=0, description="Bodies of non-upload routes")
    api_docs: bool | None = Field(
        default=None, description="Serve /docs and /redoc (unset: only when no EHR is registered)"
    )

    # --- audit trail (capture_api/audit, docs/audit.md) --------------------------------------
    audit_read_window_seconds: float = Field(
        default=60.0,
        ge=0,
        description=(
            "Repeated status reads of one capture by one session within this window are "
            "one audit row (0: a row per read)."
        ),
    )
    audit_syslog_url: str | None = Field(
        default=None,
        description="ATNA audit record repository: udp://host:514, tcp://host:514, tls://host:6514",
    )
    audit_syslog_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle the tls:// collector is checked against"
    )
    audit_syslog_cert_file: Path | None = Field(
        default=None, description="PEM client certificate for tls:// (ATNA node authentication)"
    )
    audit_syslog_key_file: Path | None = Field(
        default=None, description="PEM private key of that certificate (if not in the cert file)"
    )
    audit_app_name: str = Field(
        default="capture",
        pattern=r"^[!-~]{1,48}$",
        description="Syslog APP-NAME and DICOM AuditSourceID (printable ASCII, no spaces)",
    )
    audit_site: str | None = Field(
        default=None, max_length=64, description="AuditEnterpriseSiteID / AuditEvent.source.site"
    )
    audit_queue_size: int = Field(
        default=10_000, ge=1, description="Audit messages kept while the collector is down"
    )
    audit_chain_key: SecretStr | None = Field(
        default=None,
        description="Keys the audit rows' hash chain (kept outside the database; never change it)",
    )

    @field_validator(
        "data_dir",
        "web_client_dir",
        "audit_syslog_ca_file",
        "audit_syslog_cert_file",
        "audit_syslog_key_file",
    )
    @classmethod
    def _absolute_paths(cls, value: Path | None) -> Path | None:
        return absolute(value)

    @field_validator("audit_syslog_url")
    @classmethod
    def _check_audit_syslog_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        SyslogTarget.parse(value)  # ValueError: says what a valid URL looks like
        return value

    @model_validator(mode="after")
    def _none_needs_secure(self) -> Settings:
        if self.cookie_samesite == "none" and not self.cookie_secure:
            raise ValueError(
                "CAPTURE_COOKIE_SAMESITE=none needs Secure cookies, which browsers keep only "
                "over https: serve capture over https and leave CAPTURE_COOKIE_SECURE=true"
            )
        return self

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def local_archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None and self.database_url.get_secret_value():
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'capture.db'}"

    @field_validator("secret_key", "audit_chain_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            name = f"CAPTURE_{(info.field_name or '').upper()}"
            raise ValueError(
                f"{name} must be at least 32 characters: "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value

    @field_validator("frame_ancestors", "cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return origins.split_list(value)

    @field_validator("frame_ancestors")
    @classmethod
    def _check_frame_ancestors(cls, value: list[str]) -> list[str]:
        return [
            origins.check_origin(v, setting="CAPTURE_FRAME_ANCESTORS", wildcard=True) for v in value
        ]

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: list[str]) -> list[str]:
        return [origins.check_origin(v, setting="CAPTURE_CORS_ORIGINS") for v in value]

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: list[str]) -> list[str]:
        return [origins.check_proxy(v) for v in value]

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
