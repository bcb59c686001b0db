"""Wound measurements (issue 16): one row per wound measured on a photo.

* ``wound_measurement``: the server's numbers (area, length, width, perimeter), how the photo
  was calibrated and how well (method, tilt, scale, quality parameters), the outline the nurse
  confirmed (image pixels), the SR's SOP Instance UID and outbox row, the WoundSize Observation
  to send once the SR is verified, and the patient/site/side for the healing trend.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wound_measurement",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("capture_id", sa.String(128), sa.ForeignKey("capture.id"), nullable=False),
        sa.Column("context_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(128), nullable=False, server_default=""),
        sa.Column("body_site_code", sa.String(32), nullable=True),
        sa.Column("laterality", sa.String(1), nullable=True),
        sa.Column("area_cm2", sa.Float(), nullable=False),
        sa.Column("length_mm", sa.Float(), nullable=False),
        sa.Column("width_mm", sa.Float(), nullable=False),
        sa.Column("perimeter_mm", sa.Float(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("perspective_corrected", sa.Boolean(), nullable=False),
        sa.Column("tilt_deg", sa.Float(), nullable=True),
        sa.Column("mm_per_px", sa.Float(), nullable=False),
        sa.Column("quality_json", sa.Text(), nullable=False),
        sa.Column("outline_json", sa.Text(), nullable=False),
        sa.Column("snapped", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("phone_area_cm2", sa.Float(), nullable=True),
        sa.Column("tracking_uid", sa.String(64), nullable=False),
        sa.Column("tracking_id", sa.String(64), nullable=False),
        sa.Column("sr_sop_instance_uid", sa.String(64), nullable=False),
        sa.Column("sr_capture_id", sa.String(128), nullable=False),
        sa.Column("observation_json", sa.Text(), nullable=False),
        sa.Column("operator", sa.String(512), nullable=True),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("capture_id", "context_id", "status", "patient_id"):
        op.create_index(f"ix_wound_measurement_{column}", "wound_measurement", [column])
    op.create_index(
        "ix_wound_measurement_sr_sop_instance_uid", "wound_measurement", ["sr_sop_instance_uid"]
    )
    op.create_index("ix_wound_measurement_sr_capture_id", "wound_measurement", ["sr_capture_id"])


def downgrade() -> None:
    op.drop_table("wound_measurement")
