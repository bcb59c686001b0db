"""A tamper-evident audit trail, its ATNA forwarding queue, and launches bound to a browser.

* ``audit_event.prev_hash``, ``chain_hash``, ``chain_key``: each row carries the hash of the
  row before it and its own, ``chain_hash = HMAC-SHA256(key, prev_hash + row)``
  (``capture_api.audit.chain``); ``chain_key`` names the key (``sha256`` when none is set).
  A unique index on ``prev_hash`` makes the database refuse a second row after the same one:
  a fork of the chain (two writers that both read the same head) fails loudly instead of
  passing silently. Rows written before this revision keep empty columns and are reported by
  ``capture-api audit verify`` as written before the chain.
* ``audit_forward``: the audit rows not yet sent to the ATNA audit record repository (syslog),
  one row each, written in the audit row's own transaction and deleted once sent; what is
  left at a restart is sent again (``owner``: the process that queued it, as a lease names
  one, so a restarted process on the same machine takes up a dead one's rows at once).
* ``launch_state.browser_binding``: the SHA-256 of the pre-login cookie of the browser that
  started the SMART launch; the callback must come from that browser (login CSRF).

Plain ``ADD COLUMN``s: SQLite adds them in place, so the append-only triggers of 0006 stay.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_CHAIN = (("prev_hash", 64), ("chain_hash", 64), ("chain_key", 16))


def upgrade() -> None:
    for name, width in _CHAIN:
        op.add_column("audit_event", sa.Column(name, sa.String(width), nullable=True))
    op.create_index("ux_audit_event_prev_hash", "audit_event", ["prev_hash"], unique=True)
    op.create_table(
        "audit_forward",
        sa.Column(
            "audit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
        ),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
    )
    op.add_column("launch_state", sa.Column("browser_binding", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop what was added. On SQLite the columns go by ``ALTER TABLE ... DROP COLUMN``
    (3.35+): a batch rebuild would drop the append-only triggers with the old table."""
    op.drop_table("audit_forward")
    op.drop_index("ux_audit_event_prev_hash", table_name="audit_event")
    for name, _ in reversed(_CHAIN):
        op.execute(f"ALTER TABLE audit_event DROP COLUMN {name}")
    op.execute("ALTER TABLE launch_state DROP COLUMN browser_binding")
