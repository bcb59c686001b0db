"""Engine, sessions and migrations for SQLite (default, WAL) and PostgreSQL (``DATABASE_URL``).

SQLite is tuned for a small single-node install: WAL so readers never block the writer,
``synchronous=FULL`` because a capture acknowledged with 202 must survive a power cut, and a
busy timeout so concurrent writers wait instead of failing.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, create_engine

_MIGRATIONS = Path(__file__).parent / "migrations"

#: The handle the rest of the application holds on the database. It is SQLAlchemy's ``Engine``,
#: but only ``capture_api.store`` may use it as one: everyone else passes it to the store's
#: query functions (docs/architecture.md: all SQL lives in ``store/``).
Database: TypeAlias = Engine
#: More to write in the transaction that commits a row (the spool's copy of the file the row
#: names, ``Spool.keep_in``): the row and what it depends on are durable together.
Alongside: TypeAlias = Callable[[Connection], None]


def ping(database: Database) -> None:
    """``SELECT 1``: raises whatever the driver raises when the database is not usable."""
    with database.connect() as connection:
        connection.execute(text("SELECT 1"))


def make_engine(url: str) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder when needed."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Every worker thread, request thread and event stream may hold a connection at once
        # while SQLite's one writer works: a pool smaller than that makes threads queue for
        # connections (30 s, then 500) behind threads that queue for the write lock.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=56,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def on_commit(engine: Engine, action: Callable[[Any], None]) -> None:
    """Call ``action(connection)`` at each commit made through ``engine`` (the commit
    counter of ``capture_api.observability.metrics``); registering it twice is harmless."""
    if not event.contains(engine, "commit", action):
        event.listen(engine, "commit", action)


def on_statement(engine: Engine, action: Callable[..., None]) -> None:
    """Call ``action`` before each SQL statement sent through ``engine`` (SQLAlchemy's
    ``before_cursor_execute``: one call per ``execute``, an ``executemany`` is one; the
    spool's COPY on the driver's own cursor is not seen); registering it twice is harmless."""
    if not event.contains(engine, "before_cursor_execute", action):
        event.listen(engine, "before_cursor_execute", action)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """A session that does not expire objects on commit (records are returned to callers)."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


def insert_once(engine: Engine, row: SQLModel) -> bool:
    """Insert ``row``; False when a unique constraint says it is there already (another
    replica queued the same work first)."""
    with session(engine) as s:
        return commit_new(s, row)


def commit_new(s: Session, row: SQLModel) -> bool:
    """Add ``row`` to ``s`` and commit; False (rolled back) when a unique constraint refuses
    it: a concurrent writer committed the same key first, and the caller decides what that
    means (a re-send, a taken number, the winner's row)."""
    s.add(row)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        return False
    return True


class Transaction:
    """One write transaction several store functions share (``write_transaction``).

    A state change and what it implies (its audit rows, the spool's bookkeeping, a wake-up of
    the workers) commit together or not at all: one commit, one fsync, instead of one each.
    ``after_commit`` runs work that must only happen once the change is durable (deleting
    spooled files, forwarding audit rows, waking threads of this process).
    """

    def __init__(self, engine: Engine, connection: Connection) -> None:
        self.engine = engine
        self.connection = connection
        self._after: list[Callable[[], None]] = []

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the transaction has committed (never if it rolls back)."""
        self._after.append(action)

    def _committed(self) -> None:
        for action in self._after:
            try:
                action()
            except Exception as exc:  # the change is committed: a follow-up must not undo it
                logging.getLogger("capture.db").warning(
                    "after-commit step failed (%s)", type(exc).__name__
                )


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Transaction]:
    """A write transaction: commits when the block ends, rolls back if it raises.

    SQLite takes the database's write lock first (``BEGIN IMMEDIATE``), so reads inside the
    block (the audit chain's head) see what the next writer will see; PostgreSQL row locks
    and the audit chain's advisory lock are taken by the statements themselves.
    """
    with engine.connect() as connection:
        if is_postgres(engine):
            connection.begin()
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        tx = Transaction(engine, connection)
        try:
            yield tx
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
    tx._committed()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once.

    PostgreSQL: a transaction-level advisory lock serialises the replicas. SQLite: a file lock
    beside the database.
    """
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        if is_postgres(engine):
            connection.execute(text("SELECT pg_advisory_xact_lock(7413042)"))
            _upgrade(config, connection)
        else:
            with _file_lock(engine):
                _upgrade(config, connection)


def _upgrade(config: Config, connection: Any) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
