"""The local archive's index and its DICOMDIR: shared by processes, rebuilt from the files,
written debounced, never corrupt (SIGKILL while writing), readable by pydicom and DCMTK."""

from __future__ import annotations

import datetime as dt
import io
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from pydicom.filebase import DicomBytesIO, DicomFileLike
from pydicom.fileset import FileSet

from bench.archive_bench import write_files
from capture_api.capture.anatomy import resolve
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Patient
from capture_api.capture.sensitivity import Sensitivity, SensitivityLevel
from capture_api.cli import main
from capture_api.deliver.archive import InstanceRef
from capture_api.deliver.local_archive import INDEX_NAME, LocalArchive, _archive
from capture_api.encode.pipeline import wrap_photo
from capture_api.exceptions import ArchiveUnavailable
from capture_api.review.timeline import archive_extras
from tests.conftest import dciodvfy_errors, require_tool

REPO = Path(__file__).resolve().parents[2]
Photo = tuple[bytes, InstanceRef]


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), (seed * 37 % 256, 90, 40)).save(out, "JPEG", quality=85)
    return out.getvalue()


def _photo(
    capture_id: str,
    patient_id: str,
    site: str = "left forearm",
    *,
    level: SensitivityLevel = SensitivityLevel.NORMAL,
    **ctx: object,
) -> Photo:
    body_site, side = resolve(site)
    context = CaptureContext(
        capture_id=capture_id,
        patient=Patient(patient_id=patient_id),
        body_site=body_site,
        laterality=side,
        sensitivity=Sensitivity(level),
        captured_at=dt.datetime(2026, 11, 1, 10, len(capture_id) % 60, tzinfo=dt.UTC),
        **ctx,  # type: ignore[arg-type]
    )
    wrapped = wrap_photo(_jpeg(len(capture_id)), context)
    ref = InstanceRef(
        wrapped.study_instance_uid, wrapped.series_instance_uid, wrapped.sop_instance_uid
    )
    return wrapped.to_bytes(), ref


def _many(count: int, tag: str = "m") -> list[Photo]:
    """Photos of 4 patients, in studies of 3 (one series each), as a clinic's visits."""
    photos = []
    for n in range(count):
        study = f"1.2.826.0.1.3680043.10.77.{zlib.crc32(tag.encode())}.{n // 3 + 1}"
        photos.append(
            _photo(f"{tag}-{n}", f"PAT-{n // 3 % 4}", study_uid=study, series_uid=f"{study}.1")
        )
    return photos


def _index_files(root: Path) -> list[Path]:
    return [root / f"{INDEX_NAME}{suffix}" for suffix in ("", "-wal", "-shm")]


def _dicomdir_check(root: Path) -> set[str]:
    """The DICOMDIR parses (pydicom, DCMTK), names only existing files; its SOP UIDs."""
    dicomdir = root / "DICOMDIR"
    dump = subprocess.run(
        [require_tool("dcmdump"), "-q", str(dicomdir)], capture_output=True, text=True
    )
    assert dump.returncode == 0, dump.stderr
    assert "E:" not in dump.stderr and "W:" not in dump.stderr, dump.stderr
    fs = FileSet(dicomdir)  # warns (UserWarning) for a record whose file is missing
    try:
        for instance in fs:
            assert Path(instance.path).is_file()
        return {str(i.SOPInstanceUID) for i in fs}
    finally:
        fs.clear()


# --- (f) a relative root ----------------------------------------------------------------------


def test_a_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    archive = LocalArchive(Path("var") / "archive")  # the default data folder is ./var
    assert archive.root == tmp_path / "var" / "archive"
    part10, ref = _photo("relative", "PAT-R")
    result = archive.store(part10, ref)
    assert result.retrieve_url is not None and result.retrieve_url.startswith("file:///")
    assert archive.store(part10, ref).retrieve_url == result.retrieve_url  # the duplicate path
    monkeypatch.chdir("/")  # the working directory changes: the archive does not
    assert archive.is_visible(ref)
    archive.close()


# --- the DICOMDIR -----------------------------------------------------------------------------


def test_the_dicomdir_after_many_stores_is_what_pydicom_and_dcmtk_read(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    photos = _many(30)
    for part10, ref in photos:
        assert not archive.store(part10, ref).duplicate
    archive.flush()
    assert _dicomdir_check(tmp_path) == {ref.sop_instance_uid for _, ref in photos}
    assert dciodvfy_errors(tmp_path / "DICOMDIR") == []
    fs = FileSet(tmp_path / "DICOMDIR")
    try:
        by_uid = {str(i.SOPInstanceUID): Path(i.path).read_bytes() for i in fs}
        assert by_uid == {ref.sop_instance_uid: part10 for part10, ref in photos}
        # pydicom lays out and encodes the same records itself: byte for byte the same file
        again = DicomBytesIO()
        fs._write_dicomdir(DicomFileLike(again))
        assert again.getvalue() == (tmp_path / "DICOMDIR").read_bytes()
        assert len({i.FileID for i in fs}) == len(photos)
    finally:
        fs.clear()
    dump = subprocess.run(
        [require_tool("dcmdump"), "-q", "+P", "0004,1430", str(tmp_path / "DICOMDIR")],
        capture_output=True,
        text=True,
    )
    types = [line.split("[")[1].split("]")[0] for line in dump.stdout.splitlines()]
    assert types.count("PATIENT") == 4 and types.count("STUDY") == 10
    assert types.count("SERIES") == 10 and types.count("IMAGE") == 30
    archive.close()


def test_the_dicomdir_is_written_at_once_when_idle_and_debounced_when_busy(
    tmp_path: Path,
) -> None:
    archive = LocalArchive(tmp_path, dicomdir_interval=30.0)
    first, second, third = _many(3, "burst")
    archive.store(*first)
    deadline = time.monotonic() + 3  # idle: written at once, not after the 30 s interval
    while not archive.is_visible(first[1]):
        assert time.monotonic() < deadline
    archive.store(*second)
    archive.store(*third)
    assert not archive.is_visible(third[1])  # the next write is due in 30 s: not yet
    assert _dicomdir_check(tmp_path) == {first[1].sop_instance_uid}
    archive.close()  # a clean stop writes what is pending
    assert _dicomdir_check(tmp_path) == {p[1].sop_instance_uid for p in (first, second, third)}


def test_a_later_change_is_written_after_the_interval_without_a_flush(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path, dicomdir_interval=0.3)
    first, second = _many(2, "later")
    archive.store(*first)
    archive.store(*second)
    deadline = time.monotonic() + 10
    while second[1].sop_instance_uid not in _dicomdir_check(tmp_path):
        assert time.monotonic() < deadline, "the debounced write never came"
        time.sleep(0.1)
    assert archive.is_visible(second[1])
    archive.close()


_KILL_CHILD = """
import os, stat, sys, time
from pathlib import Path
from capture_api.deliver.local_archive import LocalArchive
from tests.deliver.test_local_archive_index import _many

real_fsync = os.fsync
def slow_fsync(fd):  # a slow disk: a written file takes 50 ms to reach it
    if stat.S_ISREG(os.fstat(fd).st_mode):
        time.sleep(0.05)
    real_fsync(fd)
os.fsync = slow_fsync

archive = LocalArchive(Path(sys.argv[1]), dicomdir_interval=3600)
photos = _many(6, sys.argv[2])
archive.flush(force=True)
print("ready", flush=True)
while True:  # complete DICOMDIR rewrites, a store now and then, until SIGKILL
    for part10, ref in photos:
        archive.store(part10, ref)
        for _ in range(3):
            archive.flush(force=True)
"""


@pytest.mark.slow
def test_sigkill_while_writing_never_leaves_a_corrupt_dicomdir(tmp_path: Path) -> None:
    """A process rewriting a large DICOMDIR in a loop is killed at random moments."""
    root = tmp_path / "archive"
    write_files(root, 1000)
    archive = LocalArchive(root)
    assert archive.rebuild().indexed == 1000
    archive.close()
    rng = random.Random(12)
    caught_mid_write = 0
    for round_ in range(10):
        child = subprocess.Popen(
            [sys.executable, "-c", _KILL_CHILD, str(root), f"kill{round_}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        caught_mid_write += bool(list(root.glob(".DICOMDIR.*.tmp")))
        assert len(_dicomdir_parses(root)) >= 1000
    assert caught_mid_write >= 2, "too few kills landed while a DICOMDIR was being written"
    archive = LocalArchive(root)
    archive.flush()  # catches up with what the killed writers indexed, and sweeps their temp
    assert not list(root.glob(".DICOMDIR.*.tmp"))
    assert _dicomdir_check(root) == set(_held(root))
    assert dciodvfy_errors(root / "DICOMDIR") == []
    archive.close()


def _dicomdir_parses(root: Path) -> set[str]:
    """A quicker ``_dicomdir_check``: pydicom parses every record, DCMTK the whole file."""
    dicomdir = root / "DICOMDIR"
    dump = subprocess.run(
        [require_tool("dcmdump"), "-q", str(dicomdir)], capture_output=True, text=True
    )
    assert dump.returncode == 0 and not dump.stderr, dump.stderr
    ds = pydicom.dcmread(dicomdir)
    uids = set()
    for record in ds.DirectoryRecordSequence:
        if record.DirectoryRecordType == "IMAGE":
            assert root.joinpath(*record.ReferencedFileID).is_file()
            uids.add(str(record.ReferencedSOPInstanceUIDInFile))
    return uids


# --- processes sharing a folder ---------------------------------------------------------------


def _store_all(root: str, photos: list[Photo]) -> None:
    archive = LocalArchive(Path(root), dicomdir_interval=0.2)
    for part10, ref in photos:
        archive.store(part10, ref)
    # no close(): the interpreter's exit writes the pending DICOMDIR (atexit)


def test_two_processes_storing_into_one_folder_keep_one_consistent_index(tmp_path: Path) -> None:
    batches = [_many(12, f"proc{p}") for p in range(2)]
    both = batches[0][:3]  # the same instances sent by both: one copy, one row
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_store_all, args=(str(tmp_path), b + both)) for b in batches]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    expected = {ref.sop_instance_uid: part10 for batch in batches for part10, ref in batch}
    with sqlite3.connect(tmp_path / INDEX_NAME) as db:
        rows = db.execute("SELECT sop_instance_uid, file_id FROM instances").fetchall()
        generation, in_dicomdir = (
            int(db.execute("SELECT value FROM meta WHERE key = ?", (k,)).fetchone()[0])
            for k in ("generation", "dicomdir_generation")
        )
    assert len(rows) == len(expected) == 24
    assert {uid for uid, _ in rows} == set(expected)
    assert len({file_id for _, file_id in rows}) == 24
    for uid, file_id in rows:
        assert (tmp_path / file_id).read_bytes() == expected[uid]
    assert generation == 24 and in_dicomdir == generation  # the exits wrote the DICOMDIR
    assert _dicomdir_check(tmp_path) == set(expected)  # without a flush here


# --- reading from the index -------------------------------------------------------------------


def test_reads_come_from_the_index_not_from_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = LocalArchive(tmp_path)
    plain = _photo("plain", "PAT-L")
    restricted = _photo("private", "PAT-L", "sacrum", level=SensitivityLevel.RESTRICTED)
    for photo in (plain, restricted):
        archive.store(*photo)

    def no_header_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a header was read")

    monkeypatch.setattr(_archive, "dcmread", no_header_reads)
    monkeypatch.setattr(pydicom, "dcmread", no_header_reads)
    priors = archive.find_priors("PAT-L")
    assert [p.ref for p in priors] == [restricted[1], plain[1]]  # newest first
    assert [p.body_site_meaning for p in priors] == ["Sacrum", "Forearm"]
    unknown = InstanceRef("1.2", "1.2.3", "1.2.3.4")
    labels = archive.labels([plain[1], restricted[1], unknown])
    assert labels[plain[1].sop_instance_uid] is not None
    assert labels[plain[1].sop_instance_uid].level == "normal"  # type: ignore[union-attr]
    marked = labels[restricted[1].sop_instance_uid]
    assert marked is not None and marked.marked and marked.confidentiality == "R"
    assert labels[unknown.sop_instance_uid] is None
    extras = archive_extras(archive, [plain[1], restricted[1], unknown])  # the timeline's call
    assert extras[plain[1].sop_instance_uid].sensitivity is SensitivityLevel.NORMAL
    assert extras[restricted[1].sop_instance_uid].sensitivity is SensitivityLevel.RESTRICTED
    assert extras[unknown.sop_instance_uid].sensitivity is SensitivityLevel.RESTRICTED
    assert archive.is_visible(plain[1])
    archive.close()


# --- rebuild ----------------------------------------------------------------------------------


def _held(root: Path) -> dict[str, tuple[str, ...]]:
    """SOP Instance UID -> File ID, as the index file says (read with sqlite3 directly)."""
    with sqlite3.connect(root / INDEX_NAME) as db:
        rows = db.execute("SELECT sop_instance_uid, file_id FROM instances").fetchall()
    return {uid: tuple(file_id.split("/")) for uid, file_id in rows}


def test_a_deleted_index_is_rebuilt_from_the_files_on_first_use(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    photos = _many(9, "lost")
    for photo in photos:
        archive.store(*photo)
    before, priors = _held(tmp_path), archive.find_priors("PAT-1")
    archive.close()
    for path in _index_files(tmp_path):
        path.unlink(missing_ok=True)
    again = LocalArchive(tmp_path)  # an archive folder from before the index, too
    assert again.find_priors("PAT-1") == priors
    assert _held(tmp_path) == before
    assert all(again.is_visible(ref) for _, ref in photos)
    again.close()


def test_rebuild_after_files_added_and_deleted_by_hand(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    kept, deleted = _many(2, "hand")
    for photo in (kept, deleted):
        archive.store(*photo)
    archive.flush()
    held = _held(tmp_path)
    tmp_path.joinpath(*held[deleted[1].sop_instance_uid]).unlink()
    in_place, misnamed = _many(2, "added")
    (tmp_path / "EXTRA").mkdir()
    (tmp_path / "EXTRA" / "IMG1").write_bytes(in_place[0])  # a valid File ID: stays
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "photo 1.dcm").write_bytes(misnamed[0])  # moved to a File ID
    (tmp_path / "incoming" / "copy.dcm").write_bytes(kept[0])  # a second copy: skipped
    (tmp_path / "README.txt").write_text("not DICOM")

    report = archive.rebuild()

    assert report.indexed == 3 and report.dropped == 1
    assert [path for path, _ in report.skipped] == ["README.txt"]
    assert report.duplicates and report.duplicates[0][0] == "incoming/copy.dcm"
    ((source, target),) = report.moved
    assert source == "incoming/photo 1.dcm" and not (tmp_path / source).exists()
    assert tmp_path.joinpath(target).read_bytes() == misnamed[0]  # moved, bytes unchanged
    now = _held(tmp_path)
    assert set(now) == {p[1].sop_instance_uid for p in (kept, in_place, misnamed)}
    assert now[in_place[1].sop_instance_uid] == ("EXTRA", "IMG1")
    assert now[kept[1].sop_instance_uid] == held[kept[1].sop_instance_uid]
    assert _dicomdir_check(tmp_path) == set(now)
    assert not archive.is_visible(deleted[1])
    assert archive.is_visible(misnamed[1])
    again = _photo("after-rebuild", "PAT-0")
    assert not archive.store(*again).duplicate  # new names avoid every file on disk
    archive.flush()
    assert archive.is_visible(again[1])
    assert len(set(_held(tmp_path).values())) == 4
    archive.close()


def test_a_corrupt_index_is_reported_and_the_rebuild_command_recovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    archive = LocalArchive(root)
    photos = _many(4, "corrupt")
    for photo in photos:
        archive.store(*photo)
    archive.close()
    for path in _index_files(root):
        path.unlink(missing_ok=True)
    (root / INDEX_NAME).write_bytes(b"this is not an SQLite database" * 200)
    broken = LocalArchive(root)
    with pytest.raises(ArchiveUnavailable, match="capture-api archive rebuild"):
        broken.find_priors("PAT-1")
    broken.close()

    assert main(["archive", "rebuild", "--data-dir", str(tmp_path)]) == 0

    err = capsys.readouterr().err
    assert "4 instances indexed" in err and "damaged index was moved" in err
    assert list(root.glob(f"{INDEX_NAME}.damaged-*"))
    fixed = LocalArchive(root)
    assert all(fixed.is_visible(ref) for _, ref in photos)
    assert len(fixed.find_priors("PAT-1")) == 1
    fixed.close()


def test_the_rebuild_command_refuses_a_folder_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["archive", "rebuild", "--data-dir", str(tmp_path / "nothing")]) == 2
    assert "there is no archive folder" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()
