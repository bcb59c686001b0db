"""Benchmark ``wrap_photo`` (phone JPEG -> DICOM VL Photographic Image) against DCMTK ``img2dcm``.

Run from the repository root::

    PYTHONPATH=. /tmp/venv/bin/python bench/wrap_bench.py            # full run
    PYTHONPATH=. /tmp/venv/bin/python bench/wrap_bench.py --quick    # smoke run, 3 repeats
    PYTHONPATH=. /tmp/venv/bin/python bench/wrap_bench.py --repeat 30 --json bench.json

The script writes camera-like JPEGs to a temporary directory (fixed seed, so every run encodes
the same bytes): 1 MP (1152x864), 12 MP (4032x3024), the same 12 MP pixels tagged EXIF
orientation 6 ("12 MP rotated", which exercises the lossless-rotation path) and 48 MP
(8064x6048). They are baseline JPEGs, 4:2:0, quality 92, with an EXIF block (Make, Model,
DateTimeOriginal, Orientation) and gradients, shapes and sensor-like noise so their sizes are
those of real phone photos. It needs DCMTK's ``img2dcm`` on PATH (``apt-get install dcmtk``).

What each figure means (MB = 10^6 bytes throughout):

* ``file MB``: size of the input JPEG.
* ``ours med/p95 ms``: wall time, in this process, of reading the file, ``wrap_photo`` and
  ``WrappedPhoto.save`` to a ``.dcm``; median and 95th percentile (nearest rank: with 5 runs
  that is the slowest) over ``n`` runs, after one uncounted warm-up run.
* ``img2dcm med/p95 ms``: wall time of ``img2dcm -vlp -q IN OUT`` on the same file, process
  start included, same ``n`` runs after one warm-up.
* ``ratio``: ours median / img2dcm median (below 1: we are faster).
* ``peak RSS MB``: ``ru_maxrss`` of a fresh child process that imports the encoder and wraps the
  file once; ``RSS +MB`` is that peak minus ``ru_maxrss`` right after the imports, i.e. what
  one wrap of that photo costs on top of a loaded service.
* ``tracemalloc MB``: peak of Python-level allocations traced during that one wrap in the
  child (buffers allocated by C libraries outside Python's allocator are not seen).

``--json PATH`` writes the same figures, plus the raw samples and the machine, as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from capture_api.capture.model import CaptureContext

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED = 20240517
JPEG_QUALITY = 92
QUICK_REPEAT = 3
MB = 1_000_000
INSTALL_HINT = "apt-get install dcmtk"


@dataclass(frozen=True)
class PhotoSpec:
    """One benchmark photo: its label, pixel size, EXIF orientation, seed and default repeats."""

    label: str
    slug: str
    width: int
    height: int
    orientation: int
    seed: int
    repeat: int


PHOTOS = (
    PhotoSpec("1 MP", "1mp", 1152, 864, 1, SEED + 1, 15),
    PhotoSpec("12 MP", "12mp", 4032, 3024, 1, SEED + 12, 15),
    PhotoSpec("12 MP rotated", "12mp-rot6", 4032, 3024, 6, SEED + 12, 15),
    PhotoSpec("48 MP", "48mp", 8064, 6048, 1, SEED + 48, 5),
)


@dataclass(frozen=True)
class Timing:
    """Wall-time samples of one operation, in milliseconds."""

    samples_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        """95th percentile by nearest rank: the smallest sample >= 95 % of the samples."""
        ordered = sorted(self.samples_ms)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]


@dataclass(frozen=True)
class Memory:
    """What one wrap costs in a fresh process (see the module docstring)."""

    peak_rss_mb: float
    import_rss_mb: float
    rss_increase_mb: float
    tracemalloc_peak_mb: float


@dataclass(frozen=True)
class Result:
    """All figures for one photo."""

    spec: PhotoSpec
    file_mb: float
    ours: Timing
    img2dcm: Timing
    memory: Memory

    @property
    def ratio(self) -> float:
        return self.ours.median_ms / self.img2dcm.median_ms


class Wrapped(Protocol):
    """The part of ``capture_api.encode.pipeline.WrappedPhoto`` the benchmark uses."""

    def save(self, path: Path) -> None: ...


WrapFn = Callable[[bytes, "CaptureContext"], Wrapped]


# --- photo generation ---------------------------------------------------------------------


def camera_exif(orientation: int) -> Image.Exif:
    """An EXIF block like a phone's: Make, Model, DateTimeOriginal and Orientation."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "BenchCam"
    exif[ExifTags.Base.Model] = "BenchPhone 15 Pro"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Software] = "capture_api bench"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:17 10:32:05"
    return exif


def scene_base(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """Smooth colour gradients, coarse texture and a few soft-edged shapes, at 1/8 size."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    w, h = width // 8, height // 8
    corners = rng.integers(40, 220, (6, 8, 3), dtype=np.uint8)
    gradient = Image.fromarray(corners).resize((w, h), Image.Resampling.BICUBIC)
    base = np.asarray(gradient, dtype=np.float32) + rng.normal(0.0, 8.0, (h, w, 1))
    small = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(small)
    for _ in range(40):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        rx, ry = int(rng.integers(w // 40, w // 6)), int(rng.integers(h // 40, h // 6))
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=colour)
    return small.filter(ImageFilter.GaussianBlur(0.7))


def photo_pixels(width: int, height: int, seed: int) -> Image.Image:
    """Camera-like RGB pixels: the upscaled scene plus fine detail and sensor noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    full = Image.Resampling.BICUBIC
    pixels = np.array(scene_base(width, height, rng).resize((width, height), full))
    detail_half = rng.normal(0.0, 8.0, (height // 2, width // 2)).astype(np.float32)
    detail_img = Image.fromarray(detail_half).resize((width, height))
    detail = np.asarray(detail_img, dtype=np.float32)
    band = 256  # rows at a time, so 48 MP needs no full-size float RGB array
    for top in range(0, height, band):
        rows = pixels[top : top + band]
        n = rows.shape[0]
        luma = rng.normal(0.0, 4.0, (n, width, 1)) + detail[top : top + band, :, None]
        chroma = rng.normal(0.0, 4.0 / 3, (n, width, 3))
        rows[...] = np.clip(rows + luma + chroma, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def check_jpeg(path: Path, spec: PhotoSpec) -> None:
    """Make sure the file is what the benchmark claims: baseline, 4:2:0, right EXIF."""
    from PIL import ExifTags, Image, JpegImagePlugin

    with Image.open(path) as im:
        assert isinstance(im, JpegImagePlugin.JpegImageFile)
        problems = []
        if im.info.get("progressive") or im.info.get("progression"):
            problems.append("progressive")
        if JpegImagePlugin.get_sampling(im) != 2:
            problems.append("not 4:2:0")
        if im.size != (spec.width, spec.height):
            problems.append(f"size {im.size}")
        if im.getexif().get(ExifTags.Base.Orientation) != spec.orientation:
            problems.append("wrong orientation")
    if problems:
        raise RuntimeError(f"generated {path.name} is wrong: {', '.join(problems)}")


def write_photo(spec: PhotoSpec, directory: Path) -> Path:
    """Generate, save and check one benchmark JPEG; report its size on stderr."""
    started = time.perf_counter()
    path = directory / f"{spec.slug}.jpg"
    image = photo_pixels(spec.width, spec.height, spec.seed)
    image.save(
        path,
        "JPEG",
        quality=JPEG_QUALITY,
        subsampling=2,
        progressive=False,
        optimize=False,
        exif=camera_exif(spec.orientation),
    )
    del image
    gc.collect()
    check_jpeg(path, spec)
    elapsed = time.perf_counter() - started
    mb = path.stat().st_size / MB
    log(f"generated {spec.label:<13} {spec.width}x{spec.height}: {mb:6.2f} MB ({elapsed:.1f} s)")
    return path


# --- timing -------------------------------------------------------------------------------


def load_encoder() -> tuple[WrapFn, CaptureContext]:
    """Import ``wrap_photo`` and build the capture context every wrap uses."""
    from capture_api.capture.model import CaptureContext
    from capture_api.capture.patient import Patient
    from capture_api.encode import pipeline

    ctx = CaptureContext(capture_id="bench-0001", patient=Patient(patient_id="BENCH-1"))
    return pipeline.wrap_photo, ctx


def wrap_once(wrap: WrapFn, ctx: CaptureContext, photo: Path, out: Path) -> None:
    """One wrap as the service does it: read the upload, wrap it, write the Part 10 file."""
    wrap(photo.read_bytes(), ctx).save(out)


def timed_runs(action: Callable[[], object], repeat: int) -> Timing:
    """Run ``action`` once to warm up, then ``repeat`` times, timing each run."""
    action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        action()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return Timing(samples)


def time_ours(wrap: WrapFn, ctx: CaptureContext, photo: Path, repeat: int) -> Timing:
    out = photo.with_suffix(".ours.dcm")
    return timed_runs(lambda: wrap_once(wrap, ctx, photo, out), repeat)


def run_img2dcm(img2dcm: str, photo: Path, out: Path) -> None:
    done = subprocess.run(
        [img2dcm, "-vlp", "-q", str(photo), str(out)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"img2dcm failed on {photo.name}: {done.stderr.strip()}")


def time_img2dcm(img2dcm: str, photo: Path, repeat: int) -> Timing:
    out = photo.with_suffix(".img2dcm.dcm")
    return timed_runs(lambda: run_img2dcm(img2dcm, photo, out), repeat)


# --- memory (child process) ---------------------------------------------------------------


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def check_rss_not_inherited(after_imports: int) -> None:
    """Fail if ``ru_maxrss`` carries another process's peak (Linux keeps it across exec)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
    own_peak = int(fields["VmHWM"].split()[0]) * 1024
    if after_imports > own_peak * 1.1 + MB:
        raise RuntimeError(
            f"ru_maxrss ({after_imports / MB:.0f} MB) exceeds this process's own peak "
            f"({own_peak / MB:.0f} MB): the memory child was not started fresh"
        )


def child_measure(photo: Path) -> None:
    """In a fresh process: import the encoder, wrap ``photo`` once, print memory as JSON."""
    wrap, ctx = load_encoder()
    after_imports = max_rss_bytes()
    check_rss_not_inherited(after_imports)
    tracemalloc.start()
    wrap_once(wrap, ctx, photo, photo.with_suffix(".child.dcm"))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = max_rss_bytes()
    memory = Memory(
        peak_rss_mb=peak / MB,
        import_rss_mb=after_imports / MB,
        rss_increase_mb=(peak - after_imports) / MB,
        tracemalloc_peak_mb=traced_peak / MB,
    )
    print(json.dumps(asdict(memory)))


def child_command(photo: Path) -> list[str]:
    """The command that runs :func:`child_measure` with a ``ru_maxrss`` of its own.

    Linux carries the high-water RSS of the image replaced by ``exec`` into the new program,
    and a child spawned straight from here would start with this process's peak (hundreds of
    MB after generating 48 MP). A small ``sh`` in between forks the child, so it inherits the
    shell's few MB instead. ``"$@"; exit $?`` keeps the shell from exec-ing in place.
    """
    script = str(Path(__file__).resolve())
    python = [sys.executable, script, "--child", str(photo)]
    if sys.platform == "win32":
        return python
    return ["/bin/sh", "-c", '"$@"; exit $?', "sh", *python]


def measure_memory(photo: Path) -> Memory:
    """Run :func:`child_measure` on ``photo`` in a fresh interpreter and read its figures."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        child_command(photo), capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed on {photo.name}:\n{done.stderr.strip()}")
    return Memory(**json.loads(done.stdout.strip().splitlines()[-1]))


# --- report -------------------------------------------------------------------------------

COLUMNS = (
    "photo",
    "pixels",
    "n",
    "file MB",
    "ours med ms",
    "ours p95 ms",
    "img2dcm med ms",
    "img2dcm p95 ms",
    "ratio",
    "peak RSS MB",
    "RSS +MB",
    "tracemalloc MB",
)


def table_row(result: Result) -> list[str]:
    spec, mem = result.spec, result.memory
    return [
        spec.label,
        f"{spec.width}x{spec.height}",
        str(len(result.ours.samples_ms)),
        f"{result.file_mb:.2f}",
        f"{result.ours.median_ms:.1f}",
        f"{result.ours.p95_ms:.1f}",
        f"{result.img2dcm.median_ms:.1f}",
        f"{result.img2dcm.p95_ms:.1f}",
        f"{result.ratio:.2f}",
        f"{mem.peak_rss_mb:.1f}",
        f"{mem.rss_increase_mb:.1f}",
        f"{mem.tracemalloc_peak_mb:.1f}",
    ]


def format_table(results: Sequence[Result]) -> str:
    """A markdown table: the label left-aligned, every figure right-aligned."""
    rows = [table_row(r) for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ":" + "-" * (w + 1) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(COLUMNS), rule, *(line(r) for r in rows)])


def cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def dcmtk_version(img2dcm: str) -> str:
    done = subprocess.run([img2dcm, "--version"], capture_output=True, text=True, check=False)
    words = done.stdout.split()
    return next((w.lstrip("v") for w in words if w.startswith("v3") or w.startswith("v4")), "?")


def machine_info(img2dcm: str) -> dict[str, str | int | None]:
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pydicom": metadata.version("pydicom"),
        "pillow": metadata.version("pillow"),
        "numpy": metadata.version("numpy"),
        "dcmtk": dcmtk_version(img2dcm),
    }


def machine_line(machine: dict[str, str | int | None]) -> str:
    return (
        f"machine: {machine['cpu']}, {machine['cpu_count']} CPUs, {machine['platform']}; "
        f"Python {machine['python']}, pydicom {machine['pydicom']}, "
        f"Pillow {machine['pillow']}, numpy {machine['numpy']}, DCMTK {machine['dcmtk']}"
    )


def results_json(results: Sequence[Result], machine: dict[str, str | int | None]) -> str:
    photos = [
        {
            "label": r.spec.label,
            "width": r.spec.width,
            "height": r.spec.height,
            "orientation": r.spec.orientation,
            "file_mb": r.file_mb,
            "runs": len(r.ours.samples_ms),
            "ours_median_ms": r.ours.median_ms,
            "ours_p95_ms": r.ours.p95_ms,
            "img2dcm_median_ms": r.img2dcm.median_ms,
            "img2dcm_p95_ms": r.img2dcm.p95_ms,
            "ratio": r.ratio,
            **asdict(r.memory),
            "ours_samples_ms": r.ours.samples_ms,
            "img2dcm_samples_ms": r.img2dcm.samples_ms,
        }
        for r in results
    ]
    return json.dumps({"machine": machine, "photos": photos}, indent=2) + "\n"


# --- driver -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time and size wrap_photo on 1, 12 and 48 MP JPEGs against img2dcm -vlp."
    )
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument(
        "--repeat", type=int, metavar="N", help="timed runs per photo (default 15, 48 MP: 5)"
    )
    runs.add_argument(
        "--quick", action="store_true", help=f"smoke run: {QUICK_REPEAT} timed runs per photo"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def repeats_for(spec: PhotoSpec, repeat: int | None, quick: bool) -> int:
    if quick:
        return QUICK_REPEAT
    return repeat if repeat is not None else spec.repeat


def require_img2dcm() -> str:
    found = shutil.which("img2dcm")
    if found is None:
        sys.exit(f"wrap_bench: img2dcm (DCMTK) is not on PATH; install it: {INSTALL_HINT}")
    return found


def bench_photo(
    spec: PhotoSpec, photo: Path, repeat: int, img2dcm: str, wrap: WrapFn, ctx: CaptureContext
) -> Result:
    log(f"timing {spec.label}: {repeat} runs + 1 warm-up each, then one wrap for memory")
    return Result(
        spec=spec,
        file_mb=photo.stat().st_size / MB,
        ours=time_ours(wrap, ctx, photo, repeat),
        img2dcm=time_img2dcm(img2dcm, photo, repeat),
        memory=measure_memory(photo),
    )


Machine = dict[str, str | int | None]


def measure(repeat: int | None = None, *, quick: bool = False) -> tuple[list[Result], Machine]:
    """The whole benchmark, without printing: every photo's figures and the machine.

    ``repeat`` timed runs per photo (default: each photo's own), ``quick`` for a smoke run.
    Used by ``main`` and by ``bench/report.py`` (``make bench``).
    """
    img2dcm = require_img2dcm()
    try:
        wrap, ctx = load_encoder()
    except ImportError as exc:
        sys.exit(f"wrap_bench: cannot import the encoder ({exc}); run with PYTHONPATH=<repo root>")
    with tempfile.TemporaryDirectory(prefix="wrap-bench-") as tmp:
        directory = Path(tmp)
        photos = [write_photo(spec, directory) for spec in PHOTOS]
        results = [
            bench_photo(spec, photo, repeats_for(spec, repeat, quick), img2dcm, wrap, ctx)
            for spec, photo in zip(PHOTOS, photos, strict=True)
        ]
    return results, machine_info(img2dcm)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        child_measure(args.child)
        return 0
    results, machine = measure(args.repeat, quick=args.quick)
    print(format_table(results))
    print(machine_line(machine))
    if args.json is not None:
        args.json.write_text(results_json(results, machine))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
