"""The full audit trail: BALP/DICOM codes, the entities an event touched, and append-only rows.

* New nullable columns on ``audit_event`` (rows from 0003 keep working: their codes are derived
  from ``action`` when exported): the BALP action (C/R/U/D/E), the DICOM EventID and
  EventTypeCode, purpose of use, the patient's issuer, the context, capture and SOP Instance
  UID the event touched, the request's method, route template, status, client address, a hash
  of its user agent, its X-Request-Id, the peer (archive or EHR) and the recording host.
* ``id`` is 64-bit on PostgreSQL (SQLite's rowid already is): every request is a row.
* Append-only, enforced by the database itself: triggers refuse UPDATE and DELETE (and
  TRUNCATE on PostgreSQL) of ``audit_event`` rows, whoever sends them. A database owner can
  still drop a trigger: run capture as a role that does not own the table where that matters
  (docs/audit.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("balp_action", sa.String(1)),
    ("event_code", sa.String(16)),
    ("event_type", sa.String(16)),
    ("purpose", sa.String(64)),
    ("patient_issuer", sa.String(128)),
    ("context_id", sa.String(64)),
    ("capture_id", sa.String(128)),
    ("sop_instance_uid", sa.String(64)),
    ("study_uid", sa.String(64)),
    ("method", sa.String(8)),
    ("route", sa.String(256)),
    ("http_status", sa.Integer()),
    ("client_ip", sa.String(64)),
    ("user_agent_hash", sa.String(16)),
    ("request_id", sa.String(64)),
    ("peer", sa.String(512)),
    ("node", sa.String(128)),
)

#: The message both databases answer a refused UPDATE/DELETE with.
REFUSAL = "audit_event is append-only: audit rows are never changed or deleted"

_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
)

_POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
END
$$"""

#: Every request is a row: a 32-bit id would run out after ~2 billion events (about eight months
#: at 100 requests a second), so PostgreSQL's id becomes 64-bit (SQLite's already is).
_POSTGRES_BIGINT = (
    "ALTER TABLE audit_event ALTER COLUMN id TYPE BIGINT",
    """DO $$ BEGIN
    EXECUTE format('ALTER SEQUENCE %s AS BIGINT', pg_get_serial_sequence('audit_event', 'id'));
END $$""",
)

_POSTGRES_TRIGGERS = (
    """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()""",
)


def upgrade() -> None:
    for name, kind in _COLUMNS:
        op.add_column("audit_event", sa.Column(name, kind, nullable=True))
    op.create_index("ix_audit_event_context_id", "audit_event", ["context_id"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*_POSTGRES_BIGINT, _POSTGRES_FUNCTION):
            op.execute(statement)
        for statement in _POSTGRES_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    """Drop the triggers and columns (a PostgreSQL id stays 64-bit: ids may not fit back)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
    op.drop_index("ix_audit_event_context_id", table_name="audit_event")
    with op.batch_alter_table("audit_event") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
