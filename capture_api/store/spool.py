"""Durable files for photos and DICOM objects between "202 Accepted" and "verified".

A clinician's photo must survive a crash or power cut once we have said 202, so every file is
written to a temporary name, fsync'd, renamed into place and its folder fsync'd (the rename
itself is only durable once the directory entry is). Uploads are streamed in chunks: a 48 MP
photo is never held in memory just to be saved.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from capture_api.exceptions import ImageTooLarge
from capture_api.store import composed
from capture_api.store.composed import beside
from capture_api.store.spool_source import SpoolSource, folder_source

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from capture_api.store.records import CaptureRecord

_R = TypeVar("_R")

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SpooledFile:
    """A file safely on disk, with what we learnt while writing it."""

    path: Path
    size: int
    sha256: str


class Spool:
    """One folder of durable files, named by the caller's (hashed) keys."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str, suffix: str) -> Path:
        """A file name derived from ``key`` (a client id must never become a path)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}{suffix}"

    def write_stream(self, target: Path, source: BinaryIO, max_bytes: int) -> SpooledFile:
        """Copy ``source`` to ``target`` durably, refusing more than ``max_bytes``."""
        return self._write(target, _chunks(source), max_bytes)

    def write_bytes(self, target: Path, data: bytes) -> SpooledFile:
        """Write ``data`` to ``target`` durably."""
        return self._write(target, [data], len(data))

    def write_with(self, target: Path, writer: Callable[[BinaryIO], None]) -> SpooledFile:
        """Durably write at ``target`` what ``writer`` writes to a file object (``write_with``).

        Here only: a spool that keeps its files elsewhere too (``DatabaseSpool``) copies the
        DICOM file there in the transaction that commits its row (``keep_in``).
        """
        return write_with(target, writer)

    def temporary(self) -> Path:
        """A fresh path in the spool for an upload whose key is not decided yet."""
        fd, name = tempfile.mkstemp(dir=self.root, prefix="upload-", suffix=".part")
        os.close(fd)
        return Path(name)

    def source(self, path: str | None) -> SpoolSource:
        """The spooled bytes of ``path`` on this machine (``OSError`` when not here); a
        ``DatabaseSpool`` also finds what another replica left in the database. A composed
        file (``write_composed``) reads as the object it describes."""
        return folder_source(path)

    def write_composed(
        self, target: Path, pieces: Sequence[composed.Piece], photo: Path
    ) -> SpooledFile:
        """Durably write at ``target`` an object made of literal bytes and ranges of the
        spooled file ``photo`` (``store.composed``): the photo's bytes are not written again.
        The photo must stay in the spool as long as the object (its capture names both)."""
        if Path(beside(target, photo.name)).resolve() != photo.resolve():
            raise ValueError(f"{photo} is not in the spool beside {target}")
        data = composed.encode(pieces, photo.name)
        return self._write(target, [data], len(data))

    def keep_in(self, connection: Connection, path: Path) -> None:
        """Keep the spooled file ``path`` wherever else this spool keeps files, in
        ``connection``'s transaction: the one that commits the row naming the file, so the row
        and its bytes are durable together (one commit). The folder keeps nothing else; a
        ``DatabaseSpool`` copies the file into the database."""

    def drop_in(self, connection: Connection, path: str | None) -> None:
        """Delete, in ``connection``'s transaction, what ``keep_in`` kept elsewhere of
        ``path`` (a refused photo: the row that named it no longer does)."""

    def move(self, source: Path, target: Path) -> Path:
        """Rename within the spool (same file system: atomic), durably."""
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)
        return target

    @staticmethod
    def delete(path: Path | str | None) -> None:
        """Remove a spooled file; a missing one is already gone, which is fine."""
        if path:
            Path(path).unlink(missing_ok=True)

    def _write(self, target: Path, chunks: Iterable[bytes], max_bytes: int) -> SpooledFile:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise ImageTooLarge(
                            f"the photo is larger than the {max_bytes / 1e6:.3g} MB limit"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return SpooledFile(target, size, digest.hexdigest())


def _chunks(source: BinaryIO) -> Iterable[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- streamed writes (issue 13: no temporary spill, no re-read, no joined buffer) ----------


class Incoming:
    """An upload being written into the spool as its request body arrives.

    The body's chunks go straight to a file in the spool's root with a running SHA-256, so
    the photo is never spilled to a temporary file first and never read back to be hashed.
    ``finish`` makes it durable (one fsync; the rename that names it fsyncs its folder).
    """

    def __init__(self, spool: Spool, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        fd, name = tempfile.mkstemp(dir=spool.root, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes | memoryview) -> None:
        """Append ``chunk``; ``ImageTooLarge`` (and the file removed) past ``max_bytes``."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.discard()
            raise ImageTooLarge(f"the photo is larger than the {self.max_bytes / 1e6:.3g} MB limit")
        self._digest.update(chunk)
        self._out.write(chunk)

    def finish(self) -> SpooledFile:
        """Flush and fsync the file; what the spool now holds (not yet under its final name)."""
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        return SpooledFile(self.path, self.size, self._digest.hexdigest())

    def discard(self) -> None:
        """Drop the partial upload (a refused or broken request)."""
        if not self._out.closed:
            self._out.close()
        self.path.unlink(missing_ok=True)


def incoming(spool: Spool, max_bytes: int) -> Incoming:
    """A new upload file in ``spool``, written chunk by chunk (``Incoming``)."""
    return Incoming(spool, max_bytes)


def write_with(target: Path, writer: Callable[[BinaryIO], None]) -> SpooledFile:
    """Durably write what ``writer`` writes to a file object, at ``target``.

    For the DICOM file: pydicom's header and the photo's bytes go straight to the file,
    never joined into one buffer first. ``sha256`` is empty: nothing needs it for these.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            writer(out)
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return SpooledFile(target, size, "")


def mapped(path: Path | str) -> bytes | mmap.mmap:
    """A spooled file's bytes, mapped from the page cache rather than read into the heap.

    A photo read with ``read_bytes`` is a 4 MB allocation that glibc, once its dynamic mmap
    threshold has risen past it, serves from a malloc arena and keeps there after it is
    freed: one upload at a time grew the service by 2.7-3.8x the photo (issue 13). A
    read-only mapping is no copy at all, and is gone when the last view of it is: the
    encoder keeps the upright scan as a view of its input (``strip_metadata_parts``) until
    the DICOM file is written. Spooled files are never changed once written, so the mapping
    cannot see them shrink. An empty file cannot be mapped; it is its ``b""``.
    """
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return b""
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def from_photo_at(here: Path, record: CaptureRecord, encode: Callable[[CaptureRecord], _R]) -> _R:
    """``encode(record)`` reading its photo at ``here``: a copy on this machine of the file the
    row names (restored from the database, or re-sent by the phone). The row keeps naming the
    original (the database's copy has its name); the copy is deleted afterwards, unless it is
    the original's own path."""
    if str(here) == record.photo_path:
        return encode(record)
    try:
        return encode(record.model_copy(update={"photo_path": str(here)}))
    finally:
        Spool.delete(here)
