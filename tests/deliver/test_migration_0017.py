"""Migration 0017: spooled bytes in PostgreSQL are stored uncompressed (storage EXTERNAL), so
the server no longer runs pglz over every photo; up, down and up again on both databases.

The oracle is PostgreSQL's own word for how it stored a value (``pg_column_compression``),
on a chunk that pglz does shrink (a DICOM file's zero preamble and header, as it begins)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from capture_api.store.db import is_postgres
from tests.privacy.test_migration import _migrate, engine

__all__ = ["engine"]  # the fixture: SQLite and PostgreSQL

#: 1 MiB that compresses well: what the first chunk of a DICOM file starts like, repeated.
COMPRESSIBLE = (b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" * 20) * 3000


def _stored_as(engine: Engine, name: str) -> tuple[str | None, bytes]:
    """How the chunk of ``name`` was stored (the compression method, or None), and its bytes."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO spool_blob (name, seq, data) VALUES (:name, 0, :data)"),
            {"name": name, "data": COMPRESSIBLE},
        )
        method = (
            connection.execute(
                text("SELECT pg_column_compression(data) FROM spool_blob WHERE name = :name"),
                {"name": name},
            ).scalar_one()
            if is_postgres(engine)
            else None
        )
        data = connection.execute(
            text("SELECT data FROM spool_blob WHERE name = :name"), {"name": name}
        ).scalar_one()
    return method, bytes(data)


def test_0017_up_down_up(engine: Engine) -> None:
    _migrate(engine, "upgrade", "head")
    assert _stored_as(engine, "after") == (None, COMPRESSIBLE)  # as it came
    _migrate(engine, "downgrade", "0016")
    method, data = _stored_as(engine, "before")
    assert data == COMPRESSIBLE
    if is_postgres(engine):
        assert method == "pglz"  # the default this migration turns off
    _migrate(engine, "upgrade", "head")
    assert _stored_as(engine, "again") == (None, COMPRESSIBLE)
