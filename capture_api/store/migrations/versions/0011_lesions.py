"""Lesions: a patient's tracked skin lesions, and the lesion and dermoscopy of each capture.

* ``lesion``: one row per lesion (L1, L2, ...) of a patient (id + issuer), keyed by its
  Tracking UID, with its map pin, site and description;
* ``capture.lesion_uid``: the lesion the photo shows (a plain indexed column, no foreign key,
  so SQLite adds it in place as in 0007);
* ``capture.dermoscopy_json``: the dermatoscope's settings of a dermoscopic photo (null for a
  clinical photo).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lesion",
        sa.Column("tracking_uid", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(128), nullable=False, server_default=""),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("description", sa.String(64), nullable=True),
        sa.Column("view", sa.String(16), nullable=True),
        sa.Column("x", sa.Float(), nullable=True),
        sa.Column("y", sa.Float(), nullable=True),
        sa.Column("body_site_code", sa.String(32), nullable=True),
        sa.Column("laterality", sa.String(1), nullable=True),
        sa.Column("context_id", sa.String(64), nullable=True),
        sa.Column("source", sa.String(16), nullable=False, server_default="capture"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("patient_id", "issuer", "number", name="uq_lesion_patient_number"),
    )
    op.create_index("ix_lesion_patient_id", "lesion", ["patient_id"])
    op.add_column("capture", sa.Column("lesion_uid", sa.String(64), nullable=True))
    op.add_column("capture", sa.Column("dermoscopy_json", sa.Text(), nullable=True))
    op.create_index("ix_capture_lesion_uid", "capture", ["lesion_uid"])


def downgrade() -> None:
    op.drop_index("ix_capture_lesion_uid", table_name="capture")
    with op.batch_alter_table("capture") as batch:
        batch.drop_column("dermoscopy_json")
        batch.drop_column("lesion_uid")
    op.drop_index("ix_lesion_patient_id", table_name="lesion")
    op.drop_table("lesion")
