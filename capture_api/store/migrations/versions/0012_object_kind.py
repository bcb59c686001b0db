"""The outbox delivers documents too: ``capture.object_kind`` (photo, sr, kos).

Wound measurements (TID 1500 Structured Reports) and IOCM rejection notes (Key Object
Selection documents) reach the archive through the photos' outbox; the column tells them
apart. Existing rows are photos (the server default), so SQLite adds it in place.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "capture",
        sa.Column("object_kind", sa.String(8), nullable=False, server_default="photo"),
    )
    op.create_index("ix_capture_object_kind", "capture", ["object_kind"])


def downgrade() -> None:
    op.drop_index("ix_capture_object_kind", table_name="capture")
    with op.batch_alter_table("capture") as batch:
        batch.drop_column("object_kind")
