"""The ``capture-api wrap`` contract, run as a real subprocess (``python -m capture_api wrap``).

``capture-api wrap PHOTO... --out DIR --patient-id ID [--issuer] [--patient-name] [--birth-date]
[--sex] [--body-site] [--laterality] [--sensitivity] [--study-uid]``: one ``<stem>.dcm`` per
accepted photo, a ``[i/n]`` progress line per file, a reason for every reject, exit 1 when any
photo was refused and exit 2 for a usage error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID

from capture_api.capture.anatomy import Laterality, resolve

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "photos"

GOOD = (
    "orientation/portrait_6.jpg",
    "camera/Canon_40D.jpg",
    "gps/DSCN0010.jpg",
    "heic/IMG_5195.HEIC",
)
CORRUPTED = "camera/corrupted.jpg"
STUDY_UID = "2.25.123456789012345678901234567890123"

PATIENT = (
    "--patient-id",
    "PAT-0042",
    "--issuer",
    "1.2.840.99999.1",
    "--patient-name",
    "Doe^Jane",
    "--birth-date",
    "19700131",
    "--sex",
    "F",
)


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples() -> Path:
    """The sample photo folder; CI must have it, so a missing folder fails instead of skipping."""
    folder = Path(os.environ.get("CAPTURE_SAMPLES_DIR") or DEFAULT_SAMPLES)
    missing = [name for name in (*GOOD, CORRUPTED) if not (folder / name).is_file()]
    if missing:
        pytest.fail(
            f"sample photos not found in {folder} (missing: {', '.join(missing)}); put the "
            "shared samples next to the repository (../shared/samples/photos) or set "
            "CAPTURE_SAMPLES_DIR to their 'photos' folder",
            pytrace=False,
        )
    return folder


def _env(uid_root: str | None = None) -> dict[str, str]:
    """The caller's environment without CAPTURE_* settings, with the repo on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTURE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    if uid_root is not None:
        env["CAPTURE_UID_ROOT"] = uid_root
    return env


def run_wrap(
    photos: Sequence[Path | str], out: Path, *options: str, uid_root: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m capture_api wrap PHOTO... --out OUT OPTIONS...``."""
    command = [
        sys.executable,
        "-m",
        "capture_api",
        "wrap",
        *map(str, photos),
        "--out",
        str(out),
        *options,
    ]
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=_env(uid_root),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _dcm_files(out: Path) -> dict[str, Dataset]:
    return {p.name: pydicom.dcmread(p) for p in sorted(out.glob("*.dcm"))}


def _progress_lines(stderr: str) -> dict[int, str]:
    """``{i: line}`` for every ``[i/n]`` progress line."""
    lines: dict[int, str] = {}
    for line in stderr.splitlines():
        match = re.match(r"\s*\[(\d+)/(\d+)\]", line)
        if match:
            lines[int(match.group(1))] = line
    return lines


@dataclass(frozen=True)
class Batch:
    """One mixed run: the good samples, corrupted.jpg and a path that does not exist."""

    inputs: tuple[Path, ...]
    out: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def batch(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    tmp = tmp_path_factory.mktemp("batch")
    inputs = (
        *(samples / name for name in GOOD),
        samples / CORRUPTED,
        tmp / "no-such-photo.jpg",
    )
    out = tmp / "out"
    result = run_wrap(
        inputs,
        out,
        *PATIENT,
        "--body-site",
        "left forearm",
        "--sensitivity",
        "restricted",
    )
    return Batch(inputs, out, result)


# --- a mixed batch ---------------------------------------------------------------------------


def test_mixed_batch_exits_1_and_writes_one_file_per_good_photo(batch: Batch) -> None:
    assert batch.result.returncode == 1, batch.result.stderr
    expected = {f"{Path(name).stem}.dcm" for name in GOOD}
    assert {p.name for p in batch.out.iterdir()} == expected
    for ds in _dcm_files(batch.out).values():
        assert ds.SOPClassUID == pydicom.uid.VLPhotographicImageStorage


def test_mixed_batch_reports_progress_and_a_reason_per_reject(batch: Batch) -> None:
    stderr = batch.result.stderr
    total = len(batch.inputs)
    progress = _progress_lines(stderr)
    assert sorted(progress) == list(range(1, total + 1)), stderr
    for number, path in enumerate(batch.inputs, start=1):
        line = progress[number]
        assert line.lstrip().startswith(f"[{number}/{total}]"), line
        assert path.name in line, line

    corrupted_line = progress[len(GOOD) + 1]
    assert "corrupted.jpg" in corrupted_line
    assert "premature end of data segment" in corrupted_line, corrupted_line

    missing_line = progress[len(GOOD) + 2]
    assert "no-such-photo.jpg" in missing_line
    reason = missing_line.split("no-such-photo.jpg", 1)[1].lstrip(": ").strip()
    assert re.search(r"no such file|not found|does not exist|cannot read", reason, re.I), (
        missing_line
    )

    for number in range(1, len(GOOD) + 1):
        assert "REJECT" not in progress[number].upper(), progress[number]
    assert f"{len(GOOD)} of {total} photos wrapped" in stderr, stderr


def test_mixed_batch_outputs_pass_dciodvfy(batch: Batch) -> None:
    dciodvfy = shutil.which("dciodvfy")
    assert dciodvfy, "dciodvfy not found: install the Debian package dicom3tools (make apt-test)"
    files = sorted(batch.out.glob("*.dcm"))
    assert len(files) == len(GOOD)
    for path in files:
        run = subprocess.run(
            [dciodvfy, str(path)], capture_output=True, text=True, timeout=120, check=False
        )
        report = run.stdout + run.stderr
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert errors == [], f"{path.name}:\n" + "\n".join(errors)


def test_mixed_batch_outputs_carry_the_patient_and_capture_context(batch: Batch) -> None:
    site, _ = resolve("left forearm")
    datasets = _dcm_files(batch.out)
    assert len(datasets) == len(GOOD)
    study_uids = set()
    for name, ds in datasets.items():
        assert ds.PatientID == "PAT-0042", name
        assert ds.IssuerOfPatientID == "1.2.840.99999.1", name
        assert str(ds.PatientName) == "Doe^Jane", name
        assert ds.PatientBirthDate == "19700131", name
        assert ds.PatientSex == "F", name
        assert ds.AnatomicRegionSequence[0].CodeValue == site.code_value, name
        assert ds.ImageLaterality == "L", name
        block = ds.private_block(0x0011, "CAPTURE SENSITIVITY 1")
        assert block[0x10].value == "R", name
        assert UID(ds.StudyInstanceUID).is_valid, ds.StudyInstanceUID
        study_uids.add(ds.StudyInstanceUID)
    assert len(study_uids) == 1, study_uids
    sop_uids = {ds.SOPInstanceUID for ds in datasets.values()}
    assert len(sop_uids) == len(GOOD)


def test_study_uid_option_puts_every_photo_in_that_study(samples: Path, tmp_path: Path) -> None:
    photos = [samples / GOOD[0], samples / GOOD[1]]
    result = run_wrap(photos, tmp_path, "--patient-id", "PAT-1", "--study-uid", STUDY_UID)
    assert result.returncode == 0, result.stderr
    datasets = _dcm_files(tmp_path)
    assert len(datasets) == 2
    assert {ds.StudyInstanceUID for ds in datasets.values()} == {STUDY_UID}


def test_invalid_study_uid_is_a_usage_error(samples: Path, tmp_path: Path) -> None:
    result = run_wrap([samples / GOOD[1]], tmp_path, "--patient-id", "P", "--study-uid", "abc")
    assert result.returncode == 2, result.stderr
    assert "not a valid DICOM UID" in result.stderr
    assert list(tmp_path.glob("*.dcm")) == []


def test_the_same_photo_twice_is_wrapped_once(samples: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy" / "again.jpg"
    copy.parent.mkdir()
    copy.write_bytes((samples / GOOD[1]).read_bytes())
    out = tmp_path / "out"
    result = run_wrap([samples / GOOD[1], copy], out, "--patient-id", "P", "--body-site", "sacrum")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in out.glob("*.dcm")] == ["Canon_40D.dcm"]
    assert "skipped" in result.stderr and "the same photo as" in result.stderr


def test_output_path_that_is_a_file_is_a_usage_error(samples: Path, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    result = run_wrap([samples / GOOD[1]], not_a_folder, "--patient-id", "P")
    assert result.returncode == 2
    assert "output folder" in result.stderr and "Traceback" not in result.stderr


# --- idempotent import -----------------------------------------------------------------------


@pytest.mark.parametrize("uid_root", [None, "1.2.3.4"], ids=["default-2.25", "org-root"])
def test_rerunning_the_same_command_gives_the_same_uids(
    samples: Path, tmp_path: Path, uid_root: str | None
) -> None:
    photos = [samples / GOOD[0], samples / GOOD[3]]
    options = ("--patient-id", "PAT-7", "--body-site", "sacrum")

    first = run_wrap(photos, tmp_path, *options, uid_root=uid_root)
    assert first.returncode == 0, first.stderr
    before = {n: (ds.SOPInstanceUID, ds.StudyInstanceUID) for n, ds in _dcm_files(tmp_path).items()}

    second = run_wrap(photos, tmp_path, *options, uid_root=uid_root)
    assert second.returncode == 0, second.stderr
    after = {n: (ds.SOPInstanceUID, ds.StudyInstanceUID) for n, ds in _dcm_files(tmp_path).items()}

    assert len(before) == 2
    assert after == before, "re-import gave new UIDs: the import is not idempotent"
    if uid_root is not None:
        assert all(sop.startswith(f"{uid_root}.") for sop, _ in after.values())


# --- exit codes and usage errors -------------------------------------------------------------


def test_all_good_batch_exits_0(samples: Path, tmp_path: Path) -> None:
    photos = [samples / GOOD[1], samples / GOOD[2]]
    result = run_wrap(photos, tmp_path, "--patient-id", "PAT-2", "--body-site", "sacrum")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.dcm")) == ["Canon_40D.dcm", "DSCN0010.dcm"]
    assert "2 of 2 photos wrapped" in result.stderr
    assert "REJECT" not in result.stderr.upper()


def test_paired_body_site_without_a_side_is_one_usage_error(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    photos = [samples / GOOD[0], samples / GOOD[1]]
    result = run_wrap(photos, out, "--patient-id", "PAT-3", "--body-site", "forearm")
    assert result.returncode == 2, result.stderr
    assert "--laterality" in result.stderr and "one side of the body" in result.stderr
    assert _progress_lines(result.stderr) == {}, "no photo is tried before the usage error"
    assert result.stderr.count("--laterality") == 1
    assert not list(out.glob("*.dcm"))


def test_unknown_body_site_is_a_usage_error(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_wrap([samples / GOOD[1]], out, "--patient-id", "P", "--body-site", "xyzzy")
    assert result.returncode == 2, result.stderr
    assert "xyzzy" in result.stderr
    assert not list(out.glob("*.dcm"))


def test_bad_birth_date_is_a_usage_error(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_wrap([samples / GOOD[1]], out, "--patient-id", "P", "--birth-date", "1970-01-01")
    assert result.returncode == 2, result.stderr
    assert "1970-01-01" in result.stderr
    assert not list(out.glob("*.dcm"))


def test_missing_patient_id_is_an_argparse_error(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_wrap([samples / GOOD[1]], out)
    assert result.returncode == 2, result.stderr
    assert "--patient-id" in result.stderr
    assert not out.exists()


# --- laterality ------------------------------------------------------------------------------


def test_laterality_option_overrides_the_side_in_the_body_site(
    samples: Path, tmp_path: Path
) -> None:
    result = run_wrap(
        [samples / GOOD[1]],
        tmp_path,
        "--patient-id",
        "PAT-4",
        "--body-site",
        "left forearm",
        "--laterality",
        "R",
    )
    assert result.returncode == 0, result.stderr
    ds = pydicom.dcmread(tmp_path / "Canon_40D.dcm")
    site, _ = resolve("left forearm")
    assert ds.ImageLaterality == "R"
    region = ds.AnatomicRegionSequence[0]
    assert region.CodeValue == site.code_value
    right, left = Laterality.RIGHT.modifier_code, Laterality.LEFT.modifier_code
    assert right is not None and left is not None
    modifiers = {item.CodeValue for item in region.get("AnatomicRegionModifierSequence", [])}
    assert left.value not in modifiers
    if modifiers:
        assert modifiers == {right.value}
