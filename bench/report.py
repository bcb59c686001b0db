"""Every figure the releases measured, in one run and one Markdown table: ``make bench``.

Run from the repository root after ``make test`` (which installs DCMTK, Orthanc and Chromium)::

    .venv/bin/python -m bench.report            # the full run (about 5 minutes on 2 cores)
    .venv/bin/python -m bench.report --quick    # smoke run: fewer repeats and photos

Sections, each measured by its own benchmark module (their docstrings define every figure):

1. **Wrap** (``bench/wrap_bench.py``): ``wrap_photo`` + writing the Part 10 file against DCMTK
   ``img2dcm -vlp`` on the same generated 1, 12 (plain and EXIF-rotated) and 48 MP JPEGs;
   median and p95 of 15 runs (48 MP: 5), and the peak RSS of one wrap in a fresh process.
2. **Delivery** (``bench/delivery_bench.py``): 12 MP photos uploaded to a real service process
   and followed (its event stream) until QIDO-RS verified them in a real Orthanc, at 1, 4
   and 16 concurrent clients, against bare STOW-RS of the same instances; per photo the CPU
   of the API and of Orthanc, commits and fsyncs; peak RSS growth per concurrent upload;
   EXIF-rotated photos/s at 4 clients; the idle service's CPU; the CPU of the strict decode
   every upload pays (the floor under the API's CPU per photo) beside a full decode; a photo
   read back from the database spool by another replica, beside the same from a local file.
3. **Phone client** (``bench/pwa_bench.py``, its ``measure()``): the first-load size of the
   PWA (gzip) and the median send-to-verified time of a 12 MP photo in headless Chromium.
4. **Local archive** (``bench/archive_bench.py``): ``LocalArchive.store`` with 0, 1,000 and
   10,000 instances held (median and slowest of 9), the DICOMDIR rewrite at 10,000 against
   pydicom's ``FileSet`` encoder, a first ``is_visible`` and ``find_priors``, and rebuilding
   the index from 10,000 files.
5. **Wound measurement** (``bench/measure_bench.py``): relative area error (median / p95)
   and length/width errors per camera-tilt band (0-15, 15-30, 30-45 degrees) on 12 MP
   phantom photos of known geometry, 40 per band (``--quick``: 8), then the same on harder
   photos (more blur and noise, JPEG 70, a smaller marker), half as many.
6. **Wound measurement API** (``bench/wound_api_bench.py``): response times (median and
   slowest of 7, ``--quick``: 3) of the calibration, the measurement (SR and outbox row
   included) and snap-to-edge on a 12 MP photo read back from the archive.

A section that cannot run prints a row saying why, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # also runnable as ``python bench/report.py``
    sys.path.insert(0, str(REPO_ROOT))

from bench import (  # noqa: E402 (needs the path above)
    archive_bench,
    delivery_bench,
    measure_bench,
    wound_api_bench,
    wrap_bench,
)

QUICK_DELIVERY_LEVELS = ((1, 6), (4, 12), (16, 16))
PWA_KEYS = ("first_load_kb_gzip", "send_to_verified_ms")


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure for capture and, where one exists, its reference."""

    figure: str
    capture: str
    reference: str = ""
    note: str = ""


# --- sections ---------------------------------------------------------------------------------


def wrap_rows(results: Sequence[wrap_bench.Result]) -> list[Row]:
    rows = [
        Row(
            f"wrap {r.spec.label} ({r.file_mb:.1f} MB JPEG), med / p95",
            f"{r.ours.median_ms:.1f} / {r.ours.p95_ms:.1f} ms",
            f"img2dcm {r.img2dcm.median_ms:.1f} / {r.img2dcm.p95_ms:.1f} ms",
            f"x{r.ratio:.2f} of img2dcm, n={len(r.ours.samples_ms)}",
        )
        for r in results
    ]
    largest = max(results, key=lambda r: r.spec.width * r.spec.height)
    rows.append(
        Row(
            f"peak RSS, one wrap of {largest.spec.label} in a fresh process",
            f"{largest.memory.peak_rss_mb:.0f} MB",
            note=f"+{largest.memory.rss_increase_mb:.0f} MB over the loaded encoder",
        )
    )
    return rows


def delivery_rows(measured: delivery_bench.Measured) -> list[Row]:
    rows: list[Row] = []
    for level in measured.levels:
        ours, direct = level.ours, level.direct
        concurrency = level.concurrency
        settings = "default settings" if concurrency == 1 else "4+ worker threads"
        c = level.label  # the volume level: a database that has served a clinic a while
        rows.append(
            Row(
                f"delivery c={c}: photos/s, send -> verified",
                f"{ours.photos_per_s:.1f} /s",
                f"direct STOW {direct.photos_per_s:.1f} /s",
                f"x{level.ratio:.2f} of bare STOW, n={level.n}, {len(ours.failures)} failed",
            )
        )
        rows.append(
            Row(
                f"delivery c={c}: accepted (202) -> verified p50 / p95 ({settings})",
                f"{ours.accepted.p50_ms:.0f} / {ours.accepted.p95_ms:.0f} ms",
                f"STOW {direct.request.p50_ms:.0f} / {direct.request.p95_ms:.0f} ms",
                f"202 after {ours.upload.p50_ms:.0f} / {ours.upload.p95_ms:.0f} ms; send -> "
                f"verified {ours.verified.p50_ms:.0f} / {ours.verified.p95_ms:.0f} ms",
            )
        )
        rows.append(
            Row(
                f"delivery c={c}: API CPU per photo",
                f"{ours.api_cpu_ms:.0f} ms",
                f"Orthanc {ours.orthanc_cpu_ms:.0f} ms",
                "user + system, /proc/<pid>/stat"
                + (
                    ""
                    if math.isnan(ours.database_cpu_ms)
                    else f"; both replicas; PostgreSQL {ours.database_cpu_ms:.0f} ms more"
                ),
            )
        )
        if ours.cpu_by_role_ms:
            rows.append(
                Row(
                    f"delivery c={c}: API CPU per photo by thread",
                    " / ".join(
                        f"{role} {ours.cpu_by_role_ms[role]:.0f}"
                        for role in delivery_bench.THREAD_ROLES
                    )
                    + " ms",
                    note="/proc/<pid>/task; requests: the routes' thread pool (the encode and "
                    "its strict decode run there); delivery: CAPTURE_WORKER_THREADS",
                )
            )
        rows.append(
            Row(
                f"delivery c={c}: commits / fsyncs per photo",
                f"{ours.commits:.1f} / {ours.fsyncs:.1f}",
                note=(
                    "spool fsyncs, both replicas'; PostgreSQL's own WAL fsyncs are not counted"
                    if level.replicas
                    else "spool fsyncs; SQLite adds about one WAL fsync per commit"
                ),
            )
        )
        if not math.isnan(ours.statements):
            rows.append(
                Row(
                    f"delivery c={c}: SQL statements per photo",
                    f"{ours.statements:.1f}",
                    note=(
                        "reads and writes both replicas sent, the phone's event stream "
                        "included; the database spool's COPY not counted"
                        if level.replicas
                        else "reads and writes the service sent, the phone's event stream included"
                    ),
                )
            )
        if not math.isnan(ours.written_mb):
            rows.append(
                Row(
                    f"delivery c={c}: written towards storage per photo",
                    f"{ours.written_mb:.2f} MB",
                    f"photo {measured.photo_mb:.2f} MB",
                    (
                        "/proc/<pid>/io write_bytes of both replicas and PostgreSQL's processes"
                        if level.replicas
                        else "/proc/<pid>/io write_bytes: the spool's files and SQLite's"
                    ),
                )
            )
        growth = ours.rss_growth_mb(concurrency)
        rows.append(
            Row(
                f"delivery c={c}: peak RSS growth per concurrent upload",
                f"{growth:.1f} MB",
                f"photo {measured.photo_mb:.1f} MB",
                f"x{growth / measured.photo_mb:.1f} of the photo; peak {ours.peak_rss_mb:.0f} MB",
            )
        )
        if not math.isnan(ours.rotated_per_s):
            rows.append(
                Row(
                    f"rotated 12 MP photos/s, c={c} (EXIF 6, lossless turn, to 202)",
                    f"{ours.rotated_per_s:.1f} /s",
                )
            )
        if not math.isnan(ours.idle_cpu_ms_per_s):
            rows.append(
                Row(
                    "idle CPU of the service over 10 s"
                    + (f", {level.held:,} photos held" if level.held else ""),
                    f"{ours.idle_cpu_ms_per_s:.1f} ms/s",
                    note="default settings, no client" if concurrency == 1 else "no client",
                )
            )
        if measured.repeats and level is measured.repeats[0]:  # beside the run it repeats
            rows.extend(repeat_rows(measured.repeats))
    peak = max(level.ours.peak_rss_mb for level in measured.levels)
    rows.append(Row("peak RSS of the API process during delivery", f"{peak:.0f} MB"))
    rows.append(
        Row(
            "strict decode of a 12 MP upload (every coefficient, 1/8 scale), CPU",
            f"{measured.decode.strict_ms:.1f} ms",
            f"full RGB decode {measured.decode.full_ms:.1f} ms",
            "part of the API CPU per photo above; libjpeg-turbo, same photos, this run",
        )
    )
    back = measured.read_back
    if back is not None:
        rows.append(
            Row(
                "a 12 MP photo read back by a replica that did not accept it "
                "(CAPTURE_SPOOL=database)",
                f"{back.database_ms:.1f} ms, {back.queries} queries for {back.rows} rows "
                f"({back.database_cpu_ms:.1f} ms CPU reading)",
                f"from a local spool file {back.folder_ms:.1f} ms",
                "what the replica delivering a dead one's photos reads; this run",
            )
        )
    return rows


def repeat_rows(runs: Sequence[delivery_bench.LevelResult]) -> list[Row]:
    """The repeated level's rate and CPU as median (lowest-highest) over its runs: the figures
    a goal is judged by, which one run does not pin down (``delivery_bench.REPEATS``)."""
    if len(runs) < 2:
        return []
    spread = delivery_bench.repeat_spreads(runs)
    label = f"delivery c={runs[0].label}, {len(runs)} runs"
    note = "median (lowest-highest); each run a fresh service and a cleared archive"

    def shown(name: str, digits: int, unit: str = "") -> str:
        s = spread[name]
        return f"{s.median:.{digits}f}{unit} ({s.low:.{digits}f}-{s.high:.{digits}f})"

    return [
        Row(
            f"{label}: photos/s, send -> verified",
            shown("photos_per_s", 1, " /s"),
            f"direct STOW {shown('direct_photos_per_s', 1, ' /s')}",
            f"x{shown('ratio', 2)} of bare STOW; {note}",
        ),
        Row(
            f"{label}: API CPU per photo",
            shown("api_cpu_ms_per_photo", 0, " ms"),
            f"Orthanc {shown('orthanc_cpu_ms_per_photo', 0, ' ms')}",
            note,
        ),
    ]


def pwa_rows(module: str = "bench.pwa_bench") -> list[Row]:
    """The phone client's figures from ``<module>.measure()``, or why there are none."""
    try:
        pwa = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (module, module.rsplit(".", 1)[0]):
            raise
        return _unavailable("phone client", f"{module.replace('.', '/')}.py is not there")
    figures = pwa.measure()
    missing = [key for key in PWA_KEYS if key not in figures]
    if missing:
        return _unavailable("phone client", f"measure() gave no {', '.join(missing)}")
    return [
        Row("PWA first load (gzip)", f"{figures['first_load_kb_gzip']:.0f} KB"),
        Row(
            "PWA send -> verified, 12 MP photo, median",
            f"{figures['send_to_verified_ms']:.0f} ms",
            note="headless Chromium, loopback",
        ),
    ]


def archive_rows(measured: archive_bench.Measured) -> list[Row]:
    """Store time as the archive fills, then the largest size's other figures."""
    rows = []
    for level in measured.levels:
        samples = level.store.samples_ms
        goal = f", goal < {archive_bench.GOAL_MS:.0f} ms" if level.held >= 10_000 else ""
        rows.append(
            Row(
                f"local archive: store with {level.held:,} held, med / max",
                f"{level.store.median_ms:.1f} / {max(samples):.1f} ms",
                note=f"n={len(samples)}, 640x480 photo{goal}",
            )
        )
    big = max(measured.levels, key=lambda level: level.held)
    pydicom = big.pydicom_rewrite_ms
    rows += [
        Row(
            f"local archive: DICOMDIR rewrite with {big.held:,} held, med",
            f"{big.rewrite.median_ms:.0f} ms",
            f"pydicom FileSet {pydicom:.0f} ms" if pydicom is not None else "",
            f"{big.rewrite_cpu_ms:.0f} ms CPU, {big.dicomdir_kb:,.0f} KB",
        ),
        Row(
            f"local archive: first is_visible / find_priors, {big.held:,} held",
            f"{big.first_visible_ms:.1f} / {big.priors_ms:.1f} ms",
            note="a new LocalArchive: opens the index",
        ),
        Row(
            f"local archive: rebuild index + DICOMDIR from {big.held:,} files",
            f"{big.rebuild_s:.1f} s",
            note="capture-api archive rebuild",
        ),
    ]
    return rows


def measure_rows(
    figures: Sequence[measure_bench.BandFigures], harsh: Sequence[measure_bench.BandFigures] = ()
) -> list[Row]:
    """Wound-measurement accuracy per tilt band; ``harsh``: the harder photos' area errors."""
    rows: list[Row] = []
    for f in figures:
        rows.append(
            Row(
                f"wound area error, tilt {f.label}: med / p95",
                f"{f.area_median_pct:.2f} / {f.area_p95_pct:.2f} %",
                f"goal: median < {f.goal_pct:.0f} %",
                f"n={f.n}, {f.refused} refused; marker alone "
                f"{f.calibration_median_pct:.2f} / {f.calibration_p95_pct:.2f} %",
            )
        )
        rows.append(
            Row(
                f"wound length; width error, tilt {f.label}: med / p95",
                f"{f.length_median_mm:.2f} / {f.length_p95_mm:.2f}; "
                f"{f.width_median_mm:.2f} / {f.width_p95_mm:.2f} mm",
                "goal: 1 mm + 3 %",
                f"{f.within_1mm_3pct:.0%} within; perimeter {f.perimeter_median_pct:+.1f} %",
            )
        )
    for f in harsh:
        rows.append(
            Row(
                f"wound area error, harder photos, tilt {f.label}: med / p95",
                f"{f.area_median_pct:.2f} / {f.area_p95_pct:.2f} %",
                f"goal: median < {f.goal_pct:.0f} %",
                f"n={f.n}, {f.refused} refused; {f.within_1mm_3pct:.0%} length/width within",
            )
        )
    return rows


def wound_api_rows(timings: Sequence[wound_api_bench.Timing]) -> list[Row]:
    """The measurement API's response times on a 12 MP photo."""
    return [
        Row(
            f"wound API {t.name} (12 MP photo from the archive): med / slowest",
            f"{t.median_ms:.0f} / {t.slowest_ms:.0f} ms",
            note=f"n={t.n}, in-process, embedded archive",
        )
        for t in timings
    ]


def _unavailable(section: str, why: str) -> list[Row]:
    return [Row(section, "not available", note=why)]


# --- the table --------------------------------------------------------------------------------

HEADER = ("figure", "capture", "reference", "note")


def markdown(rows: Sequence[Row]) -> str:
    """A Markdown table: text columns left-aligned, the figures right-aligned."""
    cells = [HEADER, *((r.figure, r.capture, r.reference, r.note) for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    right = (False, True, True, False)

    def line(values: Sequence[str]) -> str:
        padded = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1))
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(HEADER), rule, *(line(c) for c in cells[1:])])


# --- driver -----------------------------------------------------------------------------------


def run_section(name: str, measure: Callable[[], list[Row]]) -> tuple[list[Row], bool]:
    """Rows of one section, or a "not available" row with the error; and whether it worked."""
    started = time.perf_counter()
    wrap_bench.log(f"== {name} ...")
    try:
        rows = measure()
    except (delivery_bench.BenchError, RuntimeError, OSError, SystemExit) as exc:
        wrap_bench.log(f"{name} failed: {exc}")
        return _unavailable(name, str(exc).splitlines()[0][:160]), False
    wrap_bench.log(f"== {name}: {time.perf_counter() - started:.0f} s")
    return rows, all(r.capture != "not available" for r in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Every benchmark figure in one table.")
    parser.add_argument("--quick", action="store_true", help="smoke run (fewer repeats, photos)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    machines: list[str] = []

    def wrap() -> list[Row]:
        results, machine = wrap_bench.measure(quick=args.quick)
        machines.append(wrap_bench.machine_line(machine))
        return wrap_rows(results)

    def delivery() -> list[Row]:
        levels = QUICK_DELIVERY_LEVELS if args.quick else delivery_bench.DEFAULT_LEVELS
        volume = (4, 8) if args.quick else delivery_bench.VOLUME_LEVEL
        replicas = (4, 8) if args.quick else delivery_bench.REPLICAS_LEVEL
        repeats = 1 if args.quick else delivery_bench.REPEATS
        measured = delivery_bench.measure(levels, volume, replicas, repeats)
        machines.append(delivery_bench.machine_line(measured.machine))
        return delivery_rows(measured)

    def archive() -> list[Row]:
        return archive_rows(archive_bench.measure(quick=args.quick))

    def wounds() -> list[Row]:
        per_band = measure_bench.QUICK_PER_BAND if args.quick else measure_bench.DEFAULT_PER_BAND
        figures = measure_bench.measure(per_band)
        harsh = measure_bench.measure(max(4, per_band // 2), render=measure_bench.HARSH)
        return measure_rows(figures, harsh)

    def wound_api() -> list[Row]:
        return wound_api_rows(wound_api_bench.measure(3 if args.quick else 7))

    sections = [
        ("wrap", wrap),
        ("delivery", delivery),
        ("phone client", pwa_rows),
        ("local archive", archive),
        ("wound measurement", wounds),
        ("wound measurement API", wound_api),
    ]
    rows: list[Row] = []
    ok = True
    for name, measure in sections:
        section_rows, worked = run_section(name, measure)
        rows += section_rows
        ok = ok and worked
    print(markdown(rows))
    print()
    for machine in dict.fromkeys(machines):
        print(machine)
    print(f"total {time.perf_counter() - started:.0f} s{' (--quick)' if args.quick else ''}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
