"""The local archive on real files: a DICOMDIR other tools read, safe under concurrency."""

from __future__ import annotations

import datetime as dt
import errno
import io
import multiprocessing
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.fileset import FileSet

from capture_api.capture.anatomy import resolve
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Issuer, Patient
from capture_api.deliver.archive import InstanceRef
from capture_api.deliver.local_archive import LocalArchive
from capture_api.deliver.thumbnails import blurred, thumbnail_from_part10
from capture_api.encode.pipeline import wrap_photo
from capture_api.exceptions import ArchiveRejected, ArchiveUnavailable
from tests.conftest import dciodvfy_errors, phone_jpeg, require_tool

FOREARM = "14975008"
SACRUM = "54735007"
CET = dt.timezone(dt.timedelta(hours=1))

Photo = tuple[bytes, InstanceRef]


def _plain_jpeg(seed: int, mode: str = "RGB") -> bytes:
    """A JPEG without EXIF, so the capture time comes from the context."""
    out = io.BytesIO()
    shade = seed * 37 % 256
    image = Image.new(mode, (320, 240), shade if mode == "L" else (shade, 90, 40))
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _photo(
    capture_id: str,
    patient_id: str,
    site: str = "left forearm",
    *,
    at: dt.datetime | None = None,
    note: str | None = None,
    jpeg: bytes | None = None,
    **ctx: object,
) -> Photo:
    body_site, side = resolve(site)
    context = CaptureContext(
        capture_id=capture_id,
        patient=Patient(patient_id=patient_id),
        body_site=body_site,
        laterality=side,
        captured_at=at,
        note=note,
        **ctx,  # type: ignore[arg-type]
    )
    wrapped = wrap_photo(jpeg or _plain_jpeg(len(capture_id)), context)
    ref = InstanceRef(
        wrapped.study_instance_uid, wrapped.series_instance_uid, wrapped.sop_instance_uid
    )
    return wrapped.to_bytes(), ref


@pytest.fixture
def three() -> list[Photo]:
    """Patient A: forearm (1 Nov) and sacrum (3 Nov); patient B: forearm (2 Nov)."""
    return [
        _photo("a-forearm", "PAT-A", at=dt.datetime(2026, 11, 1, 10, 0, tzinfo=CET), note="day 1"),
        _photo("a-sacrum", "PAT-A", "sacrum", at=dt.datetime(2026, 11, 3, 8, 0, tzinfo=dt.UTC)),
        _photo("b-forearm", "PAT-B", at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)),
    ]


@pytest.fixture
def stored(tmp_path: Path, three: list[Photo]) -> LocalArchive:
    archive = LocalArchive(tmp_path / "archive")
    for part10, ref in three:
        result = archive.store(part10, ref)
        assert not result.duplicate
    archive.flush()  # the DICOMDIR is rewritten debounced: have it written now
    return archive


def _file_set(archive: LocalArchive) -> FileSet:
    archive.flush()
    return FileSet(archive.root / "DICOMDIR")


# --- the File-set ---------------------------------------------------------------------------


def test_other_tools_read_the_dicomdir(stored: LocalArchive) -> None:
    dicomdir = stored.root / "DICOMDIR"
    dump = subprocess.run(
        [require_tool("dcmdump"), "-q", str(dicomdir)], capture_output=True, text=True
    )
    assert dump.returncode == 0, dump.stderr
    assert "E:" not in dump.stderr
    assert "DirectoryRecordSequence" not in dump.stderr
    assert dump.stdout.count("CS [PATIENT]") == 2
    assert dciodvfy_errors(dicomdir) == []


def test_the_file_set_lists_every_instance_and_each_file_is_valid(
    stored: LocalArchive, three: list[Photo]
) -> None:
    fs = _file_set(stored)
    assert fs.ID == "CAPTURE"
    assert {str(i.SOPInstanceUID) for i in fs} == {ref.sop_instance_uid for _, ref in three}
    for instance in fs:
        path = Path(instance.path)
        assert path.is_relative_to(stored.root)
        assert dciodvfy_errors(path) == []
    by_uid = {str(i.SOPInstanceUID): Path(i.path).read_bytes() for i in fs}
    for part10, ref in three:
        assert by_uid[ref.sop_instance_uid] == part10  # stored byte for byte


def test_no_temporary_files_are_left_behind(stored: LocalArchive) -> None:
    assert not [p for p in stored.root.rglob("*.tmp")]


def test_storing_an_instance_again_is_a_duplicate(stored: LocalArchive, three: list[Photo]) -> None:
    part10, ref = three[0]
    result = stored.store(part10, ref)
    assert result.duplicate
    assert result.warnings == ()
    assert len(_file_set(stored)) == 3
    assert len([p for p in stored.root.rglob("IM*")]) == 3


def test_a_different_object_under_a_held_uid_is_a_duplicate_with_a_warning(
    stored: LocalArchive, three: list[Photo]
) -> None:
    part10, ref = three[0]
    changed = part10[:-4] + b"\x00\x00\xff\xd9"
    result = stored.store(changed, ref)
    assert result.duplicate
    assert result.warnings


def test_is_visible(stored: LocalArchive, three: list[Photo]) -> None:
    assert all(stored.is_visible(ref) for _, ref in three)
    assert not stored.is_visible(InstanceRef("1.2.3", "1.2.3.4", "1.2.3.4.5"))
    _, ref = three[0]
    assert not stored.is_visible(InstanceRef(ref.study_uid, "9.9", ref.sop_instance_uid))


def test_an_empty_archive_holds_nothing(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "nothing-yet")
    assert archive.find_priors("PAT-A") == []
    assert not archive.is_visible(InstanceRef("1.2", "1.2.3", "1.2.3.4"))


# --- priors and thumbnails ------------------------------------------------------------------


def test_priors_are_the_patients_own_newest_first(stored: LocalArchive, three: list[Photo]) -> None:
    priors = stored.find_priors("PAT-A")
    assert [p.ref for p in priors] == [three[1][1], three[0][1]]
    sacrum, forearm = priors
    assert sacrum.body_site_code == SACRUM
    assert sacrum.laterality == "U"
    assert forearm.body_site_code == FOREARM
    assert forearm.body_site_meaning == "Forearm"
    assert forearm.laterality == "L"
    assert forearm.acquired is not None and forearm.acquired.startswith("20261101100000")
    assert forearm.description == "Forearm, left"
    assert forearm.comment == "day 1"


def test_priors_filter_by_body_site_and_limit(stored: LocalArchive, three: list[Photo]) -> None:
    assert [p.ref for p in stored.find_priors("PAT-A", body_site_code=FOREARM)] == [three[0][1]]
    assert [p.ref for p in stored.find_priors("PAT-B")] == [three[2][1]]
    assert stored.find_priors("PAT-A", body_site_code="999999") == []
    assert len(stored.find_priors("PAT-A", limit=1)) == 1
    assert stored.find_priors("PAT-C") == []


def test_priors_filter_by_issuer(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    body_site, side = resolve("left forearm")
    ctx = CaptureContext(
        capture_id="issued",
        patient=Patient(patient_id="PAT-I", issuer=Issuer.parse("1.2.3.4.5")),
        body_site=body_site,
        laterality=side,
    )
    wrapped = wrap_photo(_plain_jpeg(3), ctx)
    ref = InstanceRef(
        wrapped.study_instance_uid, wrapped.series_instance_uid, wrapped.sop_instance_uid
    )
    archive.store(wrapped.to_bytes(), ref)
    assert [p.ref for p in archive.find_priors("PAT-I", issuer="1.2.3.4.5")] == [ref]
    assert archive.find_priors("PAT-I", issuer="9.9.9") == []


def test_thumbnail_is_a_small_rgb_jpeg(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    part10, ref = _photo("big", "PAT-T", jpeg=phone_jpeg(1600, 1200, seed=2))
    archive.store(part10, ref)
    with Image.open(io.BytesIO(archive.thumbnail(ref))) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert max(image.size) == 256
        assert image.size == (256, 192)
    with Image.open(io.BytesIO(archive.thumbnail(ref, max_size=100))) as image:
        assert max(image.size) == 100


def test_thumbnail_of_an_unknown_instance_is_refused(stored: LocalArchive) -> None:
    with pytest.raises(ArchiveRejected, match="not in the local archive"):
        stored.thumbnail(InstanceRef("1.2", "1.2.3", "1.2.3.4"))


def test_thumbnail_of_a_monochrome_photo() -> None:
    part10, _ = _photo("gray", "PAT-G", "sacrum", jpeg=_plain_jpeg(5, "L"))
    with Image.open(io.BytesIO(thumbnail_from_part10(part10, 64))) as image:
        assert image.mode == "RGB"
        assert image.size == (64, 48)


def test_thumbnail_from_a_path(tmp_path: Path) -> None:
    part10, _ = _photo("on-disk", "PAT-P")
    path = tmp_path / "x.dcm"
    path.write_bytes(part10)
    with Image.open(io.BytesIO(thumbnail_from_part10(path))) as image:
        assert image.size == (256, 192)


def test_blurred_keeps_size_and_softens() -> None:
    sharp = phone_jpeg(200, 100, seed=3)
    soft = blurred(sharp)
    with Image.open(io.BytesIO(sharp)) as a, Image.open(io.BytesIO(soft)) as b:
        assert b.format == "JPEG" and b.size == a.size
        assert _roughness(b) < _roughness(a) / 2


def _roughness(image: Image.Image) -> float:
    gray = np.asarray(image.convert("L"), dtype=np.int16)
    return float(np.abs(np.diff(gray, axis=1)).mean())


# --- failures -------------------------------------------------------------------------------


def test_a_file_pydicom_cannot_read_is_rejected(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    with pytest.raises(ArchiveRejected, match="not a readable DICOM"):
        archive.store(b"this is not DICOM", InstanceRef("1.2", "1.2.3", "1.2.3.4"))
    assert not (tmp_path / "DICOMDIR").exists()


def test_an_instance_under_the_wrong_uids_is_rejected(tmp_path: Path, three: list[Photo]) -> None:
    part10, ref = three[0]
    wrong = InstanceRef(ref.study_uid, ref.series_uid, "1.2.3.4")
    with pytest.raises(ArchiveRejected, match="do not match"):
        LocalArchive(tmp_path).store(part10, wrong)


def test_an_unwritable_folder_is_unavailable_with_a_message(
    tmp_path: Path, three: list[Photo]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # root ignores permissions, not ENOTDIR
    archive = LocalArchive(blocker / "archive")
    part10, ref = three[0]
    with pytest.raises(ArchiveUnavailable, match=r"local archive folder .* cannot be used"):
        archive.store(part10, ref)


def test_a_failed_dicomdir_write_leaves_the_old_one_whole(
    stored: LocalArchive, three: list[Photo], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (stored.root / "DICOMDIR").read_bytes()
    part10, ref = _photo("late", "PAT-A")
    assert stored.store(part10, ref).duplicate is False  # the instance is safe: file + index

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the DICOMDIR's temporary file cannot be made
    with pytest.raises(ArchiveUnavailable, match="full disk"):
        stored.flush()
    with pytest.raises(ArchiveUnavailable, match="full disk"):
        stored.is_visible(ref)  # not in the DICOMDIR yet, and the operator is told why
    monkeypatch.undo()
    assert (stored.root / "DICOMDIR").read_bytes() == before
    assert len(FileSet(stored.root / "DICOMDIR")) == 3
    assert not [p for p in stored.root.rglob("*.tmp")]
    stored.flush()  # space again: the next write catches up
    assert len(_file_set(stored)) == 4
    assert stored.is_visible(ref)


def test_a_full_disk_while_storing_is_unavailable_and_the_retry_succeeds(
    stored: LocalArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    part10, ref = _photo("late", "PAT-A")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ArchiveUnavailable, match="full disk"):
        stored.store(part10, ref)
    monkeypatch.undo()
    assert not stored.is_visible(ref)
    assert not [p for p in stored.root.rglob("*.tmp")]
    assert stored.store(part10, ref).duplicate is False
    assert len(_file_set(stored)) == 4


def test_a_file_deleted_by_hand_does_not_make_a_new_one_overwrite_another(
    tmp_path: Path,
) -> None:
    archive = LocalArchive(tmp_path)
    study, series = "1.2.826.0.1.3680043.10.9.1", "1.2.826.0.1.3680043.10.9.2"
    first, second, third = (
        _photo(f"s{i}", "PAT-S", study_uid=study, series_uid=series) for i in range(3)
    )
    archive.store(*first)
    archive.store(*second)
    fs = _file_set(archive)
    Path(next(i for i in fs if i.SOPInstanceUID == first[1].sop_instance_uid).path).unlink()
    archive.store(*third)  # the index, not the DICOMDIR, says which names are taken
    with pytest.warns(UserWarning, match="does not exist"):
        fs = _file_set(archive)
    files = {str(i.SOPInstanceUID): Path(i.path).read_bytes() for i in fs}
    assert files == {second[1].sop_instance_uid: second[0], third[1].sop_instance_uid: third[0]}


# --- concurrency ----------------------------------------------------------------------------


def test_threads_storing_at_once_lose_nothing(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    batches = [[_photo(f"t{t}-{i}", f"PAT-{t}") for i in range(5)] for t in range(4)]
    errors: list[BaseException] = []

    def work(batch: list[Photo]) -> None:
        try:
            for part10, ref in batch:
                archive.store(part10, ref)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = {ref.sop_instance_uid for batch in batches for _, ref in batch}
    assert {str(i.SOPInstanceUID) for i in _file_set(archive)} == expected
    assert all(archive.is_visible(ref) for batch in batches for _, ref in batch)


def _store_in_process(root: str, batch: list[Photo]) -> None:
    archive = LocalArchive(Path(root))
    for part10, ref in batch:
        archive.store(part10, ref)


def test_processes_sharing_a_folder_lose_nothing(tmp_path: Path) -> None:
    batches = [[_photo(f"p{p}-{i}", f"PAT-P{p}") for i in range(5)] for p in range(2)]
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_store_in_process, args=(str(tmp_path), b)) for b in batches]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    expected = {ref.sop_instance_uid for batch in batches for _, ref in batch}
    assert {str(i.SOPInstanceUID) for i in _file_set(LocalArchive(tmp_path))} == expected
    assert dciodvfy_errors(tmp_path / "DICOMDIR") == []
