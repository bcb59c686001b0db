"""Photos taken back (IHE IOCM): ``rejection``, and ``notification_retraction`` for the chart.

* ``rejection``: one row per rejected photo (its capture id; its SOP Instance UID unique), with
  the CID 7011 reason, who rejected it, its KOS rejection note's outbox row, and the photo that
  re-filed it for the right patient;
* ``notification_retraction``: a leased queue beside ``notification``, one row per FHIR
  resource of a rejected photo to mark ``entered-in-error`` in the EHR.

New tables only, so SQLite and PostgreSQL take them alike.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejection",
        sa.Column("capture_id", sa.String(128), sa.ForeignKey("capture.id"), primary_key=True),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("context_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("patient_issuer", sa.String(128), nullable=False, server_default=""),
        sa.Column("actor", sa.String(512), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("kos_capture_id", sa.String(128), nullable=False),
        sa.Column("kos_sop_instance_uid", sa.String(64), nullable=False),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refiled_capture_id", sa.String(128), nullable=True),
        sa.Column("refiled_context_id", sa.String(64), nullable=True),
        sa.Column("refiled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archive_removed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_rejection_context_id", "rejection", ["context_id"])
    op.create_index("ix_rejection_patient_id", "rejection", ["patient_id"])
    op.create_index("ix_rejection_rejected_at", "rejection", ["rejected_at"])
    op.create_table(
        "notification_retraction",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("capture_id", sa.String(128), sa.ForeignKey("capture.id"), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("resource_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("capture_id", "resource_type", name="uq_retraction_capture_type"),
    )
    for column in ("capture_id", "status", "next_attempt_at"):
        op.create_index(f"ix_notification_retraction_{column}", "notification_retraction", [column])


def downgrade() -> None:
    for column in ("capture_id", "status", "next_attempt_at"):
        op.drop_index(f"ix_notification_retraction_{column}", table_name="notification_retraction")
    op.drop_table("notification_retraction")
    for column in ("context_id", "patient_id", "rejected_at"):
        op.drop_index(f"ix_rejection_{column}", table_name="rejection")
    op.drop_table("rejection")
