"""The archive that needs no server: DICOM Part 10 files plus a DICOMDIR in a folder.

The folder is a DICOM File-set (PS3.10 8, PS3.3 Annex F): every delivered photo is written as
the Part 10 file the encoder produced, unchanged, and the DICOMDIR (Basic Directory IOD,
PS3.3 F.3) indexes it under PATIENT / STUDY / SERIES / IMAGE records (PS3.3 F.5), so any
DICOM viewer can open the folder. pydicom's ``FileSet`` builds the records and File IDs.

Three rules make it safe to share one folder between threads and API processes:

* one writer at a time: an exclusive ``flock`` on ``<root>/.lock`` around load-add-write;
* the instance file is written (and fsynced) before the DICOMDIR that references it;
* the DICOMDIR is never rewritten in place: a complete new one is written beside it, fsynced
  and renamed over it, so a crash leaves the old or the new DICOMDIR, never half of one.
  (``FileSet.write()`` truncates the DICOMDIR in place and renames every managed file, so
  it is not used; see ``_replace_dicomdir``.)

Readers take no lock: the rename makes every DICOMDIR they open complete and every file it
references already on disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import io
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomFileLike
from pydicom.fileset import FileInstance, FileSet
from pydicom.valuerep import DT

from capture_api.deliver.archive import InstanceRef, PriorImage, StoreResult
from capture_api.deliver.thumbnails import thumbnail_from_part10
from capture_api.exceptions import ArchiveRejected, ArchiveUnavailable

#: File-set ID (0004,1130): CS, at most 16 characters (PS3.3 F.3.2.1).
FILE_SET_ID = "CAPTURE"
DICOMDIR_NAME = "DICOMDIR"
LOCK_NAME = ".lock"
PHOTO_MODALITY = "XC"  # External-camera Photography (PS3.3 C.7.3.1.1.1)

_FULL_DISK = {errno.ENOSPC, errno.EDQUOT}
_NO_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS}


@dataclass(frozen=True)
class _Entry:
    """What the DICOMDIR records say about one instance (PS3.3 F.5)."""

    path: Path
    patient_id: str
    modality: str
    ref: InstanceRef


class LocalArchive:
    """A DICOM File-set in ``root``: the archive when no DICOMweb server is configured."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._dicomdir = self.root / DICOMDIR_NAME
        self._cache_lock = threading.Lock()
        self._cache: tuple[tuple[int, ...], dict[str, _Entry]] | None = None

    # --- Archive protocol ---------------------------------------------------------------------

    def store(self, part10: bytes, ref: InstanceRef) -> StoreResult:
        """Add the instance to the File-set; an instance already held is a duplicate."""
        header = _parse_instance(part10, ref)
        try:
            with self._exclusive():
                return self._store_locked(part10, header)
        except OSError as exc:
            raise ArchiveUnavailable(_disk_message(self.root, exc)) from exc

    def is_visible(self, ref: InstanceRef) -> bool:
        """The DICOMDIR references the instance and its file exists."""
        entry = self._index().get(ref.sop_instance_uid)
        return entry is not None and entry.ref == ref and entry.path.is_file()

    def find_priors(
        self,
        patient_id: str,
        issuer: str | None = None,
        body_site_code: str | None = None,
        limit: int = 50,
    ) -> list[PriorImage]:
        """The patient's XC images, newest first: DICOMDIR records, then file headers."""
        entries = [
            e
            for e in self._index().values()
            if e.patient_id == patient_id and e.modality == PHOTO_MODALITY
        ]
        found = [self._prior(e, issuer, body_site_code) for e in entries]
        priors = [p for p in found if p is not None]
        priors.sort(key=lambda p: _sort_key(p.acquired), reverse=True)
        return priors[: max(limit, 0)]

    def thumbnail(self, ref: InstanceRef, max_size: int = 256) -> bytes:
        """A JPEG preview of the stored instance (see ``thumbnails``)."""
        entry = self._index().get(ref.sop_instance_uid)
        if entry is None or entry.ref != ref:
            raise ArchiveRejected(f"instance {ref.sop_instance_uid} is not in the local archive")
        data = self._read(entry.path)
        try:
            return thumbnail_from_part10(data, max_size)
        except (ValueError, OSError) as exc:
            raise ArchiveRejected(f"no preview for {entry.path.name}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""

    # --- storing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """An exclusive ``flock``: it serialises threads (one open file each) and processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_NAME, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _store_locked(self, part10: bytes, header: Dataset) -> StoreResult:
        fs = self._load_file_set()
        try:
            held = _find(fs, str(header.SOPInstanceUID))
            if held is not None:
                return self._duplicate(self.root.joinpath(*_file_id(held)), part10)
            target = self._add(fs, header)
            _write_file(target, part10, self.root)
            _replace_dicomdir(fs, self._dicomdir)
            self._remember(fs)
            return StoreResult(retrieve_url=target.as_uri())
        finally:
            fs.clear()  # removes pydicom's staging directory now, not at garbage collection

    def _load_file_set(self) -> FileSet:
        """The File-set as the DICOMDIR on disk describes it, or a new, empty one."""
        if not self._dicomdir.exists():
            fs = FileSet()
            fs.ID = FILE_SET_ID
            return fs
        try:
            return FileSet(self._dicomdir)
        except OSError:
            raise
        except Exception as exc:  # pydicom's parse errors have no common base class
            raise ArchiveUnavailable(
                f"the DICOMDIR in {self.root} cannot be read ({exc}): "
                "an administrator must repair or move it"
            ) from exc

    def _add(self, fs: FileSet, header: Dataset) -> Path:
        """Create the instance's directory records and give it a File ID of its own."""
        try:
            instance = fs.add(header)
        except ValueError as exc:  # a Type 1 record key is missing (PS3.3 F.5)
            raise ArchiveRejected(f"the instance cannot be indexed in a DICOMDIR: {exc}") from exc
        file_id = _free_file_id(fs, instance)
        instance["ReferencedFileID"].value = list(file_id)
        return self.root.joinpath(*file_id)

    def _duplicate(self, path: Path, part10: bytes) -> StoreResult:
        """The SOP Instance UID is held already: keep the first copy (as a PACS would)."""
        warnings: tuple[str, ...] = ()
        if path.is_file() and path.read_bytes() != part10:
            warnings = ("the archive already held different content under this SOP Instance UID",)
        return StoreResult(warnings=warnings, duplicate=True, retrieve_url=path.as_uri())

    # --- reading ------------------------------------------------------------------------------

    def header(self, ref: InstanceRef) -> Dataset | None:
        """The stored instance's attributes without pixel data; None when absent or unreadable.

        (The timeline reads the sensitivity block from it.)
        """
        entry = self._index().get(ref.sop_instance_uid)
        if entry is None or entry.ref != ref:
            return None
        try:
            return dcmread(entry.path, stop_before_pixels=True)
        except Exception:  # pydicom's parse errors have no common base class
            return None

    def _index(self) -> dict[str, _Entry]:
        """The DICOMDIR's instances by SOP Instance UID, re-read only when the file changed."""
        try:
            stamp = _stamp(self._dicomdir)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ArchiveUnavailable(_disk_message(self.root, exc)) from exc
        with self._cache_lock:
            if self._cache is not None and self._cache[0] == stamp:
                return self._cache[1]
        entries = self._read_entries()
        with self._cache_lock:
            self._cache = (stamp, entries)
        return entries

    def _remember(self, fs: FileSet) -> None:
        """Index the File-set just written, so the next is_visible need not parse it again."""
        entries = {str(i.SOPInstanceUID): self._entry(i) for i in fs}
        with contextlib.suppress(OSError), self._cache_lock:
            self._cache = (_stamp(self._dicomdir), entries)

    def _read_entries(self) -> dict[str, _Entry]:
        try:
            fs = self._load_file_set()
        except OSError as exc:
            raise ArchiveUnavailable(_disk_message(self.root, exc)) from exc
        try:
            return {str(i.SOPInstanceUID): self._entry(i) for i in fs}
        finally:
            fs.clear()

    def _entry(self, instance: FileInstance) -> _Entry:
        ref = InstanceRef(
            study_uid=str(instance.StudyInstanceUID),
            series_uid=str(instance.SeriesInstanceUID),
            sop_instance_uid=str(instance.SOPInstanceUID),
        )
        return _Entry(
            path=self.root.joinpath(*_file_id(instance)),
            patient_id=str(instance.PatientID),
            modality=str(instance.Modality),
            ref=ref,
        )

    def _prior(
        self, entry: _Entry, issuer: str | None, body_site_code: str | None
    ) -> PriorImage | None:
        """A PriorImage from the file's header, or None when it does not match the query."""
        try:
            ds = dcmread(entry.path, stop_before_pixels=True)
        except FileNotFoundError:
            return None  # removed since the DICOMDIR was read
        except OSError as exc:
            raise ArchiveUnavailable(_disk_message(self.root, exc)) from exc
        except Exception:  # a damaged file must not hide the patient's other photos
            return None
        code, meaning = _body_site(ds)
        if not _issuer_matches(ds, issuer) or (body_site_code and code != body_site_code):
            return None
        return PriorImage(
            ref=entry.ref,
            acquired=_acquired(ds),
            body_site_code=code,
            body_site_meaning=meaning,
            laterality=_text(ds, "ImageLaterality"),
            description=_text(ds, "SeriesDescription"),
            comment=_text(ds, "ImageComments"),
        )

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ArchiveUnavailable(_disk_message(self.root, exc)) from exc


# --- the instance -----------------------------------------------------------------------------


def _parse_instance(part10: bytes, ref: InstanceRef) -> Dataset:
    """The instance's header, after checking it is a Part 10 file (PS3.10 7.1) for ``ref``.

    Pixel Data is dropped from the parsed copy: the records need only the header, and the file
    written to the folder is ``part10`` itself, byte for byte.
    """
    try:
        ds = dcmread(io.BytesIO(part10))
        uids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        has_pixels = "PixelData" in ds
    except Exception as exc:  # pydicom's parse errors have no common base class
        raise ArchiveRejected(f"not a readable DICOM Part 10 file: {exc}") from exc
    if uids != (ref.study_uid, ref.series_uid, ref.sop_instance_uid):
        raise ArchiveRejected("the file's Study/Series/SOP Instance UIDs do not match the request")
    if not has_pixels:
        raise ArchiveRejected("the instance has no Pixel Data")
    del ds.PixelData
    return ds


def _stamp(path: Path) -> tuple[int, ...]:
    """Identifies one version of a file: every DICOMDIR we write is a new inode."""
    stat = os.stat(path)
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _find(fs: FileSet, sop_instance_uid: str) -> FileInstance | None:
    return next((i for i in fs if i.SOPInstanceUID == sop_instance_uid), None)


def _file_id(instance: FileInstance) -> tuple[str, ...]:
    """Referenced File ID (0004,1500): path components, CS 1-8 (PS3.10 8.5)."""
    value = instance.ReferencedFileID
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _free_file_id(fs: FileSet, instance: FileInstance) -> tuple[str, ...]:
    """pydicom's File ID for the new instance, its last component bumped while it is taken.

    pydicom numbers File IDs by position among sibling records; once a record is gone (its
    file deleted by hand), the next position can name a file another record still uses.
    """
    taken = {_file_id(i) for i in fs if i is not instance}
    file_id = Path(instance.FileID).parts
    while file_id in taken:
        file_id = (*file_id[:-1], _next_component(file_id[-1]))
    return file_id


def _next_component(name: str) -> str:
    """``IM000007`` -> ``IM000008``: still 8 characters of A-Z and 0-9 (PS3.10 8.2)."""
    prefix = name.rstrip("0123456789")
    width = len(name) - len(prefix)
    number = int(name[len(prefix) :] or 0) + 1
    return f"{prefix}{number:0{width}d}"


# --- writing ----------------------------------------------------------------------------------


def _write_file(target: Path, data: bytes, root: Path) -> None:
    """Write ``target`` whole or not at all: temp file, fsync, rename, fsync the directories."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _atomic(target) as out:
        out.write(data)
    for folder in (target.parent, *target.parent.parents):
        _fsync_dir(folder)
        if folder == root:
            break


def _replace_dicomdir(fs: FileSet, dicomdir: Path) -> None:
    """Write the whole Basic Directory (PS3.3 F.3) beside the old one, then rename over it.

    ``FileSet.write()`` truncates the DICOMDIR in place and moves every managed file on each
    call; its encoder, ``_write_dicomdir``, computes the record offsets (Offset of the Next
    Directory Record, of the Referenced Lower-Level Directory Entity, PS3.3 F.3.2.1) and is
    the only part needed. It is pydicom-internal, pinned by ``pydicom<4`` and by the tests.
    """
    with _atomic(dicomdir) as out:
        fs._write_dicomdir(DicomFileLike(out))
    _fsync_dir(dicomdir.parent)


@contextlib.contextmanager
def _atomic(target: Path) -> Iterator[io.BufferedWriter]:
    """A new file beside ``target`` (umask permissions) that replaces it once complete."""
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "xb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (POSIX needs the directory fsynced)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_message(root: Path, exc: OSError) -> str:
    """An OSError in words an operator can act on."""
    if exc.errno in _FULL_DISK:
        return f"the local archive folder {root} is on a full disk: free space, then retry"
    if exc.errno in _NO_WRITE:
        return f"the local archive folder {root} is not writable ({exc.strerror}): check it"
    return f"the local archive folder {root} cannot be used: {exc.strerror or exc}"


# --- header values ----------------------------------------------------------------------------


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    return str(value) if value not in (None, "") else None


def _acquired(ds: Dataset) -> str | None:
    """Acquisition DateTime (C.7.10.1), else Content Date + Time (C.7.6.1), as DICOM text."""
    moment = _text(ds, "AcquisitionDateTime")
    if moment:
        return moment
    date = _text(ds, "ContentDate")
    return f"{date}{_text(ds, 'ContentTime') or ''}" if date else None


def _sort_key(acquired: str | None) -> dt.datetime:
    """A DT as a naive UTC datetime, so offsets compare correctly; unknown sorts last."""
    if not acquired:
        return dt.datetime.min
    try:
        moment = DT(acquired)
    except ValueError:
        return dt.datetime.min
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _body_site(ds: Dataset) -> tuple[str | None, str | None]:
    """Anatomic Region Sequence item 1: Code Value and Code Meaning (C.8.12.1)."""
    regions = ds.get("AnatomicRegionSequence")
    if not regions:
        return None, None
    return _text(regions[0], "CodeValue"), _text(regions[0], "CodeMeaning")


def _issuer_matches(ds: Dataset, issuer: str | None) -> bool:
    """Issuer of Patient ID (0010,0021) or a Universal Entity ID of its qualifiers."""
    if issuer is None:
        return True
    names = {_text(ds, "IssuerOfPatientID")}
    for item in ds.get("IssuerOfPatientIDQualifiersSequence") or []:
        names.add(_text(item, "UniversalEntityID"))
    return issuer in names
