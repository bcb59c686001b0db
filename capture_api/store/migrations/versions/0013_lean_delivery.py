"""Lean delivery: what the archive answered to the store, on the capture.

``retrieve_url`` and ``stored_sop_class_uid`` come from the STOW-RS response's Referenced SOP
Sequence (PS3.18 Table I.1-1: Retrieve URL (0008,1190), Referenced SOP Class UID
(0008,1150)): where the archive says the instance can be fetched, and as what it took it.
Nullable: rows delivered before, and archives that do not say, have none.

``spool_blob``: spooled files in the database, in chunks (``CAPTURE_SPOOL=database``), so
replicas share nothing but PostgreSQL.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("capture", sa.Column("retrieve_url", sa.Text(), nullable=True))
    op.add_column("capture", sa.Column("stored_sop_class_uid", sa.String(64), nullable=True))
    op.create_table(
        "spool_blob",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", "seq"),
    )


def downgrade() -> None:
    op.drop_table("spool_blob")
    with op.batch_alter_table("capture") as batch:
        batch.drop_column("stored_sop_class_uid")
        batch.drop_column("retrieve_url")
