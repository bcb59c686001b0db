"""Alembic environment: always run with the connection ``capture_api.store.db.migrate`` passes."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import capture_api.store.records  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through capture_api.store.db.migrate (or capture-api migrate)"
    )

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
