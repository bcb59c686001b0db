"""``LocalArchive``: the Archive protocol over a folder of Part 10 files, an index and a DICOMDIR.

A store costs the same with 10 or 10,000 photos held: it parses the new instance once,
writes its file, and adds a row to the index (``capture_api.store.archive_index``); the
DICOMDIR is rewritten from the index afterwards, debounced (``_writer``), from records
encoded when each instance was stored (``_dicomdir``). Reads (``is_visible``,
``find_priors``, ``labels``, ``thumbnail``, ``header``) look the instance up in the index and
open at most its one file.

Order of writes, so that a crash at any point loses nothing acknowledged and never leaves a
reference to a missing file: the instance's bytes are written to a temporary file and fsynced;
inside the index's write transaction it is renamed to its File ID (never over an existing
file) and the folders fsynced; then the row is committed; only then can a DICOMDIR name it.
A crash before the commit leaves a file the index does not know (``rebuild`` adopts it, and
no later store takes its name); a crash while the DICOMDIR is written leaves the old one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from capture_api.capture.lesions import LesionMark
from capture_api.capture.retrieval import Retrieval
from capture_api.deliver.archive import (
    PHOTO_MODALITIES,
    InstanceRef,
    Part10,
    PriorImage,
    StoreResult,
)
from capture_api.deliver.instance_labels import InstanceLabels
from capture_api.deliver.local_archive import _files
from capture_api.deliver.local_archive._describe import Described, parse_instance
from capture_api.deliver.local_archive._dicomdir import FILE_SET_ID, dicomdir_bytes
from capture_api.deliver.local_archive._rebuild import RebuildReport, rebuild
from capture_api.deliver.local_archive._writer import DicomdirWriter
from capture_api.deliver.thumbnails import thumbnail_from_part10
from capture_api.encode.lesion_block import lesion_from_dataset
from capture_api.exceptions import ArchiveRejected, ArchiveUnavailable
from capture_api.store.archive_index import INDEX_NAME, ArchiveIndex, Held

log = logging.getLogger(__name__)

DICOMDIR_NAME = "DICOMDIR"
PHOTO_MODALITY = "XC"  # External-camera Photography (PS3.3 C.7.3.1.1.1)
#: How long ``is_visible`` waits for a DICOMDIR write that is running or about to run (a
#: lone photo's write starts at once); a write due later is not waited for, so an outbox
#: thread is not held while a burst is being collected (it asks again after its backoff).
VISIBILITY_WAIT = 0.5


class LocalArchive:
    """A DICOM File-set in ``root``: the archive when no DICOMweb server is configured.

    ``root`` is made absolute here (a relative data folder such as the default ``./var``
    would otherwise give relative File URIs and change meaning with the working directory).
    ``dicomdir_interval`` fixes the seconds between DICOMDIR rewrites while photos arrive
    (default: adapted to the rewrite's cost, at most 2 s; see ``_writer``).
    """

    def __init__(self, root: Path, *, dicomdir_interval: float | None = None) -> None:
        self.root = Path(os.path.abspath(root))
        self._dicomdir = self.root / DICOMDIR_NAME
        self._index_path = self.root / INDEX_NAME
        self._open_lock = threading.Lock()
        self._index: ArchiveIndex | None = None
        self._writer = DicomdirWriter(self._write_if_behind, dicomdir_interval)

    # --- Archive protocol ---------------------------------------------------------------------

    def store(self, part10: Part10, ref: InstanceRef) -> StoreResult:
        """Add the instance to the File-set; an instance already held is a duplicate.

        A spooled source is read whole: the instance is parsed and written to this disk.
        """
        if not isinstance(part10, bytes):
            part10 = part10.read()
        described = parse_instance(part10, ref)
        try:
            index = self._writable()
            held = index.lookup(ref.sop_instance_uid)
            if held is None:
                held, added = self._add(index, part10, described)
            else:
                added = False
            if not added:
                return self._duplicate(held, part10)
        except OSError as exc:
            raise ArchiveUnavailable(_files.disk_message(self.root, exc)) from exc
        self._writer.changed(held.generation)
        return StoreResult(retrieve_url=self._path(held).as_uri())

    def retrieval(self) -> Retrieval:
        """A File-set on this service's disk, retrievable by no network service: the DICOM
        Media Retrieval Sequence's File-set ID and UID (the DICOMDIR's), PS3.3 Table 10-3b."""
        try:
            uid = self._writable().fileset_uid()
        except OSError as exc:
            raise ArchiveUnavailable(_files.disk_message(self.root, exc)) from exc
        return Retrieval(file_set_id=FILE_SET_ID, file_set_uid=uid)

    def visible(self, refs: Sequence[InstanceRef]) -> set[str]:
        """The instances of ``refs`` ``is_visible`` finds (a local index: no query to save)."""
        return {ref.sop_instance_uid for ref in refs if self.is_visible(ref)}

    def is_visible(self, ref: InstanceRef) -> bool:
        """The index holds the instance, its file exists and the DICOMDIR names it.

        A DICOMDIR write that is running or due within ``VISIBILITY_WAIT`` is waited for; a
        later one is not (the outbox asks again). A failing write raises its error.
        """
        held = self._lookup(ref)
        if held is None or not self._path(held).is_file():
            return False
        if self._writable().generations().in_dicomdir >= held.generation:
            return True
        self._writer.changed(held.generation)  # whoever stored it may have stopped since
        if self._writer.wait(held.generation, VISIBILITY_WAIT):
            return True
        error = self._writer.error
        if isinstance(error, OSError):
            raise ArchiveUnavailable(_files.disk_message(self.root, error)) from error
        if error is not None:
            raise ArchiveUnavailable(str(error)) from error
        return False

    def find_priors(
        self,
        patient_id: str,
        issuer: str | None = None,
        body_site_code: str | None = None,
        limit: int = 50,
    ) -> list[PriorImage]:
        """The patient's XC and DMS images, newest first, from the index (files that vanished
        left out)."""
        index = self._readable()
        if index is None:
            return []
        rows = [
            held
            for modality in PHOTO_MODALITIES
            for held in index.priors(patient_id, modality, issuer, body_site_code or None, limit)
        ]
        rows.sort(key=lambda held: held.facts.acquired_key, reverse=True)
        return [_prior(held) for held in rows[:limit] if self._path(held).is_file()]

    def lesions(self, refs: Sequence[InstanceRef]) -> dict[str, LesionMark]:
        """The lesion of each instance, read from its header (the index does not keep it)."""
        found: dict[str, LesionMark] = {}
        for ref in refs:
            header = self.header(ref)
            mark = lesion_from_dataset(header) if header is not None else None
            if mark is not None:
                found[ref.sop_instance_uid] = mark
        return found

    def thumbnail(self, ref: InstanceRef, max_size: int = 256) -> bytes:
        """A JPEG preview of the stored instance (see ``thumbnails``)."""
        held = self._lookup(ref)
        if held is None:
            raise ArchiveRejected(f"instance {ref.sop_instance_uid} is not in the local archive")
        path = self._path(held)
        data = self._read(path)
        try:
            return thumbnail_from_part10(data, max_size)
        except (ValueError, OSError) as exc:
            raise ArchiveRejected(f"no preview for {path.name}: {exc}") from exc

    def instance(self, ref: InstanceRef) -> bytes:
        """The stored Part 10 file's bytes."""
        held = self._lookup(ref)
        if held is None:
            raise ArchiveRejected(f"instance {ref.sop_instance_uid} is not in the local archive")
        return self._read(self._path(held))

    def close(self) -> None:
        """Write the DICOMDIR if it is behind, and close the index's connections."""
        self._writer.close()
        with self._open_lock:
            index, self._index = self._index, None
        if index is not None:
            index.close()

    def labels(self, refs: Sequence[InstanceRef]) -> dict[str, InstanceLabels | None]:
        """Sensitivity block and encounter of each instance, from the index (no header read).

        Every ref gets an answer: ``None`` when the archive does not hold it (or not under
        these UIDs) or its file is gone, which the timeline treats as restricted.
        """
        index = self._readable()
        found = index.lookup_many(r.sop_instance_uid for r in refs) if index else {}
        answer: dict[str, InstanceLabels | None] = {}
        for ref in refs:
            held = found.get(ref.sop_instance_uid)
            ok = held is not None and _ref(held) == ref and self._path(held).is_file()
            answer[ref.sop_instance_uid] = _labels(held) if ok and held else None
        return answer

    # --- beyond the protocol ------------------------------------------------------------------

    def header(self, ref: InstanceRef) -> Dataset | None:
        """The stored instance's attributes without pixel data; None when absent or unreadable."""
        held = self._lookup(ref)
        if held is None:
            return None
        try:
            return dcmread(self._path(held), stop_before_pixels=True)
        except Exception:  # pydicom's parse errors have no common base class
            return None

    def flush(self, *, force: bool = False) -> None:
        """Write the DICOMDIR now if it is behind the index (``force``: even if it is not)."""
        try:
            if force:
                self._write_dicomdir(force=True)
            else:
                self._writer.flush()
        except OSError as exc:
            raise ArchiveUnavailable(_files.disk_message(self.root, exc)) from exc

    def rebuild(self) -> RebuildReport:
        """Recreate the index and the DICOMDIR from the files (``capture-api archive rebuild``)."""
        with self._open_lock:
            index, self._index = self._index, None
        if index is not None:
            index.close()
        try:
            return self._rebuild(only_if_missing=False)
        finally:
            self._writer.reset()

    # --- storing ------------------------------------------------------------------------------

    def _add(self, index: ArchiveIndex, part10: bytes, described: Described) -> tuple[Held, bool]:
        """Write the file and index it; (the row, True), or (the held row, False) if another
        writer stored the same SOP Instance UID meanwhile."""
        facts = described.facts
        staged = _files.Staged(self.root, part10)
        try:
            with index.writing() as tx:
                held = tx.held(facts.sop_instance_uid)
                if held is not None:
                    return held, False
                series, file_id = tx.place(facts, described.records.upper, self._taken)
                staged.move_to(self.root.joinpath(*file_id))
                tx.insert(facts, series, file_id, described.records.leaf_record(file_id))
                generation = tx.generation
        finally:
            if not staged.moved:
                staged.discard()
        return Held(facts, file_id, generation), True

    def _taken(self, file_id: tuple[str, ...]) -> bool:
        return os.path.lexists(self.root.joinpath(*file_id))

    def _duplicate(self, held: Held, part10: bytes) -> StoreResult:
        """The SOP Instance UID is held already: keep the first copy (as a PACS would)."""
        path = self._path(held)
        warnings: tuple[str, ...] = ()
        if path.is_file() and path.read_bytes() != part10:
            warnings = ("the archive already held different content under this SOP Instance UID",)
        return StoreResult(warnings=warnings, duplicate=True, retrieve_url=path.as_uri())

    # --- the DICOMDIR -------------------------------------------------------------------------

    def _write_if_behind(self) -> int:
        return self._write_dicomdir(force=False)

    def _write_dicomdir(self, *, force: bool) -> int:
        index = self._writable()
        with _files.exclusive(self.root):
            return self._write_locked(index, force=force)

    def _write_locked(self, index: ArchiveIndex, *, force: bool) -> int:
        """Under the folder lock: rewrite the DICOMDIR from one snapshot of the index."""
        _files.sweep_temp(self.root, DICOMDIR_NAME)  # left by a writer killed mid-write
        generations = index.generations()
        up_to_date = generations.in_dicomdir >= generations.current
        if not force and up_to_date and (self._dicomdir.is_file() or generations.current == 0):
            return generations.in_dicomdir
        tree = index.tree()
        data = dicomdir_bytes(tree, FILE_SET_ID)
        _files.replace_file(self._dicomdir, data)
        index.set_in_dicomdir(tree.generation)
        return tree.generation

    # --- the index ----------------------------------------------------------------------------

    def _writable(self) -> ArchiveIndex:
        index = self._open(create=True)
        if index is None:  # pragma: no cover (create=True always opens one)
            raise ArchiveUnavailable(f"the local archive index {self._index_path} cannot be made")
        return index

    def _readable(self) -> ArchiveIndex | None:
        """The index, or None when nothing was ever stored here (nothing to read)."""
        return self._open(create=False)

    def _open(self, *, create: bool) -> ArchiveIndex | None:
        """The index, opened once; built from the files when the folder has none yet (an
        archive written before the index existed)."""
        with self._open_lock:
            if self._index is not None:
                return self._index
            if not self._index_path.exists():
                if not create and not self._dicomdir.exists():
                    return None
                self._rebuild(only_if_missing=True)
            index = ArchiveIndex(self._index_path)
            try:
                index.open(_new_fileset_uid)
                generations = index.generations()
            except BaseException:
                index.close()
                raise
            self._index = index
        if generations.in_dicomdir < generations.current:
            self._writer.changed(generations.current)  # a writer stopped before it caught up
        return index

    def _rebuild(self, *, only_if_missing: bool) -> RebuildReport:
        def write(index: ArchiveIndex) -> int:
            return self._write_locked(index, force=True)

        try:
            report = rebuild(self.root, self._index_path, write, only_if_missing=only_if_missing)
        except OSError as exc:
            raise ArchiveUnavailable(_files.disk_message(self.root, exc)) from exc
        if only_if_missing and report.indexed:
            log.info("indexed the %d instances already in the local archive", report.indexed)
        return report

    def _lookup(self, ref: InstanceRef) -> Held | None:
        index = self._readable()
        held = index.lookup(ref.sop_instance_uid) if index else None
        return held if held is not None and _ref(held) == ref else None

    def _path(self, held: Held) -> Path:
        return self.root.joinpath(*held.file_id)

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ArchiveUnavailable(_files.disk_message(self.root, exc)) from exc


def _new_fileset_uid() -> str:
    return str(generate_uid(prefix=None))


def _ref(held: Held) -> InstanceRef:
    f = held.facts
    return InstanceRef(f.study_uid, f.series_uid, f.sop_instance_uid)


def _prior(held: Held) -> PriorImage:
    f = held.facts
    return PriorImage(
        ref=_ref(held),
        acquired=f.acquired,
        body_site_code=f.body_site_code,
        body_site_meaning=f.body_site_meaning,
        laterality=f.laterality,
        description=f.description,
        comment=f.comment,
        modality=f.modality,
    )


def _labels(held: Held) -> InstanceLabels:
    f = held.facts
    return InstanceLabels(
        marked=f.marked,
        confidentiality=f.confidentiality,
        level=f.level,
        admission_id=f.admission_id,
        study_description=f.study_description,
    )
