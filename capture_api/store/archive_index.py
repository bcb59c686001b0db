"""The local archive's index: one SQLite file inside the archive folder, beside the files.

``capture_api.deliver.local_archive`` keeps every stored instance as a Part 10 file plus a
DICOMDIR. Reading the DICOMDIR (or the files' headers) to answer "is it there?", "what are
this patient's photos?" or "which one is restricted?" costs time in proportion to the
archive, so this index answers them instead: one row per instance with what the views ask
for (UIDs, patient and issuers, modality, body site, laterality, acquisition time, series
description, image comment, the sensitivity private block, Admission ID, Study Description),
its File ID, and its directory records already encoded, so a new DICOMDIR is a concatenation
(see ``local_archive._dicomdir``).

Why SQLite in the folder (``<root>/.capture-index.sqlite``, WAL):

* the folder stays self-contained: copy or back it up and the index goes with it, and
  ``capture-api archive rebuild`` recreates the index from the files when it is lost;
* several processes on one machine (API replicas, ``capture-api worker``) share one index:
  writers queue on SQLite's lock (``BEGIN IMMEDIATE`` with a busy timeout), readers never
  wait (WAL). WAL needs shared memory, so the folder must be on a local file system, not NFS;
* ``synchronous=FULL``: an instance the archive acknowledged stays indexed after a power cut.

It uses the standard library's ``sqlite3``, not the service's SQLAlchemy engine: the index
belongs to the folder, not to the service's database (which may be PostgreSQL), and a store
is three small statements.

Generations: every committed change (a store, a rebuild) takes the next ``generation``;
an instance row keeps the generation that added it, and ``dicomdir_generation`` says which
generation the DICOMDIR on disk shows. An instance is in the DICOMDIR when its generation
is not above ``dicomdir_generation``.

Every ``sqlite3.Error`` leaves this module as ``ArchiveUnavailable`` with a message an
operator can act on (a damaged index names the rebuild command).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from capture_api.exceptions import ArchiveUnavailable

INDEX_NAME = ".capture-index.sqlite"
SCHEMA_VERSION = 1
#: How long a writer waits for another one (a rebuild of a large folder holds the lock).
BUSY_TIMEOUT_S = 60.0
#: File ID components we create: 2 letters and 6 digits, 8 characters (PS3.10 8.2).
_PREFIXES = ("PT", "ST", "SE", "IM")
_BATCH = 500  # SQLite allows 999 host parameters per statement (older builds)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    id INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL UNIQUE,
    dir TEXT,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    patient INTEGER NOT NULL REFERENCES patients(id),
    study_uid TEXT NOT NULL,
    dir TEXT,
    record BLOB NOT NULL,
    UNIQUE (patient, study_uid)
);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    study INTEGER NOT NULL REFERENCES studies(id),
    series_uid TEXT NOT NULL,
    dir TEXT,
    record BLOB NOT NULL,
    UNIQUE (study, series_uid)
);
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY,
    series INTEGER NOT NULL REFERENCES series(id),
    file_id TEXT NOT NULL UNIQUE,
    generation INTEGER NOT NULL,
    record BLOB NOT NULL,
    sop_instance_uid TEXT NOT NULL UNIQUE,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    issuers TEXT NOT NULL,
    modality TEXT,
    body_site_code TEXT,
    body_site_meaning TEXT,
    laterality TEXT,
    acquired TEXT,
    acquired_key TEXT NOT NULL,
    description TEXT,
    comment TEXT,
    marked INTEGER NOT NULL,
    confidentiality TEXT,
    level TEXT,
    admission_id TEXT,
    study_description TEXT
);
CREATE INDEX IF NOT EXISTS instances_by_patient ON instances (patient_id, acquired_key);
CREATE INDEX IF NOT EXISTS instances_by_series ON instances (series);
"""


# --- what the index holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the index keeps about one instance, as text from its header (None when absent).

    ``acquired_key`` sorts acquisition moments (UTC, ISO form; "" when unknown);
    ``issuers`` are the Issuer of Patient ID and the qualifiers' Universal Entity IDs;
    ``marked`` says the instance carries capture's sensitivity private block, whose
    Confidentiality code and level text are ``confidentiality`` and ``level``.
    """

    sop_instance_uid: str
    study_uid: str
    series_uid: str
    patient_id: str
    issuers: tuple[str, ...] = ()
    modality: str | None = None
    body_site_code: str | None = None
    body_site_meaning: str | None = None
    laterality: str | None = None
    acquired: str | None = None
    acquired_key: str = ""
    description: str | None = None
    comment: str | None = None
    marked: bool = False
    confidentiality: str | None = None
    level: str | None = None
    admission_id: str | None = None
    study_description: str | None = None


_FACTS = tuple(f.name for f in fields(Facts))
_SELECT = f"SELECT file_id, generation, {', '.join(_FACTS)} FROM instances"


#: The encoded PATIENT, STUDY or SERIES directory record of an instance (PS3.3 F.5), by
#: level (0, 1, 2); asked for only when the index has no row for that entity yet.
UpperRecord = Callable[[int], bytes]


@dataclass(frozen=True)
class Held:
    """An indexed instance: its facts, its File ID and the generation that added it."""

    facts: Facts
    file_id: tuple[str, ...]
    generation: int


@dataclass(frozen=True)
class Tree:
    """Everything a DICOMDIR is made of, read in one snapshot (rows in the order added)."""

    generation: int
    fileset_uid: str
    patients: list[tuple[int, bytes]]  # (id, record)
    studies: list[tuple[int, int, bytes]]  # (id, patient id, record)
    series: list[tuple[int, int, bytes]]  # (id, study id, record)
    images: list[tuple[int, bytes]]  # (series id, record)


@dataclass(frozen=True)
class Generations:
    """The index's last change, and the change the DICOMDIR on disk shows."""

    current: int
    in_dicomdir: int


#: Is this File ID (or folder) already used on disk? Asked before a name is given out.
Taken = Callable[[tuple[str, ...]], bool]


# --- the index --------------------------------------------------------------------------------


class ArchiveIndex:
    """The index file of one archive folder; one SQLite connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()

    def open(self, new_fileset_uid: Callable[[], str]) -> None:
        """Create the schema if the file is new; refuse a file another version wrote."""
        with self._translated():
            conn = self._conn()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ArchiveUnavailable(
                    f"the local archive index {self.path} was written by a newer capture "
                    f"(schema {version}): run this version's `capture-api archive rebuild`"
                )
            if version == SCHEMA_VERSION:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                defaults = [
                    ("generation", "0"),
                    ("dicomdir_generation", "0"),
                    ("fileset_uid", new_fileset_uid()),
                ]
                conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", defaults)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    def check(self) -> None:
        """Raise ``ArchiveUnavailable`` unless SQLite finds the file intact (quick_check)."""
        with self._translated():
            (result,) = self._conn().execute("PRAGMA quick_check").fetchone()
        if result != "ok":
            raise ArchiveUnavailable(f"the local archive index {self.path} is damaged: {result}")

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # --- reading ------------------------------------------------------------------------------

    def lookup(self, sop_instance_uid: str) -> Held | None:
        with self._translated():
            row = (
                self._conn()
                .execute(f"{_SELECT} WHERE sop_instance_uid = ?", (sop_instance_uid,))
                .fetchone()
            )
        return _held(row) if row else None

    def lookup_many(self, sop_instance_uids: Iterable[str]) -> dict[str, Held]:
        wanted = sorted(set(sop_instance_uids))
        found: dict[str, Held] = {}
        with self._translated():
            conn = self._conn()
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                marks = ", ".join("?" * len(batch))
                query = f"{_SELECT} WHERE sop_instance_uid IN ({marks})"
                for row in conn.execute(query, batch):
                    held = _held(row)
                    found[held.facts.sop_instance_uid] = held
        return found

    def priors(
        self,
        patient_id: str,
        modality: str,
        issuer: str | None,
        body_site_code: str | None,
        limit: int,
    ) -> list[Held]:
        """The patient's instances of one modality, newest acquisition first."""
        query = f"""{_SELECT}
            WHERE patient_id = :patient AND modality = :modality
              AND (:site IS NULL OR body_site_code = :site)
              AND (:issuer IS NULL
                   OR EXISTS (SELECT 1 FROM json_each(issuers) WHERE value = :issuer))
            ORDER BY acquired_key DESC, id
            LIMIT :limit"""
        params = {
            "patient": patient_id,
            "modality": modality,
            "site": body_site_code,
            "issuer": issuer,
            "limit": max(limit, 0),
        }
        with self._translated():
            return [_held(row) for row in self._conn().execute(query, params)]

    def count(self) -> int:
        with self._translated():
            return int(self._conn().execute("SELECT count(*) FROM instances").fetchone()[0])

    def file_ids(self) -> set[tuple[str, ...]]:
        with self._translated():
            rows = self._conn().execute("SELECT file_id FROM instances").fetchall()
        return {_split(r[0]) for r in rows}

    def generations(self) -> Generations:
        with self._translated():
            meta = dict(self._conn().execute("SELECT key, value FROM meta").fetchall())
        return Generations(int(meta["generation"]), int(meta["dicomdir_generation"]))

    def fileset_uid(self) -> str:
        """The File-set UID the DICOMDIR carries (its Media Storage SOP Instance UID)."""
        with self._translated():
            row = self._conn().execute("SELECT value FROM meta WHERE key = 'fileset_uid'")
            found = row.fetchone()
        return str(found[0])

    def tree(self) -> Tree:
        """One consistent snapshot of every record (a read transaction: WAL, no waiting)."""
        with self._translated():
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                return Tree(
                    generation=int(meta["generation"]),
                    fileset_uid=str(meta["fileset_uid"]),
                    patients=conn.execute("SELECT id, record FROM patients ORDER BY id").fetchall(),
                    studies=conn.execute(
                        "SELECT id, patient, record FROM studies ORDER BY id"
                    ).fetchall(),
                    series=conn.execute(
                        "SELECT id, study, record FROM series ORDER BY id"
                    ).fetchall(),
                    images=conn.execute(
                        "SELECT series, record FROM instances ORDER BY id"
                    ).fetchall(),
                )
            finally:
                conn.execute("COMMIT")

    # --- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[IndexWriter]:
        """A write transaction (``BEGIN IMMEDIATE``): committed when the block ends normally."""
        with self._translated():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield IndexWriter(conn)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    def set_in_dicomdir(self, generation: int) -> None:
        """Record that the DICOMDIR on disk now shows ``generation`` (never goes back)."""
        with self.writing() as tx:
            tx.set_in_dicomdir(generation)

    def set_fileset_uid(self, uid: str) -> None:
        with self.writing() as tx:
            tx.conn.execute("UPDATE meta SET value = ? WHERE key = 'fileset_uid'", (uid,))

    # --- connections --------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:  # forked: the parent's connections are not ours to use
            self._pid, self._connections, self._local = os.getpid(), [], threading.local()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """SQLite's errors in words an operator can act on (the one place they are caught)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(_message(self.path, exc)) from exc


class IndexWriter:
    """The statements of one write transaction (see ``ArchiveIndex.writing``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._generation: int | None = None

    @property
    def generation(self) -> int:
        """The generation this transaction's changes take (taken on first use)."""
        if self._generation is None:
            row = self.conn.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation' "
                "RETURNING value"
            ).fetchone()
            self._generation = int(row[0])
        return self._generation

    def held(self, sop_instance_uid: str) -> Held | None:
        row = self.conn.execute(
            f"{_SELECT} WHERE sop_instance_uid = ?", (sop_instance_uid,)
        ).fetchone()
        return _held(row) if row else None

    def place(
        self,
        facts: Facts,
        upper: UpperRecord,
        taken: Taken,
        file_id: tuple[str, ...] | None = None,
    ) -> tuple[int, tuple[str, ...]]:
        """The series row of the instance (made with its patient and study when new) and its
        File ID: ``file_id`` when given (a file found on disk), else a new, free one.

        New names follow pydicom's File-set layout ``PTnnnnnn/STnnnnnn/SEnnnnnn/IMnnnnnn``,
        numbered from the count of siblings and moved on while a name is used, in the index
        or on disk (a file added or deleted by hand never makes a store overwrite another).
        """
        found = file_id if file_id is not None and len(file_id) == 4 else (None,) * 4
        patient, pdir = self._entity(
            "patients", "patient_id", facts.patient_id, None, lambda: upper(0), found[0]
        )
        study, sdir = self._entity(
            "studies",
            "study_uid",
            facts.study_uid,
            ("patient", patient),
            lambda: upper(1),
            found[1],
        )
        series, sedir = self._entity(
            "series", "series_uid", facts.series_uid, ("study", study), lambda: upper(2), found[2]
        )
        if file_id is not None:
            return series, file_id
        pdir = pdir or self._name_dir("patients", None, (), taken)
        self._set_dir("patients", patient, pdir)
        sdir = sdir or self._name_dir("studies", ("patient", patient), (pdir,), taken)
        self._set_dir("studies", study, sdir)
        sedir = sedir or self._name_dir("series", ("study", study), (pdir, sdir), taken)
        self._set_dir("series", series, sedir)
        return series, self._name_image(series, (pdir, sdir, sedir), taken)

    def insert(self, facts: Facts, series: int, file_id: tuple[str, ...], record: bytes) -> None:
        values = list(astuple(facts))
        values[_FACTS.index("issuers")] = json.dumps(list(facts.issuers))
        values[_FACTS.index("marked")] = int(facts.marked)
        marks = ", ".join("?" * (4 + len(_FACTS)))
        self.conn.execute(
            f"INSERT INTO instances (series, file_id, generation, record, {', '.join(_FACTS)}) "
            f"VALUES ({marks})",
            (series, _join(file_id), self.generation, record, *values),
        )

    def clear(self) -> set[tuple[str, ...]]:
        """Forget every instance (a rebuild); returns the File IDs that were indexed."""
        held = {_split(r[0]) for r in self.conn.execute("SELECT file_id FROM instances")}
        for table in ("instances", "series", "studies", "patients"):
            self.conn.execute(f"DELETE FROM {table}")  # children first: foreign keys
        return held

    def set_in_dicomdir(self, generation: int) -> None:
        self.conn.execute(
            "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) "
            "WHERE key = 'dicomdir_generation'",
            (generation,),
        )

    # --- File ID names ------------------------------------------------------------------------

    def _entity(
        self,
        table: str,
        key: str,
        value: str,
        parent: tuple[str, int] | None,
        record: Callable[[], bytes],
        found_dir: str | None,
    ) -> tuple[int, str | None]:
        """(id, folder name) of the patient/study/series row, inserted when new."""
        where, params = f"{key} = ?", list[object]([value])
        if parent is not None:
            where, params = f"{where} AND {parent[0]} = ?", [value, parent[1]]
        row = self.conn.execute(f"SELECT id, dir FROM {table} WHERE {where}", params).fetchone()
        if row is not None:
            return int(row[0]), row[1]
        columns = [key, "record", "dir"] + ([parent[0]] if parent else [])
        values: list[object] = [value, record(), found_dir] + ([parent[1]] if parent else [])
        cursor = self.conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(values))})",
            values,
        )
        return int(cursor.lastrowid or 0), found_dir

    def _set_dir(self, table: str, row_id: int, name: str) -> None:
        self.conn.execute(
            f"UPDATE {table} SET dir = ? WHERE id = ? AND dir IS NULL", (name, row_id)
        )

    def _name_dir(
        self, table: str, parent: tuple[str, int] | None, path: tuple[str, ...], taken: Taken
    ) -> str:
        """A folder name for a patient, study or series, unused among its siblings and on disk."""
        siblings = f"{parent[0]} = {int(parent[1])}" if parent else "1"
        (count,) = self.conn.execute(
            f"SELECT count(*) FROM {table} WHERE {siblings} AND dir IS NOT NULL"
        ).fetchone()

        def used(name: str) -> bool:
            if taken((*path, name)):
                return True
            query = f"SELECT 1 FROM {table} WHERE {siblings} AND dir = ?"
            return self.conn.execute(query, (name,)).fetchone() is not None

        return _first_free(_PREFIXES[len(path)], int(count), used)

    def _name_image(self, series: int, path: tuple[str, ...], taken: Taken) -> tuple[str, ...]:
        """A file name in the series' folder, unused in the index and on disk."""
        (count,) = self.conn.execute(
            "SELECT count(*) FROM instances WHERE series = ?", (series,)
        ).fetchone()

        def used(name: str) -> bool:
            if taken((*path, name)):
                return True
            query = "SELECT 1 FROM instances WHERE file_id = ?"
            return self.conn.execute(query, (_join((*path, name)),)).fetchone() is not None

        return (*path, _first_free("IM", int(count), used))


# --- helpers ----------------------------------------------------------------------------------


def _first_free(prefix: str, start: int, used: Callable[[str], bool]) -> str:
    number = start
    while used(name := f"{prefix}{number:06d}"):
        number += 1
    if len(name) > 8:
        raise ArchiveUnavailable(f"no free File ID left after {prefix}999999")
    return name


def _held(row: Sequence[object]) -> Held:
    values = dict(zip(_FACTS, row[2:], strict=True))
    values["issuers"] = tuple(json.loads(str(values["issuers"])))
    values["marked"] = bool(values["marked"])
    return Held(Facts(**values), _split(str(row[0])), int(str(row[1])))  # type: ignore[arg-type]


def _join(file_id: Sequence[str]) -> str:
    return "/".join(file_id)


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split("/"))


def _message(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in text or "malformed" in text or "corrupt" in text
    ):
        return (
            f"the local archive index {path} is damaged ({text}): "
            "run `capture-api archive rebuild` to recreate it from the files"
        )
    if "disk is full" in text or "database or disk is full" in text:
        return f"the local archive folder {path.parent} is on a full disk: free space, then retry"
    if "locked" in text or "busy" in text:
        return f"the local archive index {path} stayed locked by another process ({text})"
    if "readonly" in text or "unable to open" in text:
        return f"the local archive index {path} cannot be written ({text}): check the folder"
    return f"the local archive index {path} cannot be used ({text})"


def move_aside(path: Path) -> Path:
    """Rename a damaged index (and its WAL/shm files) out of the way; returns the new name."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(aside.with_name(aside.name + suffix))
    return aside
