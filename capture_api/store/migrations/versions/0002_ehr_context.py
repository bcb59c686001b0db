"""EHR context: SMART launch state, server-side sessions, and the context's EHR links.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_CONTEXT_COLUMNS = (
    ("session_id", 64),
    ("iss", 512),
    ("fhir_patient_id", 128),
    ("fhir_encounter_id", 128),
    ("workitem_uid", 64),
    ("workitem_transaction_uid", 64),
)


def upgrade() -> None:
    with op.batch_alter_table("encounter_context") as batch:
        for name, length in _CONTEXT_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length), nullable=True))
    op.create_index("ix_encounter_context_session_id", "encounter_context", ["session_id"])
    op.create_table(
        "launch_state",
        sa.Column("state", sa.String(128), primary_key=True),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("launch", sa.Text(), nullable=True),
        sa.Column("nonce", sa.String(128), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "user_session",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("token_expires_at", _TS, nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("fhir_user", sa.String(512), nullable=True),
        sa.Column("patient_fhir_id", sa.String(128), nullable=True),
        sa.Column("encounter_fhir_id", sa.String(128), nullable=True),
        sa.Column("need_patient_banner", sa.Boolean(), nullable=False),
        sa.Column("context_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_session")
    op.drop_table("launch_state")
    op.drop_index("ix_encounter_context_session_id", "encounter_context")
    with op.batch_alter_table("encounter_context") as batch:
        for name, _ in _CONTEXT_COLUMNS:
            batch.drop_column(name)
