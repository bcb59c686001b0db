"""A database that has served a clinic for a while: many contexts, photos and audit events.

Used by ``bench/delivery_bench.py`` (a level with 100,000 photos held) and by
``tests/deliver/test_volume.py``. The rows are copies of what one real photo left behind (its
context, its capture row once verified, its first audit event), each with ids of its own, so
they carry every column the running schema has, whatever migration made it; the copies are
spread back in time, one minute apart, so "recently verified" means a few of them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def fill(
    database: Path, contexts: int, per_context: int, audit_per_photo: int, iss: str | None = None
) -> int:
    """Add ``contexts`` x ``per_context`` verified photos and their audit events; returns how
    many photos. Needs one verified photo in the database (the template)."""
    db = sqlite3.connect(database, timeout=30)
    try:

        def copy(table: str, count: int, made: dict[str, str], source: str) -> None:
            cols = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            values = ", ".join(made.get(c, f"t.{c}") for c in cols)
            db.execute(
                f"WITH RECURSIVE v(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM v WHERE n < {count})"
                f" INSERT INTO {table} ({', '.join(cols)}) SELECT {values} FROM v, ({source}) t"
            )

        opened = {"id": "printf('volume-context-%d', v.n)"}
        if iss is not None:
            opened["iss"] = "'" + iss.replace("'", "''") + "'"
        copy("encounter_context", contexts, opened, "SELECT * FROM encounter_context LIMIT 1")
        photos = contexts * per_context
        copy(
            "capture",
            photos,
            {
                "id": "printf('volume-photo-%d', v.n)",
                "context_id": f"printf('volume-context-%d', 1 + v.n % {contexts})",
                "sop_instance_uid": "printf('2.25.%d', v.n)",
                "created_at": "datetime(t.created_at, printf('-%d minutes', v.n))",
                "updated_at": "datetime(t.updated_at, printf('-%d minutes', v.n))",
                "verified_at": "datetime(t.verified_at, printf('-%d minutes', v.n))",
            },
            "SELECT * FROM capture WHERE status = 'verified' LIMIT 1",
        )
        copy(
            "audit_event",
            photos * audit_per_photo,
            {
                "id": "-v.n",  # before the real events: their chain goes on from them
                "prev_hash": "printf('volume-prev-%d', v.n)",
                "chain_hash": "printf('volume-chain-%d', v.n)",
            },
            "SELECT * FROM audit_event ORDER BY id LIMIT 1",
        )
        db.commit()
        return photos
    finally:
        db.close()
