"""Shared fixtures: the sample photo corpus, generated phone-size photos, independent tools."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import piexif
import pydicom
import pytest
from PIL import Image
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.web.browser import CHROMIUM, launch_chromium

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("CAPTURE_SAMPLES_DIR", REPO.parent / "shared" / "samples" / "photos"))

#: Samples the README calls broken: each must be refused with this reason (a substring).
BROKEN_SAMPLES = {"camera/corrupted.jpg": "premature end of data segment"}


def sample_paths() -> list[Path]:
    """Every photo file in the shared corpus (fails loudly if the corpus is missing)."""
    if not SAMPLES.is_dir():
        raise RuntimeError(f"sample photos not found at {SAMPLES}; set CAPTURE_SAMPLES_DIR")
    files = sorted(
        p
        for p in SAMPLES.rglob("*")
        if p.is_file() and p.suffix.lower() in {".jpg", ".jpeg", ".heic"}
    )
    if len(files) < 20:
        raise RuntimeError(f"only {len(files)} sample photos found under {SAMPLES}")
    return files


def well_formed_samples() -> list[Path]:
    return [p for p in sample_paths() if _rel(p) not in BROKEN_SAMPLES]


def _rel(path: Path) -> str:
    return path.relative_to(SAMPLES).as_posix()


def sample_id(path: Path) -> str:
    return _rel(path)


# --- independent tools ------------------------------------------------------------------------


def require_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is not installed: run `make test` (it installs the apt packages)"
        )
    return found


def dciodvfy_errors(path: Path) -> list[str]:
    """Lines David Clunie's validator reports as errors (it writes to stderr)."""
    result = subprocess.run(
        [require_tool("dciodvfy"), str(path)], capture_output=True, text=True, check=False
    )
    return [
        line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")
    ]


def dcmtk_rgb(path: Path, tmp: Path) -> npt.NDArray[np.int16]:
    """Decode with DCMTK's dcmj2pnm, a reader independent of pydicom and Pillow's plugin."""
    out = tmp / (path.stem + ".dcmtk.png")
    subprocess.run(
        [require_tool("dcmj2pnm"), "+on", str(path), str(out)], check=True, capture_output=True
    )
    return np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)


def pydicom_rgb(path: Path) -> npt.NDArray[np.int16]:
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return pixels.astype(np.int16)


def upright_reference(data: bytes) -> npt.NDArray[np.int16]:
    """The original photo decoded by Pillow and EXIF-transposed: what a phone would show."""
    import pillow_heif
    from PIL import ImageOps

    pillow_heif.register_heif_opener()  # HEIC: libheif applies the container rotation itself
    image = Image.open(io.BytesIO(data))
    return np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.int16)


# --- generated phone photos -------------------------------------------------------------------


def phone_jpeg(
    width: int, height: int, *, orientation: int = 1, gps: bool = False, seed: int = 0
) -> bytes:
    """A camera-like 4:2:0 baseline JPEG with phone EXIF (and GPS when asked)."""
    rng = np.random.default_rng(seed)
    small = rng.normal(128, 45, (max(height // 16, 2), max(width // 16, 2), 3)).clip(0, 255)
    image = Image.fromarray(small.astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    noise = rng.integers(-6, 7, (height, width, 3), dtype=np.int16)
    pixels = (np.asarray(image, dtype=np.int16) + noise).clip(0, 255).astype(np.uint8)
    exif = {
        "0th": {
            piexif.ImageIFD.Make: b"PhoneMaker",
            piexif.ImageIFD.Model: b"Phone 15",
            piexif.ImageIFD.Software: b"17.1",
            piexif.ImageIFD.Orientation: orientation,
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: b"2026:11:02 09:15:30",
            piexif.ExifIFD.SubSecTimeOriginal: b"250",
            piexif.ExifIFD.OffsetTimeOriginal: b"+01:00",
            piexif.ExifIFD.FNumber: (18, 10),
            piexif.ExifIFD.ExposureTime: (1, 120),
            piexif.ExifIFD.ISOSpeedRatings: 80,
            piexif.ExifIFD.FocalLength: (686, 100),
            piexif.ExifIFD.Flash: 16,
        },
        "GPS": {},
    }
    if gps:
        exif["GPS"] = {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((51, 1), (30, 1), (2612, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"W",
            piexif.GPSIFD.GPSLongitude: ((0, 1), (7, 1), (3961, 100)),
        }
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90, subsampling=2, exif=piexif.dump(exif))
    return out.getvalue()


@pytest.fixture(scope="session")
def phone_12mp_rotated_gps() -> bytes:
    """4032x3024 4:2:0, EXIF orientation 6 and GPS: the typical portrait phone photo."""
    return phone_jpeg(4032, 3024, orientation=6, gps=True, seed=6)


@pytest.fixture(scope="session")
def phone_48mp() -> bytes:
    """8064x6048, orientation 1: a 48 MP phone sensor's full-resolution JPEG."""
    return phone_jpeg(8064, 6048, seed=48)


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


# --- Chromium ---------------------------------------------------------------------------------
# One Playwright driver and one browser for the whole run: Playwright's sync API refuses a
# second driver while one is running, so suites (tests/web, tests/security) must share these.


@pytest.fixture
def chromium_installed() -> None:
    """A missing browser fails the browser tests: a skip would pass CI with the PWA untested."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian's chromium is not at {CHROMIUM}: run make test (apt installs it)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (tests.web.browser), never a downloaded one."""
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()
