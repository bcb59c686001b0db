"""Recreate the index and the DICOMDIR from the files: ``capture-api archive rebuild``.

For the day the index is lost or damaged, or files were added or deleted by hand. Every
file under the folder is read (its header only) and indexed again, in one transaction:

* a file whose path cannot be a File ID (lower case, dots, more than 8 characters or
  levels; PS3.10 8.2) is moved, unchanged, to a free ``PT/ST/SE/IM`` name, so the DICOMDIR
  can reference it;
* a second file with an SOP Instance UID already seen is left where it is, unindexed;
* a file that is not DICOM, or that cannot be indexed, is left alone and reported;
* index rows whose file is gone are dropped;
* a damaged index is renamed ``.capture-index.sqlite.damaged-<time>`` and a new one made.

It holds the folder lock (no DICOMDIR is written meanwhile). Stores do not take that lock:
they wait on the index's write lock while the transaction runs, and the files they wrote
before it began are read again inside it, so none is lost.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.filereader import read_file_meta_info
from pydicom.uid import generate_uid

from capture_api.deliver.local_archive import _files
from capture_api.deliver.local_archive._describe import Described, describe
from capture_api.exceptions import ArchiveRejected, ArchiveUnavailable
from capture_api.store.archive_index import ArchiveIndex, IndexWriter, move_aside

DICOMDIR_NAME = "DICOMDIR"
#: Temporary files older than this were left by a writer that died (a live one takes ms).
STALE_TEMP_S = 3600.0

#: Writes the DICOMDIR from the index (the caller holds the folder lock).
WriteDicomdir = Callable[[ArchiveIndex], int]


@dataclass
class RebuildReport:
    """What a rebuild found; paths are relative to the archive folder."""

    indexed: int = 0
    moved: list[tuple[str, str]] = field(default_factory=list)  # (from, to)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, the one kept)
    dropped: int = 0  # indexed instances whose file was gone
    damaged_index: Path | None = None  # where a damaged index was moved


def rebuild(
    root: Path,
    index_path: Path,
    write_dicomdir: WriteDicomdir,
    *,
    only_if_missing: bool = False,
) -> RebuildReport:
    """Index every file in ``root`` again and rewrite the DICOMDIR.

    ``only_if_missing``: do nothing when the index exists (first use of an old folder;
    the DICOMDIR is then written only if there was one or files were found).
    """
    root.mkdir(parents=True, exist_ok=True)
    with _files.exclusive(root):
        if only_if_missing and index_path.exists():
            return RebuildReport()
        had_dicomdir = (root / DICOMDIR_NAME).exists()
        report = RebuildReport()
        index, report.damaged_index = _usable_index(index_path, root)
        try:
            scanned = _scan(root, {})  # outside the transaction: stores go on meanwhile
            with index.writing() as tx:
                scanned = _scan(root, scanned)  # files stored since the first pass
                gone = tx.clear() - {_parts(p) for p in scanned}
                report.dropped = len(gone)
                _index_all(tx, root, scanned, report)
            if report.indexed or had_dicomdir or not only_if_missing:
                write_dicomdir(index)
        finally:
            index.close()
    return report


def _usable_index(path: Path, root: Path) -> tuple[ArchiveIndex, Path | None]:
    """The index, or a new one in its place when it is damaged (the old one moved aside)."""
    aside = None
    if path.exists():
        index = ArchiveIndex(path)
        try:
            index.open(lambda: _fileset_uid(root))
            index.check()
            return index, None
        except ArchiveUnavailable:
            index.close()
            aside = move_aside(path)
    index = ArchiveIndex(path)
    index.open(lambda: _fileset_uid(root))
    return index, aside


def _fileset_uid(root: Path) -> str:
    """The File-set keeps its UID (the DICOMDIR's Media Storage SOP Instance UID) if it had one."""
    with contextlib.suppress(Exception):  # pydicom's parse errors have no common base class
        uid = read_file_meta_info(root / DICOMDIR_NAME).get("MediaStorageSOPInstanceUID")
        if uid:
            return str(uid)
    return str(generate_uid(prefix=None))


# --- reading the files ------------------------------------------------------------------------

_Scanned = dict[str, Described | str]  # relative path -> description, or why it was skipped


def _scan(root: Path, known: _Scanned) -> _Scanned:
    """Every file under ``root`` (not DICOMDIR, not dot-files), described; reuses ``known``."""
    found: _Scanned = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for name in files:
            path = base / name
            if name.startswith("."):
                _remove_stale_temp(path)
                continue
            rel = path.relative_to(root).as_posix()
            if rel == DICOMDIR_NAME:
                continue
            found[rel] = known[rel] if rel in known else _read(path)
    return found


def _read(path: Path) -> Described | str:
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except Exception as exc:  # pydicom's parse errors have no common base class
        return f"not a DICOM Part 10 file ({exc})"
    try:
        return describe(ds)
    except ArchiveRejected as exc:
        return str(exc)


def _remove_stale_temp(path: Path) -> None:
    if _files.is_temp(path.name):
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime < time.time() - STALE_TEMP_S:
                path.unlink()


# --- indexing ---------------------------------------------------------------------------------


def _index_all(tx: IndexWriter, root: Path, scanned: _Scanned, report: RebuildReport) -> None:
    """Insert every described file; move the ones whose path is not a File ID."""
    kept: dict[str, str] = {}

    def taken(file_id: tuple[str, ...]) -> bool:
        return os.path.lexists(root.joinpath(*file_id))

    for rel in sorted(scanned):
        item = scanned[rel]
        if isinstance(item, str):
            report.skipped.append((rel, item))
            continue
        uid = item.facts.sop_instance_uid
        if uid in kept:
            report.duplicates.append((rel, kept[uid]))
            continue
        parts = _parts(rel)
        found = parts if _files.is_file_id(parts) else None
        series, file_id = tx.place(item.facts, item.records.upper, taken, file_id=found)
        if found is None:
            _move(root, parts, file_id)
            report.moved.append((rel, "/".join(file_id)))
        tx.insert(item.facts, series, file_id, item.records.leaf_record(file_id))
        kept[uid] = "/".join(file_id)
        report.indexed += 1


def _move(root: Path, source: tuple[str, ...], file_id: tuple[str, ...]) -> None:
    """Rename a file (bytes unchanged) to its new File ID, durably."""
    _files.move_into(root, root.joinpath(*source), root.joinpath(*file_id))


def _parts(rel: str) -> tuple[str, ...]:
    return tuple(rel.split("/"))
