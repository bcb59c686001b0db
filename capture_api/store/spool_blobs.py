"""Spooled bytes in PostgreSQL, so replicas share nothing but the database (issue 13).

``CAPTURE_SPOOL=database``: every file the spool makes durable under its final name (the photo
after its upload, the DICOM object after its encode, an SR or KOS document) is also written to
the ``spool_blob`` table, in 64 KiB chunks (``BLOB_CHUNK``) keyed by the file's name (a
SHA-256 of the capture's key and a suffix: the same on every replica, unlike the folder's
path). The photo and its DICOM object are written in the transaction that commits the row
naming them (``keep_in``: the new capture row, its move to ``encoded``), so on a database spool
a photo costs no commit more than on a folder; a document in a transaction of its own,
committed before its row. A replica that dies after answering 202 leaves its photos in the
database: another replica's worker takes them once their leases expire, and reads the bytes
from there (``source``), streamed 1 MiB per query into its STOW-RS request. The local
folder stays the fast path of the replica that wrote the file. A verified capture's chunks are
deleted in the transaction that records its verification (``forget_in``); each replica's idle
worker deletes its own files the database no longer keeps (``tidy``), whoever verified them.

``CAPTURE_SPOOL=folder`` (the default): the folder alone (``FolderReader``); several replicas
then need a shared file system for one to deliver the photos another accepted.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlmodel import col

from capture_api.store import composed
from capture_api.store.composed import beside
from capture_api.store.db import Database, Transaction
from capture_api.store.records import SpoolBlobRecord
from capture_api.store.spool import Spool, SpooledFile
from capture_api.store.spool_source import FileSource, SpoolSource, file_source, tidy_folder

#: One row of ``spool_blob``. Small, because every buffer a row passes through on its way to
#: PostgreSQL is as big as the row, and the connection's are kept: psycopg's COPY buffer and
#: libpq's output buffer (grown to the largest message, never shrunk), one pair per pooled
#: connection. With 1 MiB rows a replica grew 9.6 MB per concurrent upload of a 3.85 MB photo
#: (issue 13's goal: at most 2x the photo). Rows of any size cost one statement (``_copy_in``).
BLOB_CHUNK = 64 * 1024


#: Rows read per query when a file is read back from ``spool_blob`` (1 MiB): one query per
#: row cost about 60 round trips per 12 MP photo on the replica that delivers another's photos;
#: one query for the whole file would hold it all in the driver's buffers at once.
BLOB_ROWS_PER_READ = 16


@dataclass(frozen=True)
class BlobSource:
    """A spooled file kept in ``spool_blob``: its first row, read with its size (enough to
    tell a composed file from a whole one, ``composed.resolve``), then the rest
    ``BLOB_ROWS_PER_READ`` rows per query, a pooled connection for each, none held while
    the chunks are sent."""

    database: Database
    name: str
    size: int
    count: int
    first: bytes

    def chunks(self) -> Iterator[bytes]:
        yield self.first
        for start in range(1, self.count, BLOB_ROWS_PER_READ):
            wanted = range(start, min(start + BLOB_ROWS_PER_READ, self.count))
            with self.database.connect() as connection:
                rows = connection.execute(
                    select(col(SpoolBlobRecord.seq), col(SpoolBlobRecord.data))
                    .where(
                        col(SpoolBlobRecord.name) == self.name,
                        col(SpoolBlobRecord.seq) >= wanted.start,
                        col(SpoolBlobRecord.seq) < wanted.stop,
                    )
                    .order_by(col(SpoolBlobRecord.seq))
                ).all()
            if [seq for seq, _ in rows] != list(wanted):
                raise _lost(self.name, wanted)
            for _, data in rows:
                yield bytes(data)

    def read(self) -> bytes:
        return b"".join(self.chunks())


def _lost(name: str, rows: range) -> OSError:
    """An ``OSError`` whose ``strerror`` says which rows (the outbox shows it as the reason)."""
    return OSError(
        errno.EIO,
        f"the spooled file {name} lost rows {rows.start}-{rows.stop - 1} in the database "
        "(verified and deleted by another replica meanwhile?)",
    )


class DatabaseSpool(Spool):
    """A ``Spool`` that also keeps every final file in the database; a ``SpoolReader``."""

    def __init__(self, root: Path, database: Database) -> None:
        super().__init__(root)
        self.database = database

    def keep_in(self, connection: Connection, path: Path) -> None:
        with path.open("rb") as handle:
            _store_in(connection, path.name, iter(lambda: handle.read(BLOB_CHUNK), b""))

    def drop_in(self, connection: Connection, path: str | None) -> None:
        if path:
            connection.execute(
                delete(SpoolBlobRecord).where(col(SpoolBlobRecord.name) == Path(path).name)
            )

    def tidy(self, grace: dt.timedelta) -> int:
        """Delete this machine's spooled files no capture needs any more: older than
        ``grace`` and no longer kept in the database. How many went.

        The database is the record of what is needed: a file's chunks stay from the commit
        that names it until its capture is verified and purged (``forget_in``) or refused
        (``drop_in``). A replica that verifies a photo another replica accepted deletes the
        chunks, but not the files on the other machine's disk: before, the accepting replica
        kept them for good, 2 x the photo per photo the other delivered (issue 13). Also gone:
        what a crash left half-written (an upload's ``.part``, a ``.tmp-``), and the file of a
        row whose commit never came (``tidy_folder``).
        """
        return tidy_folder(self.root, grace, lambda names: kept_names(self.database, names))

    def write_bytes(self, target: Path, data: bytes) -> SpooledFile:
        written = super().write_bytes(target, data)
        pieces = (data[i : i + BLOB_CHUNK] for i in range(0, len(data), BLOB_CHUNK))
        _store(self.database, target.name, pieces)
        return written

    def source(self, path: str | None) -> SpoolSource:
        """The file here when this machine has it, else its chunks in the database; a
        composed file as the object it describes, its photo found the same way."""
        return composed.resolve(self._stored(path), lambda name: self._stored(beside(path, name)))

    def _stored(self, path: str | None) -> SpoolSource:
        try:
            return file_source(path)
        except OSError:
            found = blob_source(self.database, Path(path or "").name)
            if found is None:
                raise
            return found

    def restore(self, path: str | None) -> Path:
        """A file here with the bytes of ``path`` (a photo another replica accepted)."""
        found = self._stored(path)
        if isinstance(found, FileSource):
            return found.path
        name = Path(path or "").name
        local = self.root / name[:2] / name
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            for chunk in found.chunks():
                out.write(chunk)
        os.replace(tmp, local)
        return local

    def forget_in(self, tx: Transaction, paths: Sequence[str | None]) -> None:
        """Delete these files' chunks in ``tx`` (with the verification that frees them)."""
        names = [Path(p).name for p in paths if p]
        if names:
            tx.connection.execute(
                delete(SpoolBlobRecord).where(col(SpoolBlobRecord.name).in_(names))
            )


def kept_names(database: Database, names: Sequence[str]) -> set[str]:
    """Which of ``names`` the database keeps chunks of (by the primary key's first column)."""
    with database.connect() as connection:
        rows = connection.execute(
            select(col(SpoolBlobRecord.name)).where(
                col(SpoolBlobRecord.name).in_(names), col(SpoolBlobRecord.seq) == 0
            )
        ).scalars()
        return set(rows)


def blob_source(database: Database, name: str) -> BlobSource | None:
    """The chunks of ``name`` in the database, or None; its first row comes with its size."""
    first_row = (
        select(col(SpoolBlobRecord.data))
        .where(col(SpoolBlobRecord.name) == name, col(SpoolBlobRecord.seq) == 0)
        .scalar_subquery()
    )
    with database.connect() as connection:
        size, count, first = connection.execute(
            select(func.sum(func.length(col(SpoolBlobRecord.data))), func.count(), first_row).where(
                col(SpoolBlobRecord.name) == name
            )
        ).one()
    if not count:
        return None
    if first is None:
        raise _lost(name, range(0, 1))
    return BlobSource(database, name, int(size or 0), int(count), bytes(first))


def _store(database: Database, name: str, chunks: Iterable[bytes]) -> None:
    """Replace the chunks of ``name`` by ``chunks``, in one transaction (one commit)."""
    with database.begin() as connection:
        _store_in(connection, name, chunks)


def _store_in(connection: Connection, name: str, chunks: Iterable[bytes]) -> None:
    """Replace the chunks of ``name`` by ``chunks``, in ``connection``'s transaction."""
    connection.execute(delete(SpoolBlobRecord).where(col(SpoolBlobRecord.name) == name))
    if connection.dialect.name == "postgresql":
        _copy_in(connection, name, chunks)
        return
    for seq, chunk in enumerate(chunks):
        connection.execute(insert(SpoolBlobRecord), {"name": name, "seq": seq, "data": chunk})


def _copy_in(connection: Connection, name: str, chunks: Iterable[bytes]) -> None:
    """The rows of one file in one ``COPY ... FROM STDIN`` (binary), on the driver's
    connection in the same transaction. Why not INSERTs: one statement and round trip per
    row, so small rows cost CPU (256 KiB INSERTs: +10 ms per photo against 1 MiB, measured),
    where COPY streams rows of any size in one statement. SQLAlchemy has no COPY; psycopg's
    ``Copy`` is the driver's own (``write_row`` with the columns' binary types)."""
    driver = connection.connection.driver_connection  # psycopg.Connection, same transaction
    if driver is None:
        raise RuntimeError("the database connection is closed")
    statement = "COPY spool_blob (name, seq, data) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(["varchar", "int4", "bytea"])
        for seq, chunk in enumerate(chunks):
            copy.write_row((name, seq, chunk))
