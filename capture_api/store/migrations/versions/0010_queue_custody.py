"""The phone's offline queue survives the page: server-side key custody and same-user handoff.

* ``queue_key``: per user (EHR ``iss`` + fhirUser) and phone, the random key that wraps the
  phone's device key; handed only to a signed-in session of the same user, deleted when the
  phone releases it or when it went unused for longer than the queue's retention limit;
* ``queue_session``: the user of each session that asked for a queue key, kept after the
  session ends (the proof a later session of the same user needs to send the earlier
  session's photos);
* ``queue_handoff``: an earlier context handed to a later session of the same user (upload
  and status only).

Three new tables and no column on ``encounter_context``: a downgrade drops them instead of
rebuilding that table (SQLite), which the capture and consent tables reference.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_key",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("fhir_user", sa.String(512), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_queue_key_fhir_user", "queue_key", ["fhir_user"])
    op.create_index("ix_queue_key_used_at", "queue_key", ["used_at"])
    op.create_table(
        "queue_session",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("fhir_user", sa.String(512), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_queue_session_seen_at", "queue_session", ["seen_at"])
    op.create_table(
        "queue_handoff",
        sa.Column(
            "context_id", sa.String(64), sa.ForeignKey("encounter_context.id"), primary_key=True
        ),
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_queue_handoff_granted_at", "queue_handoff", ["granted_at"])


def downgrade() -> None:
    op.drop_table("queue_handoff")
    op.drop_table("queue_session")
    op.drop_table("queue_key")
