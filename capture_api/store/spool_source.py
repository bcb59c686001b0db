"""Spooled bytes as a source read chunk by chunk: what the outbox streams to the archive.

A STOW-RS request used to read the whole DICOM object, then join it into a multipart body:
two more full copies of a 4-12 MB photo per delivery. A ``SpoolSource`` says how big it is
(the request's Content-Length) and gives its bytes in pieces, from a spooled file
(``FileSource``, ``SEND_CHUNK`` at a time) or from the database
(``capture_api.store.spool_blobs``, in the pieces it keeps).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from capture_api.store import captures, composed
from capture_api.store.composed import beside
from capture_api.store.db import Database, Transaction

log = logging.getLogger("capture.spool")

#: The piece of a spooled file one STOW-RS send reads. h11 copies each piece once more (it
#: joins it with its framing), so a 1 MB piece held 2 MB per send, in a malloc arena that
#: keeps what it grew to; 256 KB pieces cost no measurable CPU and, with the mapped photo
#: (``spool.mapped``), brought one upload at a time within 2x the photo in RSS (issue 13).
SEND_CHUNK = 256 * 1024


class SpoolSource(Protocol):
    """Spooled bytes of a known size, read in chunks (each call of ``chunks`` from the start)."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...

    def read(self) -> bytes: ...


@dataclass(frozen=True)
class FileSource:
    """A spooled file, read ``SEND_CHUNK`` bytes at a time when it is sent."""

    path: Path
    size: int

    def chunks(self) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            while chunk := handle.read(SEND_CHUNK):
                yield chunk

    def read(self) -> bytes:
        return self.path.read_bytes()


def file_source(path: str | Path | None) -> FileSource:
    """The spooled file at ``path``; raises ``OSError`` when it is not there."""
    found = Path(path or "")
    if not path or not found.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(found))
    return FileSource(found, found.stat().st_size)


def folder_source(path: str | None) -> SpoolSource:
    """The spooled file at ``path`` here, or the object it describes when it is a composed
    file (``store.composed``: its photo is the spool's file beside it)."""
    return composed.resolve(file_source(path), lambda name: file_source(beside(path, name)))


class SpoolReader(Protocol):
    """How the outbox reads the spool: a file here, or (``CAPTURE_SPOOL=database``) chunks
    another replica left in the database (``capture_api.store.spool_blobs.DatabaseSpool``)."""

    def source(self, path: str | None) -> SpoolSource:
        """The spooled bytes of ``path``; ``OSError`` when they are nowhere."""
        ...

    def restore(self, path: str | None) -> Path:
        """A file on this machine with the bytes of ``path`` (to encode a photo)."""
        ...

    def forget_in(self, tx: Transaction, paths: Sequence[str | None]) -> None:
        """Delete what the database keeps of these files, in ``tx``."""
        ...

    def tidy(self, grace: dt.timedelta) -> int:
        """Delete files of this machine no capture needs any more; how many."""
        ...


@dataclass(frozen=True)
class FolderReader:
    """The spool is the folder alone (``CAPTURE_SPOOL=folder``): ``root``, whose rows are in
    ``database``."""

    root: Path | None = None
    database: Database | None = None

    def source(self, path: str | None) -> SpoolSource:
        return folder_source(path)

    def restore(self, path: str | None) -> Path:
        return file_source(path).path

    def forget_in(self, tx: Transaction, paths: Sequence[str | None]) -> None:
        """Nothing of the folder's files is in the database."""

    def tidy(self, grace: dt.timedelta) -> int:
        """Delete what a crash left in the folder (``tidy_folder``): the files no capture row
        names any more (a half-written upload, a DICOM file whose encode never committed).
        Nothing without a folder and database (the tests' bare reader)."""
        if self.root is None or self.database is None:
            return 0
        database = self.database

        @functools.cache  # read once per tidy, not per batch: it reads every row not purged
        def named() -> frozenset[str]:
            return frozenset(captures.spooled_names(database))

        return tidy_folder(self.root, grace, lambda names: set(named().intersection(names)))


def tidy_folder(root: Path, grace: dt.timedelta, needed: Callable[[list[str]], set[str]]) -> int:
    """Delete the files under ``root`` older than ``grace`` whose names ``needed`` (asked a
    batch of names at a time) does not keep; how many went. ``grace`` covers files whose commit
    is still to come (an upload in progress, an encode before its row moves)."""
    cutoff = time.time() - grace.total_seconds()
    old = [path for path in root.rglob("*") if _older(path, cutoff)]
    gone, stuck, reason = 0, 0, ""
    for start in range(0, len(old), _TIDY_BATCH):
        batch = old[start : start + _TIDY_BATCH]
        kept = needed([path.name for path in batch])
        for path in batch:
            if path.name in kept:
                continue
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # one file we may not delete does not keep the rest
                stuck += 1
                reason = exc.strerror or type(exc).__name__
                continue
            gone += 1
    if stuck:
        log.warning(
            "the spool tidy could not delete %d files (%s): check the spool's owner", stuck, reason
        )
    return gone


#: Names looked up per query when tidying a folder.
_TIDY_BATCH = 500


def _older(path: Path, cutoff: float) -> bool:
    """A file (not a folder) last changed before ``cutoff``; False if it went meanwhile."""
    try:
        return path.is_file() and path.stat().st_mtime < cutoff
    except OSError:
        return False
