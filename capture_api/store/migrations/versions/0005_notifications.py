"""EHR notifications: one row per (capture, FHIR resource type), an outbox of its own.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("capture_id", sa.String(128), sa.ForeignKey("capture.id"), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("resource_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("capture_id", "resource_type", name="uq_notification_capture_type"),
    )
    op.create_index("ix_notification_capture_id", "notification", ["capture_id"])
    op.create_index("ix_notification_status", "notification", ["status"])
    op.create_index("ix_notification_next_attempt_at", "notification", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("notification")
