"""Worklist completion as a leased queue: one row per requested completion.

Until now one thread per process completed every requested workitem, with no claim: two
replicas could complete the same UPS workitem, and a refused or unreachable worklist was asked
again every 2 s forever. ``worklist_completion`` gives each request the claim/lease/backoff
columns of the two outboxes (``capture_api.store.leases``).

A separate table rather than columns on ``encounter_context``: the claim scans only requested
completions (not every context ever opened), and a downgrade drops the table instead of
rebuilding ``encounter_context`` (SQLite), which the capture and consent tables reference. The
context keeps ``complete_requested_at`` and ``completed_at`` (migration 0004), still written,
so a downgraded service finds its pending requests where it left them. Upgrading queues the
requests that were pending.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worklist_completion",
        sa.Column("id", sa.String(64), sa.ForeignKey("encounter_context.id"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_worklist_completion_status", "worklist_completion", ["status"])
    op.create_index(
        "ix_worklist_completion_next_attempt_at", "worklist_completion", ["next_attempt_at"]
    )
    op.execute(
        "INSERT INTO worklist_completion (id, status, attempts, next_attempt_at, created_at, "
        "updated_at) SELECT id, 'pending', 0, complete_requested_at, complete_requested_at, "
        "complete_requested_at FROM encounter_context "
        "WHERE complete_requested_at IS NOT NULL AND completed_at IS NULL"
    )


def downgrade() -> None:
    op.drop_table("worklist_completion")
