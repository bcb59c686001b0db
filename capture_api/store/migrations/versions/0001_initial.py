"""Initial schema: encounter contexts, and captures (which are also the outbox).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "encounter_context",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("patient_json", sa.Text(), nullable=False),
        sa.Column("encounter_json", sa.Text(), nullable=True),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "capture",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column(
            "context_id", sa.String(64), sa.ForeignKey("encounter_context.id"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("failure_kind", sa.String(32), nullable=True),
        sa.Column("warnings_json", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("body_site_code", sa.String(32), nullable=True),
        sa.Column("laterality", sa.String(1), nullable=True),
        sa.Column("sensitivity_level", sa.String(16), nullable=False),
        sa.Column("sensitivity_categories", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("view", sa.Text(), nullable=True),
        sa.Column("operator", sa.String(64), nullable=True),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("captured_at", _TS, nullable=True),
        sa.Column("instance_number", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(64), nullable=True),
        sa.Column("study_uid", sa.String(64), nullable=True),
        sa.Column("series_uid", sa.String(64), nullable=True),
        sa.Column("photo_path", sa.String(512), nullable=True),
        sa.Column("dicom_path", sa.String(512), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("verify_attempts", sa.Integer(), nullable=False),
        sa.Column("stow_requests", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("encoded_at", _TS, nullable=True),
        sa.Column("stored_at", _TS, nullable=True),
        sa.Column("verified_at", _TS, nullable=True),
        sa.Column("spool_deleted_at", _TS, nullable=True),
    )
    for column in ("context_id", "status", "next_attempt_at", "created_at", "sop_instance_uid"):
        op.create_index(f"ix_capture_{column}", "capture", [column])


def downgrade() -> None:
    op.drop_table("capture")
    op.drop_table("encounter_context")
