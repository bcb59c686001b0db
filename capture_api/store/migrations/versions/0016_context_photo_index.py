"""A photo is found from its own rows at any volume (issue 13: volume is correctness).

The phone's hot reads (a context's photos, their count for the next instance number, the
event stream's recently changed stamps) filter on ``context_id`` and ``object_kind``. With
one index on each, SQLite (no statistics) took ``ix_capture_object_kind``: every photo of
every context, a full scan per upload and per event-stream look; 35 ms of CPU each with
100,000 photos held. One index on ``(context_id, object_kind, updated_at)`` answers all three
from a context's own rows. The index on ``object_kind`` alone goes: three values, it never
narrows a search, and its presence is what misled the planner.

Two more looks ran over every photo ever verified, at every pass of a worker: the notifier's
look for photos without their chart rows (now the recently verified ones: ``status,
verified_at``) and the purge of spooled bytes kept past ``CAPTURE_SPOOL_RETENTION_SECONDS``
(the photos whose bytes are still kept: ``spool_deleted_at, status, verified_at``; all three
terms, or SQLite takes the other index and reads every verified photo). The look for wound
Observations that became due reads the photo resources sent recently:
``notification (status, updated_at)``. The index on ``wound_measurement.status`` goes, for
the same reason as the one on ``object_kind``: two values ("recorded" nearly always), and
SQLite took it over ``capture_id``, ``sr_capture_id`` or ``patient_id`` in the queries that
name the current measurement, reading every measurement ever recorded.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_capture_context_kind_updated": ["context_id", "object_kind", "updated_at"],
    "ix_capture_status_verified": ["status", "verified_at"],
    "ix_capture_spool_kept": ["spool_deleted_at", "status", "verified_at"],
}


def upgrade() -> None:
    # if_not_exists: a large PostgreSQL table may have had them built beforehand, CONCURRENTLY
    # (docs/deployment.md, Upgrades).
    for name, columns in INDEXES.items():
        op.create_index(name, "capture", columns, if_not_exists=True)
    op.drop_index("ix_capture_object_kind", table_name="capture", if_exists=True)
    op.create_index(
        "ix_notification_status_updated",
        "notification",
        ["status", "updated_at"],
        if_not_exists=True,
    )
    op.drop_index("ix_wound_measurement_status", table_name="wound_measurement", if_exists=True)


def downgrade() -> None:
    op.create_index("ix_wound_measurement_status", "wound_measurement", ["status"])
    op.drop_index("ix_notification_status_updated", table_name="notification")
    op.create_index("ix_capture_object_kind", "capture", ["object_kind"])
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="capture")
