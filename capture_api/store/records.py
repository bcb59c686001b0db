"""The tables: encounter contexts, and one row per capture that doubles as the outbox.

A capture row moves received -> encoded -> stored -> verified (or failed, with a reason a
person can read). The outbox columns (attempts, next_attempt_at, lease_*) let several
worker threads and processes share the table: a row is claimed by a conditional UPDATE
(and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and a claim expires if its worker dies.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    """Aware UTC (sqlmodel's UTCDateTime refuses naive values and returns UTC)."""
    return dt.datetime.now(dt.UTC)


class CaptureStatus(StrEnum):
    """Where a capture is on its way to the archive."""

    RECEIVED = "received"  # photo spooled durably; not yet encoded
    ENCODED = "encoded"  # DICOM object spooled; waiting for (or retrying) STOW
    STORED = "stored"  # the archive accepted it; waiting for QIDO to show it
    VERIFIED = "verified"  # the archive shows it: done; spooled bytes can go
    FAILED = "failed"  # will not be delivered; ``reason`` says why


class ObjectKind(StrEnum):
    """What a ``capture`` row delivers: a clinician's photo, or a DICOM object capture made.

    Structured Reports (wound measurements) and Key Object Selection documents (IOCM rejection
    notes) take the photo's road to the archive (the same outbox, lease, retries and
    verification), so they share its table; everything that means "the photos" (the session's
    list, instance numbers, chart write-back, reports) selects ``PHOTO`` only.
    """

    PHOTO = "photo"
    SR = "sr"  # a Structured Report made from a photo (TID 1500 measurement report)
    KOS = "kos"  # a Key Object Selection document (IOCM rejection note)


#: States the outbox worker acts on.
PENDING = (CaptureStatus.RECEIVED, CaptureStatus.ENCODED, CaptureStatus.STORED)


class ContextRecord(SQLModel, table=True):
    """A patient + encounter context captures are made in (from EHR launch, worklist, scan)."""

    __tablename__ = "encounter_context"

    id: str = Field(primary_key=True, max_length=64)
    patient_json: str = Field(sa_column=Column(Text, nullable=False))
    encounter_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    study_uid: str = Field(max_length=64)
    source: str = Field(max_length=32)  # integration | smart | worklist | scan
    created_at: dt.datetime = Field(default_factory=utcnow)
    session_id: str | None = Field(default=None, max_length=64, index=True)
    iss: str | None = Field(default=None, max_length=512)
    fhir_patient_id: str | None = Field(default=None, max_length=128)
    fhir_encounter_id: str | None = Field(default=None, max_length=128)
    workitem_uid: str | None = Field(default=None, max_length=64)
    workitem_transaction_uid: str | None = Field(default=None, max_length=64)
    complete_requested_at: dt.datetime | None = None  # worklist: complete once all verified
    completed_at: dt.datetime | None = None


class LaunchState(SQLModel, table=True):
    """An authorization request in flight (SMART App Launch: between /launch and callback).

    Kept server-side so the PKCE verifier never reaches the browser; single use; short-lived.
    """

    __tablename__ = "launch_state"

    state: str = Field(primary_key=True, max_length=128)
    iss: str = Field(max_length=512)
    code_verifier: str = Field(max_length=128)
    launch: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    nonce: str | None = Field(default=None, max_length=128)
    created_at: dt.datetime = Field(default_factory=utcnow)
    #: SHA-256 of the pre-login cookie of the browser that started the launch (migration
    #: 0009): the callback is accepted only from that browser (login CSRF).
    browser_binding: str | None = Field(default=None, max_length=64)


class UserSession(SQLModel, table=True):
    """A signed-in clinician (backend-for-frontend): the tokens stay here, never in the browser.

    The browser holds only a random cookie; ``id`` is its SHA-256, so a database reader
    cannot replay sessions.
    """

    __tablename__ = "user_session"

    id: str = Field(primary_key=True, max_length=64)
    iss: str = Field(max_length=512)
    access_token: str = Field(sa_column=Column(Text, nullable=False))
    refresh_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    token_expires_at: dt.datetime | None = None
    scope: str = Field(default="", sa_column=Column(Text, nullable=False))
    fhir_user: str | None = Field(default=None, max_length=512)
    patient_fhir_id: str | None = Field(default=None, max_length=128)
    encounter_fhir_id: str | None = Field(default=None, max_length=128)
    need_patient_banner: bool = True
    context_id: str | None = Field(default=None, max_length=64)
    # capture roles resolved once at launch (capture_api.capture.roles), comma separated
    roles: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_seen_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime


class CaptureRecord(SQLModel, table=True):
    """One photo: its metadata, where its bytes are spooled, and its delivery state."""

    __tablename__ = "capture"
    # Found from their own rows at any volume (migration 0016): a context's photos, their
    # count and recent changes; the recently verified (notifier); spooled bytes to purge.
    __table_args__ = (
        Index("ix_capture_context_kind_updated", "context_id", "object_kind", "updated_at"),
        Index("ix_capture_status_verified", "status", "verified_at"),
        Index("ix_capture_spool_kept", "spool_deleted_at", "status", "verified_at"),
    )

    id: str = Field(primary_key=True, max_length=128)  # the client's capture id
    context_id: str = Field(foreign_key="encounter_context.id", index=True, max_length=64)
    status: CaptureStatus = Field(
        default=CaptureStatus.RECEIVED,
        sa_column=Column(String(16), nullable=False, index=True),
    )
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    failure_kind: str | None = Field(default=None, max_length=32)  # see capture.service
    warnings_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    sha256: str = Field(max_length=64)
    size_bytes: int

    body_site_code: str | None = Field(default=None, max_length=32)
    laterality: str | None = Field(default=None, max_length=1)
    sensitivity_level: str = Field(default="normal", max_length=16)
    sensitivity_categories: str = Field(default="", max_length=128)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    view: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    operator: str | None = Field(default=None, max_length=64)
    device: str | None = Field(default=None, max_length=64)
    captured_at: dt.datetime | None = None
    instance_number: int = 1
    consent_id: str | None = Field(default=None, max_length=64, index=True)  # ConsentRecord.id
    lesion_uid: str | None = Field(default=None, max_length=64, index=True)  # LesionRecord
    dermoscopy_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    object_kind: str = Field(
        default=ObjectKind.PHOTO.value,
        sa_column=Column(String(8), nullable=False, server_default="photo"),
    )

    sop_instance_uid: str | None = Field(default=None, max_length=64, index=True)
    study_uid: str | None = Field(default=None, max_length=64)
    series_uid: str | None = Field(default=None, max_length=64)
    photo_path: str | None = Field(default=None, max_length=512)
    dicom_path: str | None = Field(default=None, max_length=512)
    # What the archive's STOW-RS answer said of the instance (Referenced SOP Sequence).
    retrieve_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    stored_sop_class_uid: str | None = Field(default=None, max_length=64)

    attempts: int = 0
    verify_attempts: int = 0
    stow_requests: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, index=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: dt.datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

    created_at: dt.datetime = Field(default_factory=utcnow, index=True)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    encoded_at: dt.datetime | None = None
    stored_at: dt.datetime | None = None
    verified_at: dt.datetime | None = None
    spool_deleted_at: dt.datetime | None = None


class SpoolBlobRecord(SQLModel, table=True):
    """A chunk of a spooled file kept in the database (``CAPTURE_SPOOL=database``), so a
    replica can deliver the photos another accepted (``capture_api.store.spool_blobs``)."""

    __tablename__ = "spool_blob"

    name: str = Field(primary_key=True, max_length=128)  # the spool file's name (a digest)
    seq: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ConsentRecord(SQLModel, table=True):
    """The patient's consent to photography, recorded for one context (append-only).

    ``resource_json`` is the validated FHIR R4 Consent (``capture_api.privacy.consent_fhir``);
    captures made while it is the context's latest reference it (``CaptureRecord.consent_id``).
    """

    __tablename__ = "consent"

    id: str = Field(primary_key=True, max_length=64)
    context_id: str = Field(foreign_key="encounter_context.id", index=True, max_length=64)
    consenter: str = Field(max_length=16)  # patient | guardian | other
    consenter_name: str | None = Field(default=None, max_length=128)
    method: str = Field(max_length=16)  # verbal | written
    form_capture_id: str | None = Field(default=None, max_length=128)
    recorded_by: str | None = Field(default=None, max_length=512)  # fhirUser
    recorded_at: dt.datetime = Field(default_factory=utcnow)
    resource_json: str = Field(sa_column=Column(Text, nullable=False))


class AuditEventRecord(SQLModel, table=True):
    """One audit event (append-only): every PHI request, and the domain events around them.

    Rows are only ever inserted (database triggers refuse UPDATE/DELETE, migration 0006), each
    chained to the one before by a keyed hash (migration 0009: ``capture-api audit verify``).
    ``capture_api.audit`` maps a row to a FHIR AuditEvent (IHE BALP) and a DICOM audit
    message; docs/audit.md lists the vocabulary of ``action``.
    """

    __tablename__ = "audit_event"

    id: int | None = Field(  # 64-bit: every request is a row (migration 0006)
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    action: str = Field(max_length=64)
    outcome: str = Field(max_length=16)
    actor: str | None = Field(default=None, max_length=512)
    session_id: str | None = Field(default=None, max_length=64)
    patient: str | None = Field(default=None, max_length=64, index=True)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # --- the full trail (migration 0006) ---
    balp_action: str | None = Field(default=None, max_length=1)  # C R U D E
    event_code: str | None = Field(default=None, max_length=16)  # DICOM EventID (DCM)
    event_type: str | None = Field(default=None, max_length=16)  # DICOM EventTypeCode (DCM)
    purpose: str | None = Field(default=None, max_length=64)  # HL7 v3 PurposeOfUse code
    patient_issuer: str | None = Field(default=None, max_length=128)
    context_id: str | None = Field(default=None, max_length=64, index=True)
    capture_id: str | None = Field(default=None, max_length=128)
    sop_instance_uid: str | None = Field(default=None, max_length=64)
    study_uid: str | None = Field(default=None, max_length=64)
    method: str | None = Field(default=None, max_length=8)
    route: str | None = Field(default=None, max_length=256)  # template, never the raw URL
    http_status: int | None = None
    client_ip: str | None = Field(default=None, max_length=64)
    user_agent_hash: str | None = Field(default=None, max_length=16)
    request_id: str | None = Field(default=None, max_length=64)
    peer: str | None = Field(default=None, max_length=512)  # archive or EHR the event went to
    node: str | None = Field(default=None, max_length=128)  # host of the recording process
    # --- the hash chain (migration 0009, capture_api.audit.chain) ---
    prev_hash: str | None = Field(default=None, max_length=64)  # the previous row's chain_hash
    chain_hash: str | None = Field(default=None, max_length=64)  # HMAC(key, prev_hash + row)
    chain_key: str | None = Field(default=None, max_length=16)  # which key (sha256: none)


class AuditForwardRecord(SQLModel, table=True):
    """An audit row not yet sent to the audit record repository (ATNA syslog), migration 0009.

    Written in the audit row's own transaction when forwarding is configured, deleted once the
    collector took the message; whatever is left after a restart is sent again.
    """

    __tablename__ = "audit_forward"

    audit_id: int = Field(
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    queued_at: dt.datetime = Field(default_factory=utcnow)
    owner: str | None = Field(default=None, max_length=64)  # the queuing process (leases)


class NotificationStatus(StrEnum):
    """Where one EHR notification (a FHIR resource about a verified capture) stands."""

    PENDING = "pending"  # to be created (or retried) in the EHR
    SENT = "sent"  # the EHR created it, or already had it (conditional create); resource_id set
    FAILED = "failed"  # will not be retried; ``reason`` says why


class NotificationRecord(SQLModel, table=True):
    """One FHIR resource (Media, DocumentReference) to create in the EHR for a verified capture.

    A second outbox, with the same claim/lease/backoff columns as ``CaptureRecord``; the
    unique (capture_id, resource_type) pair makes "insert if missing" safe across replicas.
    """

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("capture_id", "resource_type", name="uq_notification_capture_type"),
        # The photos' resources sent recently: their wound Observations may be due (0016).
        Index("ix_notification_status_updated", "status", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    capture_id: str = Field(foreign_key="capture.id", index=True, max_length=128)
    resource_type: str = Field(max_length=32)
    iss: str = Field(max_length=512)
    status: NotificationStatus = Field(
        default=NotificationStatus.PENDING,
        sa_column=Column(String(16), nullable=False, index=True),
    )
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, index=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: dt.datetime | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resource_id: str | None = Field(default=None, max_length=128)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class CompletionStatus(StrEnum):
    """Where a requested worklist completion stands."""

    PENDING = "pending"  # to be done (or retried) once every photo of the context is verified
    COMPLETED = "completed"  # the workitem is COMPLETED; ``ContextRecord.completed_at`` says when
    CANCELED = "canceled"  # the workitem was CANCELED at the worklist: never retried
    RELEASED = "released"  # we gave the workitem back (CANCELED) before it was completed


class WorklistCompletionRecord(SQLModel, table=True):
    """One requested worklist completion: a third leased queue, beside the two outboxes.

    A row exists once a clinician asked to complete a context's workitem; ``id`` is the
    context's id. It carries the same claim/lease/backoff columns as ``CaptureRecord``, so
    only one worker (of any replica) completes a workitem at a time and a refused or
    unreachable worklist is retried with backoff (migration 0008). The context keeps the facts
    (``complete_requested_at``, ``completed_at``); this row is the worker's bookkeeping.
    """

    __tablename__ = "worklist_completion"

    id: str = Field(foreign_key="encounter_context.id", primary_key=True, max_length=64)
    status: CompletionStatus = Field(
        default=CompletionStatus.PENDING,
        sa_column=Column(String(16), nullable=False, index=True),
    )
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, index=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: dt.datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class LesionRecord(SQLModel, table=True):
    """One skin lesion of a patient (L1, L2, ...): a pin on the body map, followed for years.

    Scoped by patient id and issuer (``issuer`` is "" when the EHR named none), numbered per
    patient; ``tracking_uid`` is its Tracking UID (0062,0021) in every photo of it, so a
    lesion found again in the archive (``source`` "archive": pinned by another capture
    install) is the same row, never a second one.
    """

    __tablename__ = "lesion"
    __table_args__ = (
        UniqueConstraint("patient_id", "issuer", "number", name="uq_lesion_patient_number"),
    )

    tracking_uid: str = Field(primary_key=True, max_length=64)
    patient_id: str = Field(max_length=64, index=True)
    issuer: str = Field(default="", max_length=128)
    number: int
    label: str = Field(max_length=64)  # Tracking ID (0062,0020): "L3"
    description: str | None = Field(default=None, max_length=64)
    view: str | None = Field(default=None, max_length=16)  # the body map's view of the pin
    x: float | None = None  # 0..1 from the view's left
    y: float | None = None  # 0..1 from the view's top
    body_site_code: str | None = Field(default=None, max_length=32)
    laterality: str | None = Field(default=None, max_length=1)
    context_id: str | None = Field(default=None, max_length=64)  # where it was pinned, if here
    source: str = Field(default="capture", max_length=16)  # capture | archive
    created_at: dt.datetime = Field(default_factory=utcnow)


class QueueKeyRecord(SQLModel, table=True):
    """The server's half of one phone's offline queue: a key it hands out to its user only.

    The phone keeps its photos encrypted under a device key that it stores only wrapped
    (AES-KW) by this key, so its storage alone opens nothing; this row gives the key to a
    signed-in session of the same user (``iss`` + ``fhir_user``), and is deleted (crypto-
    shredding the phone's queue) when the phone releases it or it goes unused too long
    (migration 0010, ``capture_api.encounters.queue_custody``).
    """

    __tablename__ = "queue_key"

    id: str = Field(primary_key=True, max_length=64)
    iss: str = Field(max_length=512)
    fhir_user: str = Field(max_length=512, index=True)
    secret: str = Field(max_length=64)  # base64url of 32 random bytes
    created_at: dt.datetime = Field(default_factory=utcnow)
    used_at: dt.datetime = Field(default_factory=utcnow, index=True)


class QueueSessionRecord(SQLModel, table=True):
    """Which user a session was, kept after the session ends: the proof that lets the same
    user's next session send the photos queued for that session's contexts."""

    __tablename__ = "queue_session"

    session_id: str = Field(primary_key=True, max_length=64)
    iss: str = Field(max_length=512)
    fhir_user: str = Field(max_length=512)
    seen_at: dt.datetime = Field(default_factory=utcnow, index=True)


class QueueHandoffRecord(SQLModel, table=True):
    """An earlier context of the same user, handed to a later session so that photos queued
    for it can be sent there (upload and status only: ``api.access``)."""

    __tablename__ = "queue_handoff"

    context_id: str = Field(foreign_key="encounter_context.id", primary_key=True, max_length=64)
    session_id: str = Field(primary_key=True, max_length=64)
    granted_at: dt.datetime = Field(default_factory=utcnow, index=True)


class RejectionRecord(SQLModel, table=True):
    """One photo taken back (IHE IOCM): why, by whom, its KOS, and where it was re-filed.

    One row per rejected photo (the primary key is its capture id, its SOP Instance UID is
    unique), so a double tap or a retried request rejects once (migration 0014,
    ``capture_api.correct``). ``reason`` is the CID 7011 code value of the KOS title;
    ``patient_id``/``patient_issuer`` are the rejected photo's patient, kept here because the
    views filter on this table for both patients. ``refiled_*`` name the new instance when a
    wrong-patient photo was re-issued for the right patient.
    """

    __tablename__ = "rejection"

    capture_id: str = Field(foreign_key="capture.id", primary_key=True, max_length=128)
    sop_instance_uid: str = Field(max_length=64, unique=True)
    study_uid: str = Field(max_length=64)
    series_uid: str = Field(max_length=64)
    reason: str = Field(max_length=16)  # DCM code value (CID 7011): 113037, 113001, 113038
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    context_id: str = Field(max_length=64, index=True)  # the rejected photo's context
    patient_id: str = Field(max_length=64, index=True)
    patient_issuer: str = Field(default="", max_length=128)
    actor: str | None = Field(default=None, max_length=512)  # fhirUser, when signed in
    session_id: str | None = Field(default=None, max_length=64)
    kos_capture_id: str = Field(max_length=128)  # the outbox row delivering the KOS
    kos_sop_instance_uid: str = Field(max_length=64)
    rejected_at: dt.datetime = Field(default_factory=utcnow, index=True)
    refiled_capture_id: str | None = Field(default=None, max_length=128)
    refiled_context_id: str | None = Field(default=None, max_length=64)
    refiled_at: dt.datetime | None = None
    archive_removed_at: dt.datetime | None = None  # CAPTURE_ARCHIVE_DELETE_REJECTED


class RetractionStatus(StrEnum):
    """Where telling the EHR that a rejected photo's resource is entered-in-error stands."""

    PENDING = "pending"  # to be done (or retried) once the resource was created or refused
    SENT = "sent"  # the EHR's resource is entered-in-error (or it never had one: ``reason``)
    FAILED = "failed"  # will not be retried; ``reason`` says why


class RetractionRecord(SQLModel, table=True):
    """One FHIR resource (Media, DocumentReference) of a rejected photo to mark entered-in-error.

    A queue beside ``notification`` with the same claim/lease/backoff columns (migration 0014,
    ``capture_api.notify.retraction``); the unique (capture_id, resource_type) pair makes the
    pull model's "insert if missing" safe across replicas, and the update happens once.
    """

    __tablename__ = "notification_retraction"
    __table_args__ = (
        UniqueConstraint("capture_id", "resource_type", name="uq_retraction_capture_type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    capture_id: str = Field(foreign_key="capture.id", index=True, max_length=128)
    resource_type: str = Field(max_length=32)
    iss: str = Field(max_length=512)
    status: RetractionStatus = Field(
        default=RetractionStatus.PENDING,
        sa_column=Column(String(16), nullable=False, index=True),
    )
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow, index=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: dt.datetime | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resource_id: str | None = Field(default=None, max_length=128)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class MeasurementStatus(StrEnum):
    """Whether a wound measurement is the photo's current one."""

    RECORDED = "recorded"  # the numbers are stored and the SR is queued for the archive
    SUPERSEDED = "superseded"  # the same photo was measured again; the newer row counts


class WoundMeasurementRecord(SQLModel, table=True):
    """One wound measured on one photo (issue 16, migration 0015): the server's numbers.

    The numbers are those the server computed from the outline and its own calibration (never
    the phone's); ``sr_capture_id`` is the outbox row that takes the TID 1500 SR to the archive,
    and the FHIR WoundSize Observation is sent (notification outbox) once that SR is verified.
    The patient, site and side are copied from the photo so the healing trend of a site is one
    query.
    """

    __tablename__ = "wound_measurement"

    id: str = Field(primary_key=True, max_length=64)
    capture_id: str = Field(foreign_key="capture.id", index=True, max_length=128)
    context_id: str = Field(max_length=64, index=True)
    # No index of its own (0016): "recorded" is nearly every row; queries narrow by the others.
    status: str = Field(
        default=MeasurementStatus.RECORDED.value,
        sa_column=Column(String(16), nullable=False),
    )
    patient_id: str = Field(max_length=64, index=True)
    issuer: str = Field(default="", max_length=128)
    body_site_code: str | None = Field(default=None, max_length=32)
    laterality: str | None = Field(default=None, max_length=1)
    area_cm2: float
    length_mm: float
    width_mm: float
    perimeter_mm: float
    method: str = Field(max_length=32)  # marker-homography | ruler-two-point
    perspective_corrected: bool
    tilt_deg: float | None = None
    mm_per_px: float
    quality_json: str = Field(sa_column=Column(Text, nullable=False))  # parameters + notes
    outline_json: str = Field(sa_column=Column(Text, nullable=False))  # image pixels (SCOORD)
    snapped: bool = False  # the outline is a snap-to-edge result the nurse accepted
    phone_area_cm2: float | None = None  # what the phone showed, for comparison only
    tracking_uid: str = Field(max_length=64)
    tracking_id: str = Field(max_length=64)
    sr_sop_instance_uid: str = Field(max_length=64, index=True)
    sr_capture_id: str = Field(max_length=128, index=True)
    observation_json: str = Field(sa_column=Column(Text, nullable=False))
    operator: str | None = Field(default=None, max_length=512)
    measured_at: dt.datetime  # when the photo was taken (the trend's time axis)
    created_at: dt.datetime = Field(default_factory=utcnow)
