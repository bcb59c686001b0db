"""Privacy: session roles, recorded consent, and the consent each capture was taken under.

* ``user_session.roles``: the roles resolved once at launch (comma separated);
* ``consent``: one row per recorded consent (append-only), with its FHIR R4 Consent JSON;
* ``capture.consent_id``: the consent in force when the photo was taken. A plain indexed
  column (no foreign key constraint) so SQLite can add it in place (``ALTER TABLE ... ADD
  COLUMN``) instead of rebuilding the outbox table that the notification table references.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("user_session", sa.Column("roles", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "consent",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "context_id", sa.String(64), sa.ForeignKey("encounter_context.id"), nullable=False
        ),
        sa.Column("consenter", sa.String(16), nullable=False),
        sa.Column("consenter_name", sa.String(128), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("form_capture_id", sa.String(128), nullable=True),
        sa.Column("recorded_by", sa.String(512), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resource_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_consent_context_id", "consent", ["context_id"])
    op.add_column("capture", sa.Column("consent_id", sa.String(64), nullable=True))
    op.create_index("ix_capture_consent_id", "capture", ["consent_id"])


def downgrade() -> None:
    op.drop_index("ix_capture_consent_id", table_name="capture")
    with op.batch_alter_table("capture") as batch:
        batch.drop_column("consent_id")
    op.drop_table("consent")
    with op.batch_alter_table("user_session") as batch:
        batch.drop_column("roles")
