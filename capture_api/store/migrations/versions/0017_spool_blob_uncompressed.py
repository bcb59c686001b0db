"""Spooled bytes in PostgreSQL are stored as they are, not compressed first (issue 13).

``spool_blob.data`` holds JPEG photos and the DICOM objects that wrap them: entropy-coded
data that no general-purpose compressor shrinks. PostgreSQL's default for a ``bytea`` column
(storage EXTENDED) still runs pglz over each 1 MiB chunk whose first kilobyte compresses (a
photo's or a DICOM file's headers do) before it gives up and stores the chunk as it came.
Storage EXTERNAL keeps the chunks out of line, uncompressed: on this machine it halved the
server's CPU for storing a 3.85 MB photo (31.5 to 16.0 ms), out of about 117 ms per photo
the replicas level of ``make bench`` measured before. Rows written before keep their form
(both read the same). SQLite has no such setting: nothing to do there.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE spool_blob ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE spool_blob ALTER COLUMN data SET STORAGE EXTENDED")
