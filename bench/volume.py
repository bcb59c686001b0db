"""A database that has served a clinic for a while: many contexts, photos and audit events.

Used by ``bench/delivery_bench.py`` (a level with 100,000 photos held) and by
``tests/deliver/test_volume.py`` (on SQLite and on PostgreSQL). The rows are copies of what
one real photo left behind (its context, its capture row once verified, its first audit
event), each with ids of its own, so they carry every column the running schema has, whatever
migration made it; the copies are spread back in time, one minute apart, so "recently
verified" means a few of them. Each table is copied by one ``INSERT ... SELECT`` in the
database itself: 100,000 rows in about a second, where ORM inserts would take minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class _Dialect:
    """The few pieces of SQL the two databases spell differently."""

    #: rows numbered ``v.n`` from 1 to ``{count}``: a FROM item (and a WITH clause before)
    numbered: tuple[str, str]
    #: ``{column}`` of the template row, ``v.n`` minutes earlier
    earlier: str


_DIALECTS = {
    "sqlite": _Dialect(
        numbered=(
            "WITH RECURSIVE v(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM v WHERE n < {count}) ",
            "v",
        ),
        earlier="datetime(t.{column}, '-' || v.n || ' minutes')",
    ),
    "postgresql": _Dialect(
        numbered=("", "generate_series(1, {count}) AS v(n)"),
        earlier="t.{column} - v.n * interval '1 minute'",
    ),
}


def fill(
    database_url: str, contexts: int, per_context: int, audit_per_photo: int, iss: str | None = None
) -> int:
    """Add ``contexts`` x ``per_context`` verified photos and their audit events to the
    database at ``database_url`` (SQLite or PostgreSQL); returns how many photos. Needs one
    verified photo in the database (the template). PostgreSQL is analysed afterwards, as its
    autovacuum would; SQLite gets what the service's own upkeep gives it."""
    sqlite = make_url(database_url).get_backend_name() == "sqlite"
    # SQLite: wait for the running service's writes rather than fail on its lock
    engine = create_engine(database_url, connect_args={"timeout": 30} if sqlite else {})
    try:
        dialect = _DIALECTS[engine.dialect.name]
        photos = contexts * per_context
        with engine.begin() as db:
            opened = {"id": "'volume-context-' || v.n"}
            if iss is not None:
                opened["iss"] = ":iss"
            _copy(db, dialect, "encounter_context", contexts, opened, "", iss=iss)
            earlier = {c: dialect.earlier.format(column=c) for c in ("created_at", "updated_at")}
            made = {
                "id": "'volume-photo-' || v.n",
                "context_id": f"'volume-context-' || (1 + v.n % {contexts})",
                "sop_instance_uid": "'2.25.' || v.n",
                "verified_at": dialect.earlier.format(column="verified_at"),
                **earlier,
            }
            _copy(db, dialect, "capture", photos, made, "WHERE status = 'verified'")
            chain = {
                "id": "-v.n",  # before the real events: their chain goes on from them
                "prev_hash": "'volume-prev-' || v.n",
                "chain_hash": "'volume-chain-' || v.n",
            }
            _copy(db, dialect, "audit_event", photos * audit_per_photo, chain, "")
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                db.execute(text("ANALYZE"))
        return photos
    finally:
        engine.dispose()


def _copy(
    db: Connection,
    dialect: _Dialect,
    table: str,
    count: int,
    made: dict[str, str],
    where: str,
    **parameters: Any,
) -> None:
    """``count`` copies of ``table``'s first row (``where``), with the columns ``made`` made
    from the row number ``v.n``, the template ``t`` and the bound ``parameters``."""
    quote = db.dialect.identifier_preparer.quote
    columns = [str(c["name"]) for c in inspect(db).get_columns(table)]
    values = ", ".join(made.get(c, f"t.{quote(c)}") for c in columns)
    before, source = (part.format(count=count) for part in dialect.numbered)
    db.execute(
        text(
            f"{before}INSERT INTO {table} ({', '.join(map(quote, columns))}) SELECT {values}"
            f" FROM {source}, (SELECT * FROM {table} {where} ORDER BY 1 LIMIT 1) t"
        ),
        parameters,
    )
