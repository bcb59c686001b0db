"""Benchmark delivery end to end: phone upload -> DICOM -> STOW-RS -> QIDO-RS-verified, on Orthanc.

Run from the repository root::

    PYTHONPATH=. /tmp/venv/bin/python bench/delivery_bench.py            # full run (~1-3 min)
    PYTHONPATH=. /tmp/venv/bin/python bench/delivery_bench.py --quick    # smoke run
    PYTHONPATH=. /tmp/venv/bin/python bench/delivery_bench.py --json delivery.json

It needs Orthanc with its DICOMweb plugin (``apt-get install orthanc orthanc-dicomweb``).

Set-up: a fresh Orthanc (``tests.orthanc.OrthancServer``, storage in a temporary folder) and,
for each concurrency level, a fresh service process (``python -m capture_api run``) with its
own SQLite database and spool in a temporary ``CAPTURE_DATA_DIR``,
``CAPTURE_DICOMWEB_URL`` = that Orthanc, ``CAPTURE_BENCH_COUNTERS`` = true (fsyncs and commits
in /metrics) and ``MALLOC_ARENA_MAX`` = 2 (as the container). Concurrency 1 runs with every
other setting at its default (the latency a site gets out of the box); the higher levels with
``CAPTURE_WORKER_THREADS`` = max(4, concurrency) and every other setting at its default too:
the workers are woken by the commits that give them work, so a short idle poll (which this
bench used to set, 0.02 s) would only add empty claims (about a quarter of the service's
Python time at concurrency 4). Orthanc is emptied before every measured phase, so each
phase stores into an archive holding only its own warm-up instance.

Photos: camera-like 12 MP JPEGs (4032x3024, baseline, 4:2:0, quality 92, EXIF; about 3.8 MB
each), made with ``bench/wrap_bench.py``'s generator from three seeds, each photo then given
its own pixels by XOR-ing a 252x252 patch at a per-photo position before encoding; every photo
is distinct (checked by SHA-256). Every level uploads the first ``n`` of them with new
capture ids, so every upload makes a new SOP instance.

What each figure means (MB = 10^6 bytes; percentiles are nearest rank):

* ``ours photos/s``: ``n`` photos sent by ``c`` client threads (one httpx client each, each
  sending its next photo as soon as the previous one got its 202), divided by the time from
  the first send to the last photo seen ``verified`` (``n`` = the photos seen verified):
  sustained accepted-to-verified throughput, service and archive together.
* ``ours p50/p95 ms``: per photo, from just before the upload starts to the event of the
  context's Server-Sent Events stream (``GET /api/v1/captures/events``, what the phone
  follows) that first says ``verified`` (so it includes the upload, the in-request encode,
  the outbox's STOW-RS and its QIDO-RS check, and the stream's 0.25 s check interval).
* ``upload p50/p95 ms``: per photo, send to 202 (the photo is spooled, committed and wrapped).
* ``202->verified p50/p95 ms``: per photo, from its 202 to the event that says ``verified``
  (what the issue's "accepted -> verified" means: the time the service takes once it has
  promised to keep the photo).
* ``direct photos/s`` and ``direct p50/p95 ms``: the floor. The same photos, wrapped to DICOM
  once in this process by ``capture_api.encode.pipeline.wrap_photo``, stored by ``c`` threads
  straight into Orthanc with ``DicomWebArchive.store`` (one STOW-RS request per instance, the
  product's own multipart/related body), ``n`` requests; latency is one request.
* ``ratio``: direct photos/s / ours photos/s: how many times slower than the bare STOW floor.
* ``failed``: photos not ``verified`` when the level ends: seen ``failed`` before verification,
  or seen ``verified`` and then no longer (the poller keeps watching for 1 s after the last
  photo, untimed). Such photos still count in ``ours`` if they were seen verified; the reasons
  go to stderr and the JSON, and the exit status is 1.
* ``API peak RSS MB``: ``VmHWM`` of the service process (``/proc/<pid>/status``) at the end of
  the level. The service restarts between levels, so each level's peak is its own. Unlike
  ``ru_maxrss``, ``VmHWM`` belongs to the address space and starts afresh at ``exec``.
  ``RSS growth per upload``: (that peak - ``VmRSS`` after the warm-up) / concurrency.
* ``API CPU ms`` and ``Orthanc CPU ms`` per photo: user + system time of each process
  (``/proc/<pid>/stat``) over the measured phase, divided by the photos.
* The ``REPEATED_CONCURRENCY`` level runs ``REPEATS`` times in all (each on a fresh service
  and a cleared archive); its photos/s, ratio and CPU per photo are also given as median
  (lowest-highest) over the runs (``repeat_spreads``). Its other figures are the first run's.
* ``API CPU ms per photo by thread``: the same CPU split by what each thread does, read from
  ``/proc/<pid>/task/*/stat`` and the threads' names (``capture_api.os_threads``): the
  ``event loop`` (the process's first thread), ``delivery`` (``CAPTURE_WORKER_THREADS``),
  ``other`` (heartbeat, listener, ...) and ``requests``: the rest, i.e. the routes' thread pool,
  where the encode and its strict decode run (and any thread that ended meanwhile).
* ``commits`` and ``fsyncs`` per photo: the growth of ``capture_bench_commits_total`` and
  ``capture_bench_fsyncs_total`` (``/metrics``) over the measured phase, divided by the photos.
  The fsyncs are the service's own (spool files and their folders); SQLite's WAL fsyncs happen
  in C, about one per commit at ``synchronous=FULL``, and are not in that count.
* ``SQL`` statements per photo: the growth of ``capture_bench_statements_total``, every
  statement the service sent (reads, writes, ``BEGIN IMMEDIATE``; the database spool's COPY
  is not counted), over the measured phase, divided by the photos: each is Python work and,
  on SQLite, hand-overs of the GIL between the service's threads.
* ``written`` per photo (``bench/report.py``): bytes the service wrote towards storage over the
  measured phase (``/proc/<pid>/io`` ``write_bytes``: the spool's files and SQLite's), per
  photo; on the replicas level both replicas' and PostgreSQL's processes' (its WAL and
  tables). The photo itself is the floor: its DICOM object is spooled as references to it.
* ``rotated photos/s`` (concurrency 4 only): after the measured phase, 12 MP photos with EXIF
  orientation 6 (the same pixels, rotated losslessly by the service) uploaded by 4 clients:
  photos answered 202 per second of the phase.
* ``idle CPU`` (concurrency 1 and the volume level): the service's CPU over 10 s with nothing
  to do, after its level (delivery worker threads idle at the default poll interval, no
  client).
* The volume level (last, ``4 (100,000 held)``): concurrency 4 again, but after the warm-up
  the service's database is filled (``bench/volume.py``) with 4,000 contexts of 25 verified
  photos and 4 audit events per photo, as a database that has served a clinic for a year or
  two. Its figures beside the first concurrency 4 level's say whether a photo costs more when
  many are held (issue 13: volume is correctness); ``tests/deliver/test_volume.py`` checks
  every statement of the flow on such a database.
* The replicas level (last, ``4 (PostgreSQL, 2 replicas)``): concurrency 4 on two service
  processes sharing nothing but a fresh PostgreSQL database (``DATABASE_URL``) with
  ``CAPTURE_SPOOL`` = database (each spooled file also in the database, so either replica
  delivers what the other accepted: the scale-out set-up of ``docs/deployment.md``); the
  clients take turns between the replicas, the event stream is followed on the first. CPU,
  commits and fsyncs are both replicas' together, and ``DB CPU ms/photo`` is the PostgreSQL
  server's (every ``postgres`` process, ``/proc/<pid>/stat``): with SQLite that work is inside
  ``API CPU``. RSS growth: both replicas' peaks over their idle RSS, per concurrent upload.
  ``make bench`` starts PostgreSQL (``make pg-up``).
* ``strict decode`` (once per run): the CPU time (this thread's, ``time.thread_time``) of the
  check every upright photo must pass before its 202, ``capture_api.encode.jpeg.decode.
  check_decodes`` (libjpeg-turbo, every coefficient Huffman-decoded, 1/8 scale), median over
  the generated photos, in this process; beside it a full-size RGB decode of the same photos
  (``simplejpeg``, the same engine). It is the part of ``API CPU ms`` that no change to the
  service's Python removes, measured in the same run.

One uncounted warm-up photo goes through each service (and one direct STOW precedes each
direct phase) before timing. Caveat: the service, Orthanc and this load generator (HTTP
clients, poller) share the same CPUs; on a 2-core machine they compete, and the absolute
figures are lower than on a dedicated server. ``--json PATH`` writes every figure, the raw
samples and the machine as JSON.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import functools
import hashlib
import io
import json
import math
import os
import platform
import queue
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.deliver.service_process import ServiceProcess
    from tests.orthanc import OrthancServer

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED = 20240517
BASE_SEEDS = (SEED + 12, SEED + 13, SEED + 14)
WIDTH, HEIGHT = 4032, 3024
JPEG_QUALITY = 92
PATCH = 252  # side of the per-photo XOR patch: 16 x 12 positions fit in 4032 x 3024
MB = 1_000_000
POLL_SECONDS = 0.02
STARTUP_SECONDS = 60.0
LEVEL_TIMEOUT_SECONDS = 300.0
SETTLE_SECONDS = 1.0
HTTP_TIMEOUT_SECONDS = 120.0
INSTALL_HINT = "apt-get install orthanc orthanc-dicomweb"

#: (concurrency, photos) per level.
DEFAULT_LEVELS = ((1, 16), (4, 40), (16, 32))
QUICK_LEVELS = ((1, 6), (4, 12), (16, 16))
#: Enough for a steady figure: 16 photos gave 8.5 and 12.3 /s in two runs of one build.
ROTATED_PHOTOS = 32
#: Reads of one photo back from the database spool (and from a local file), medians kept.
READ_BACK_REPEAT = 9
IDLE_SECONDS = 10.0
#: The volume level: concurrency 4 again, on a database that holds 4,000 contexts of 25
#: verified photos (and 4 audit events each) before the first photo is timed.
VOLUME_LEVEL = (4, 24)
VOLUME_CONTEXTS, VOLUME_PER_CONTEXT, VOLUME_AUDIT_PER_PHOTO = 4_000, 25, 4
#: The replicas level: concurrency 4 on ``REPLICAS`` service processes on one PostgreSQL.
REPLICAS_LEVEL = (4, 24)
REPLICAS = 2
#: The level at this concurrency is run ``REPEATS`` times in all, each time on a fresh service
#: and a cleared archive, for the median and range of its rate and CPU: with one build, one
#: run's API CPU per photo at concurrency 4 ranged from 52 to 67 ms (issue 13), too wide for
#: one run to judge a goal a few ms away. The other figures come from the first run.
REPEATED_CONCURRENCY = 4
REPEATS = 3
EVENTS_PATH = "/api/v1/captures/events"


class BenchError(RuntimeError):
    """The benchmark could not measure what it set out to (the message says why)."""


# --- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """One figure over repeated runs of a level."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


def repeat_spreads(runs: Sequence[LevelResult]) -> dict[str, Spread]:
    """The figures of a level run several times that one run cannot pin down, by name."""
    return {
        "photos_per_s": Spread.of([r.ours.photos_per_s for r in runs]),
        "ratio": Spread.of([r.ratio for r in runs]),
        "api_cpu_ms_per_photo": Spread.of([r.ours.api_cpu_ms for r in runs]),
        "orthanc_cpu_ms_per_photo": Spread.of([r.ours.orthanc_cpu_ms for r in runs]),
        "direct_photos_per_s": Spread.of([r.direct.photos_per_s for r in runs]),
    }


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by nearest rank: the smallest sample >= ``q`` of the samples."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Latencies:
    """Per-photo durations, in milliseconds."""

    samples_ms: list[float]

    @property
    def p50_ms(self) -> float:
        return nearest_rank(self.samples_ms, 0.50)

    @property
    def p95_ms(self) -> float:
        return nearest_rank(self.samples_ms, 0.95)


@dataclass(frozen=True)
class OursResult:
    """One level through the service."""

    photos_per_s: float
    wall_s: float
    verified: Latencies  # send -> seen verified by the poller
    upload: Latencies  # send -> 202
    server: Latencies  # the service's own created_at -> verified_at
    idle_rss_mb: float  # VmRSS after start-up and the warm-up photo
    peak_rss_mb: float  # VmHWM at the end of the level
    failures: list[str]  # captures not verified at the end of the level, with the reason
    orthanc_instances: int  # instances in Orthanc after the level (n + a warm-up per service)
    api_cpu_ms: float = math.nan  # per photo, the service process
    orthanc_cpu_ms: float = math.nan  # per photo, the Orthanc process
    commits: float = math.nan  # database commits per photo
    fsyncs: float = math.nan  # fsync/fdatasync calls per photo
    statements: float = math.nan  # SQL statements the service sent per photo
    rotated_per_s: float = math.nan  # concurrency 4: EXIF-rotated uploads answered per second
    idle_cpu_ms_per_s: float = math.nan  # concurrency 1: CPU ms per second with nothing to do
    database_cpu_ms: float = math.nan  # per photo, the PostgreSQL server (the replicas level)
    accepted: Latencies = field(default_factory=lambda: Latencies([math.nan]))  # 202 -> verified
    #: ``api_cpu_ms`` by thread role (``THREAD_ROLES``), ms per photo
    cpu_by_role_ms: dict[str, float] = field(default_factory=dict)
    written_mb: float = math.nan  # per photo, towards storage (``written_bytes``)

    def rss_growth_mb(self, concurrency: int) -> float:
        """Peak RSS over the idle RSS, per concurrent upload."""
        return (self.peak_rss_mb - self.idle_rss_mb) / concurrency


@dataclass(frozen=True)
class DirectResult:
    """One level of bare STOW-RS requests."""

    photos_per_s: float
    wall_s: float
    request: Latencies


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    n: int
    ours: OursResult
    direct: DirectResult
    held: int = 0  # photos the service's database held before the level (the volume level)
    replicas: int = 0  # service processes on one PostgreSQL (the replicas level); 0: SQLite

    @property
    def label(self) -> str:
        return level_label(self.concurrency, self.held, self.replicas)

    @property
    def ratio(self) -> float:
        return self.direct.photos_per_s / self.ours.photos_per_s


def level_label(concurrency: int, held: int = 0, replicas: int = 0) -> str:
    """A level's name in the tables: its concurrency, and what sets it apart."""
    if replicas:
        return f"{concurrency} (PostgreSQL, {replicas} replicas)"
    if held:
        return f"{concurrency} ({held:,} held)"
    return str(concurrency)


@dataclass
class Sample:
    """One photo's trip through the service (``time.perf_counter`` seconds)."""

    capture_id: str
    photo: int
    sent: float = math.nan
    accepted: float = math.nan
    verified: float = math.nan
    server_ms: float = math.nan
    failure: str | None = None  # why it is not ``verified`` at the end of its level


# --- photos -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_photos(count: int) -> list[bytes]:
    """``count`` distinct camera-like 12 MP JPEGs (see the module docstring)."""
    import numpy as np
    from PIL import Image

    from bench.wrap_bench import camera_exif, photo_pixels

    started = time.perf_counter()
    bases = [np.asarray(photo_pixels(WIDTH, HEIGHT, seed)) for seed in BASE_SEEDS[:count]]
    exif = camera_exif(1)
    columns = WIDTH // PATCH
    photos: list[bytes] = []
    for i in range(count):
        pixels = bases[i % len(bases)].copy()
        cell = i // len(bases)
        top, left = (cell // columns) * PATCH, (cell % columns) * PATCH
        pixels[top : top + PATCH, left : left + PATCH] ^= np.uint8(0x5A)
        out = io.BytesIO()
        Image.fromarray(pixels).save(
            out,
            "JPEG",
            quality=JPEG_QUALITY,
            subsampling=2,
            progressive=False,
            optimize=False,
            exif=exif,
        )
        photos.append(out.getvalue())
    if len({hashlib.sha256(p).digest() for p in photos}) != count:
        raise BenchError("generated photos are not all distinct")
    mean_mb = sum(map(len, photos)) / count / MB
    elapsed = time.perf_counter() - started
    log(f"generated {count} photos {WIDTH}x{HEIGHT}, mean {mean_mb:.2f} MB ({elapsed:.1f} s)")
    return photos


#: EXIF Orientation = 1 as an IFD entry (tag 0112, SHORT, count 1, value 1), big-endian (as
#: Pillow writes it) and little-endian, and the same entry with value 6.
_ORIENTATION = (
    (b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x01", b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06"),
    (b"\x12\x01\x03\x00\x01\x00\x00\x00\x01\x00", b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00"),
)


def rotated(photo: bytes) -> bytes:
    """The same photo with EXIF orientation 6 (the service must turn it 90 degrees)."""
    for upright, turned in _ORIENTATION:
        if upright in photo:
            return photo.replace(upright, turned, 1)
    raise BenchError("the generated photo has no EXIF orientation 1 to turn")


def wrap_direct(photos: Sequence[bytes], run: str) -> list[tuple[bytes, Any]]:
    """Each photo as the service would wrap it, with capture ids of its own, and its ref."""
    from capture_api.capture.model import CaptureContext
    from capture_api.capture.patient import Patient
    from capture_api.deliver.archive import InstanceRef
    from capture_api.encode.pipeline import wrap_photo
    from capture_api.encode.uids import derived_uid

    started = time.perf_counter()
    patient = Patient(patient_id="BENCH-DIRECT")
    study = derived_uid(None, "context-study", f"bench-direct-{run}")
    wrapped: list[tuple[bytes, Any]] = []
    for i, photo in enumerate(photos):
        ctx = CaptureContext(
            capture_id=f"direct-{run}-{i:04d}",
            patient=patient,
            study_uid=study,
            instance_number=i + 1,
        )
        dicom = wrap_photo(photo, ctx)
        ref = InstanceRef(
            dicom.study_instance_uid, dicom.series_instance_uid, dicom.sop_instance_uid
        )
        wrapped.append((dicom.to_bytes(), ref))
    log(f"wrapped {len(photos)} photos for the direct STOW ({time.perf_counter() - started:.1f} s)")
    return wrapped


# --- the service process ------------------------------------------------------------------


def proc_status_kb(pid: int, key: str) -> int:
    """A ``kB`` field (``VmHWM``, ``VmRSS``) of ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def level_settings(concurrency: int) -> dict[str, str]:
    """Concurrency 1: the defaults; above: more worker threads (woken by commits, as at 1)."""
    if concurrency == 1:
        return {}
    return {"CAPTURE_WORKER_THREADS": str(max(4, concurrency))}


def start_service(
    workdir: Path, dicomweb_url: str, concurrency: int, database_url: str | None = None
) -> ServiceProcess:
    """``python -m capture_api run`` with its own data folder (the tests' ServiceProcess);
    with ``database_url``, on that database with its spool in it too (``CAPTURE_SPOOL``)."""
    from tests.deliver.service_process import ServiceProcess

    shared = {"DATABASE_URL": database_url, "CAPTURE_SPOOL": "database"} if database_url else {}
    service = ServiceProcess(
        {
            "CAPTURE_DATA_DIR": str(workdir / "data"),
            "CAPTURE_DICOMWEB_URL": dicomweb_url,
            "CAPTURE_BENCH_COUNTERS": "true",
            "MALLOC_ARENA_MAX": "2",
            **level_settings(concurrency),
            **shared,
        },
        log_path=workdir / "service.log",
    )
    service.launch()
    try:
        service.wait_ready(STARTUP_SECONDS)
    except RuntimeError as exc:
        raise BenchError(str(exc)) from exc
    return service


def service_pid(service: ServiceProcess) -> int:
    if service.pid is None:
        raise BenchError("the service is not running")
    return service.pid


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` (``/proc/<pid>/stat`` fields 14 and 15)."""
    if pid is None:
        raise BenchError("the process is not running")
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def _stat_cpu_seconds(stat: Path) -> float:
    """utime + stime of a ``/proc/.../stat`` file (a process's or one thread's), in seconds."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: What each of the service's threads does, by its name (``capture_api.os_threads``).
THREAD_ROLES = ("event loop", "requests", "delivery", "other")


def thread_role(pid: int, tid: int, name: str, unnamed: str) -> str:
    """The role of thread ``tid`` of service ``pid`` named ``name`` (``/proc/.../comm``);
    ``unnamed``: the process's own name, which the threads we do not name inherit."""
    if tid == pid:
        return "event loop"  # uvicorn's, the process's first thread
    if re.fullmatch(r"worker-[0-9a-f]{6}-[0-9]+", name):
        return "delivery"  # CAPTURE_WORKER_THREADS (the outbox's prefix, store/leases.py)
    if name == unnamed:  # AnyIO's pool, where the routes' blocking work runs
        return "requests"
    return "other"  # the heartbeat, the listener, the notifier, ...


def cpu_by_role(pid: int | None) -> dict[str, float]:
    """CPU seconds of the service's threads by ``thread_role``, read from /proc. A thread that
    has ended is not listed: ``requests`` is what the process used less the other roles (the
    pool's threads end after idling, and the process's total keeps their time)."""
    if pid is None:
        raise BenchError("the process is not running")
    found = dict.fromkeys(THREAD_ROLES, 0.0)
    unnamed = Path(f"/proc/{pid}/comm").read_text().strip()  # python, capture-api, ...
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            used = _stat_cpu_seconds(task / "stat")
        except OSError:  # ended meanwhile
            continue
        found[thread_role(pid, int(task.name), name, unnamed)] += used
    found["requests"] = cpu_seconds(pid) - sum(
        found[role] for role in THREAD_ROLES if role != "requests"
    )
    return found


def bench_counters(client: httpx.Client) -> tuple[float, float, float]:
    """(commits, fsyncs, SQL statements) so far, from the service's /metrics
    (``CAPTURE_BENCH_COUNTERS``)."""
    names = ("commits", "fsyncs", "statements")
    found = {f"capture_bench_{name}_total": math.nan for name in names}
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
    commits, fsyncs, statements = (found[f"capture_bench_{name}_total"] for name in names)
    return commits, fsyncs, statements


def written_bytes(pid: int | None) -> float:
    """What process ``pid`` has written towards storage (``/proc/<pid>/io`` ``write_bytes``:
    counted as the page cache takes it, whether or not it was on disk yet), in bytes; NaN when
    the file cannot be read (another user's process)."""
    if pid is None:
        raise BenchError("the process is not running")
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except PermissionError:
        return math.nan
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "write_bytes":
            return float(value)
    return math.nan


def postgres_cpu_seconds() -> float:
    """User + system CPU time of every ``postgres`` process now running (the server and its
    backends; a backend that exits meanwhile takes its time with it, and the services keep
    their connections pooled)."""
    return _postgres_sum(cpu_seconds)


def postgres_written_bytes() -> float:
    """``written_bytes`` of every ``postgres`` process now running (its WAL, its tables)."""
    return _postgres_sum(written_bytes)


def _postgres_sum(figure: Callable[[int], float]) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += figure(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return total


@dataclass(frozen=True)
class Usage:
    """CPU of the services, of Orthanc and of PostgreSQL, and the services' counters, at one
    moment (the services' figures summed)."""

    api_cpu_s: float
    orthanc_cpu_s: float
    database_cpu_s: float  # NaN on SQLite: its work is the service's
    commits: float
    fsyncs: float
    statements: float
    by_role: dict[str, float]  # the services' CPU seconds by thread role (``cpu_by_role``)
    written: float  # bytes the services (and PostgreSQL's processes) wrote towards storage

    @classmethod
    def now(
        cls, services: Sequence[ServiceProcess], orthanc: OrthancServer, postgres: bool
    ) -> Usage:
        counters = []
        for service in services:
            with httpx.Client(base_url=service.url, timeout=HTTP_TIMEOUT_SECONDS) as client:
                counters.append(bench_counters(client))
        return cls(
            sum(cpu_seconds(service.pid) for service in services),
            cpu_seconds(orthanc.pid),
            postgres_cpu_seconds() if postgres else math.nan,
            sum(commits for commits, _, _ in counters),
            sum(fsyncs for _, fsyncs, _ in counters),
            sum(statements for _, _, statements in counters),
            {
                role: sum(cpu_by_role(service.pid)[role] for service in services)
                for role in THREAD_ROLES
            },
            sum(written_bytes(service.pid) for service in services)
            + (postgres_written_bytes() if postgres else 0.0),
        )


# --- one level through the service --------------------------------------------------------


def _server_ms(item: dict[str, Any]) -> float:
    created = dt.datetime.fromisoformat(item["created_at"])
    verified = dt.datetime.fromisoformat(item["verified_at"])
    return (verified - created).total_seconds() * 1000


def upload(client: httpx.Client, context_id: str, capture_id: str, photo: bytes) -> None:
    answer = client.post(
        "/api/v1/captures",
        files={"photo": (f"{capture_id}.jpg", photo, "image/jpeg")},
        data={"capture_id": capture_id, "context_id": context_id},
    )
    if answer.status_code != 202:
        raise BenchError(f"upload of {capture_id} answered {answer.status_code}: {answer.text}")


def list_captures(client: httpx.Client, context_id: str) -> tuple[float, list[dict[str, Any]]]:
    """One poll: the context's captures, and the time the answer arrived."""
    answer = client.get("/api/v1/captures", params={"context_id": context_id})
    now = time.perf_counter()
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()
    return now, items


def poll_verified(
    client: httpx.Client, context_id: str, samples: Sequence[Sample], deadline: float
) -> None:
    """Every 20 ms, list the context's captures; stamp each sample when first seen verified.

    A capture seen ``failed`` first gets its ``failure`` set and is no longer waited for.
    """
    pending = {s.capture_id: s for s in samples}
    tick = time.perf_counter()
    while pending:
        now, items = list_captures(client, context_id)
        for item in items:
            _stamp(pending, item, now)
        if now > deadline:
            late = {i["capture_id"]: (i["status"], i["retrying"]) for i in items}
            raise BenchError(f"{len(pending)} captures not verified in time: {late}")
        tick += POLL_SECONDS
        time.sleep(max(0.0, tick - time.perf_counter()))


def _stamp(pending: dict[str, Sample], item: dict[str, Any], now: float) -> None:
    """A capture seen ``verified`` or ``failed`` at ``now``: stamp its sample, no longer pending."""
    sample = pending.get(item["capture_id"])
    if sample is None:
        return
    if item["status"] == "verified":
        sample.verified = now
        sample.server_ms = _server_ms(item)
        del pending[sample.capture_id]
    elif item["status"] == "failed":
        sample.failure = f"failed before verification: {item['reason']}"
        del pending[sample.capture_id]


def follow_events(
    client: httpx.Client, context_id: str, samples: Sequence[Sample], deadline: float
) -> None:
    """Follow the context's event stream (as the phone does); stamp each sample when verified.

    The service ends a stream after a few minutes: it is opened again until every sample is
    verified or failed.
    """
    pending = {s.capture_id: s for s in samples}
    while pending:
        params = {"context_id": context_id}
        with client.stream("GET", EVENTS_PATH, params=params, timeout=None) as answer:
            answer.raise_for_status()
            for line in answer.iter_lines():
                if time.perf_counter() > deadline:
                    raise BenchError(f"{len(pending)} captures not verified in time")
                if not line.startswith("data: "):
                    continue
                now, item = time.perf_counter(), json.loads(line[len("data: ") :])
                _stamp(pending, item, now)
                if not pending:
                    return


def settle(client: httpx.Client, context_id: str, samples: Sequence[Sample]) -> None:
    """Keep polling for SETTLE_SECONDS (untimed); flag captures no longer ``verified``."""
    end = time.perf_counter() + SETTLE_SECONDS
    while True:
        _, items = list_captures(client, context_id)
        by_id = {item["capture_id"]: item for item in items}
        for sample in samples:
            item = by_id[sample.capture_id]
            if sample.failure is None and item["status"] != "verified":
                why = item["reason"] or item["retrying"] or "no reason given"
                sample.failure = f"verified, then {item['status']}: {why}"
        if time.perf_counter() > end:
            return
        time.sleep(POLL_SECONDS)


def create_context(client: httpx.Client, patient_id: str) -> str:
    answer = client.post("/api/v1/contexts", json={"patient": {"id": patient_id}})
    answer.raise_for_status()
    return str(answer.json()["context_id"])


def run_concurrently(workers: Sequence[Callable[[], None]]) -> None:
    """Run every callable in its own thread; re-raise the first failure."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(workers)) as pool:
        futures = [pool.submit(work) for work in workers]
        for future in concurrent.futures.as_completed(futures):
            future.result()


def upload_all(
    urls: Sequence[str],
    context_id: str,
    samples: Sequence[Sample],
    photos: Sequence[bytes],
    clients: int,
) -> None:
    """Send every sample's photo with ``clients`` threads, each to one of the ``urls`` in
    turn; stamp sent and accepted."""
    jobs: queue.SimpleQueue[Sample] = queue.SimpleQueue()
    for sample in samples:
        jobs.put(sample)

    def client_thread(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_SECONDS) as client:
            while True:
                try:
                    sample = jobs.get_nowait()
                except queue.Empty:
                    return
                sample.sent = time.perf_counter()
                upload(client, context_id, sample.capture_id, photos[sample.photo])
                sample.accepted = time.perf_counter()

    run_concurrently(
        [functools.partial(client_thread, urls[i % len(urls)]) for i in range(clients)]
    )


def rotated_per_second(service: ServiceProcess, photos: Sequence[bytes], run: str) -> float:
    """EXIF-rotated 12 MP uploads answered 202 per second, by 4 clients."""
    turned = [rotated(p) for p in photos[:ROTATED_PHOTOS]]
    with httpx.Client(base_url=service.url, timeout=HTTP_TIMEOUT_SECONDS) as client:
        context_id = create_context(client, f"BENCH-ROTATED-{run}")
    samples = [Sample(f"rot-{run}-{i:04d}", i) for i in range(len(turned))]
    upload_all([service.url], context_id, samples, turned, 4)
    return len(samples) / (max(s.accepted for s in samples) - min(s.sent for s in samples))


def idle_cpu_ms_per_s(service: ServiceProcess, seconds: float = IDLE_SECONDS) -> float:
    """The service's CPU over ``seconds`` with nothing to do, in ms per second."""
    before = cpu_seconds(service.pid)
    time.sleep(seconds)
    return (cpu_seconds(service.pid) - before) * 1000 / seconds


def bench_ours(
    services: Sequence[ServiceProcess],
    orthanc: OrthancServer,
    photos: Sequence[bytes],
    concurrency: int,
    n: int,
    volume: bool = False,
    extras: bool = True,
) -> OursResult:
    """Upload ``n`` photos with ``concurrency`` clients; follow each until verified. ``volume``:
    first fill the service's database with a clinic's worth of photos (``bench/volume.py``).
    ``extras=False``: not the rotated-photo and idle figures (a repeated run's are not used).
    Several ``services`` (replicas on one PostgreSQL): the clients take turns between them,
    the first one creates the context and streams its events."""
    service, postgres = services[0], "DATABASE_URL" in services[0].settings
    run = f"c{concurrency}-{os.getpid()}-{time.time_ns() % 10**9}"
    with httpx.Client(base_url=service.url, timeout=HTTP_TIMEOUT_SECONDS) as client:
        context_id = create_context(client, f"BENCH-{concurrency}")
        # One warm-up photo through each service: a replica's first photo loads code and
        # fills caches, which is neither its CPU per photo nor its memory per upload.
        warmups = [Sample(f"warmup-{run}-{i}", 0) for i in range(len(services))]
        for warmup, each in zip(warmups, services, strict=True):
            with httpx.Client(base_url=each.url, timeout=HTTP_TIMEOUT_SECONDS) as sender:
                upload(sender, context_id, warmup.capture_id, photos[0])
        poll_verified(client, context_id, warmups, time.perf_counter() + 60)
        failed = [w.failure for w in warmups if w.failure is not None]
        if failed:
            raise BenchError(f"the warm-up capture did not get through: {failed[0]}")
        time.sleep(0.5)  # the warm-up's audit rows and spool purge
        if volume:
            from bench.volume import fill

            database = Path(service.settings["CAPTURE_DATA_DIR"]) / "capture.db"
            fill(
                f"sqlite:///{database}", VOLUME_CONTEXTS, VOLUME_PER_CONTEXT, VOLUME_AUDIT_PER_PHOTO
            )
            time.sleep(0.5)
    idle_rss_mb = rss_mb(services, "VmRSS")
    before = Usage.now(services, orthanc, postgres)

    samples = [Sample(f"bench-{run}-{i:04d}", i) for i in range(n)]

    def clients() -> None:
        upload_all([s.url for s in services], context_id, samples, photos, concurrency)

    def follower_thread() -> None:
        with httpx.Client(base_url=service.url, timeout=HTTP_TIMEOUT_SECONDS) as client:
            deadline = time.perf_counter() + LEVEL_TIMEOUT_SECONDS
            follow_events(client, context_id, samples, deadline)

    run_concurrently([clients, follower_thread])
    after = Usage.now(services, orthanc, postgres)
    with httpx.Client(base_url=service.url, timeout=HTTP_TIMEOUT_SECONDS) as client:
        settle(client, context_id, samples)
    peak_rss_mb = rss_mb(services, "VmHWM")
    seen = [s for s in samples if not math.isnan(s.verified)]
    if not seen:
        raise BenchError(f"no capture was verified; first failure: {samples[0].failure}")
    archived = orthanc.instance_count()
    if archived != n + len(warmups):
        expected = n + len(warmups)
        log(f"warning: Orthanc holds {archived} instances after the level, expected {expected}")
    wall = max(s.verified for s in seen) - min(s.sent for s in samples)
    return OursResult(
        photos_per_s=len(seen) / wall,
        wall_s=wall,
        verified=Latencies([(s.verified - s.sent) * 1000 for s in seen]),
        upload=Latencies([(s.accepted - s.sent) * 1000 for s in samples]),
        accepted=Latencies([(s.verified - s.accepted) * 1000 for s in seen]),
        server=Latencies([s.server_ms for s in seen]),
        idle_rss_mb=idle_rss_mb,
        peak_rss_mb=peak_rss_mb,
        failures=[f"{s.capture_id}: {s.failure}" for s in samples if s.failure is not None],
        orthanc_instances=archived,
        api_cpu_ms=(after.api_cpu_s - before.api_cpu_s) * 1000 / n,
        orthanc_cpu_ms=(after.orthanc_cpu_s - before.orthanc_cpu_s) * 1000 / n,
        commits=(after.commits - before.commits) / n,
        fsyncs=(after.fsyncs - before.fsyncs) / n,
        statements=(after.statements - before.statements) / n,
        written_mb=(after.written - before.written) / n / MB,
        database_cpu_ms=(after.database_cpu_s - before.database_cpu_s) * 1000 / n,
        cpu_by_role_ms={
            role: (after.by_role[role] - before.by_role[role]) * 1000 / n for role in THREAD_ROLES
        },
        rotated_per_s=(
            rotated_per_second(service, photos, run)
            if extras and concurrency == 4 and not volume and not postgres
            else math.nan
        ),
        idle_cpu_ms_per_s=(
            idle_cpu_ms_per_s(service) if extras and (concurrency == 1 or volume) else math.nan
        ),
    )


def rss_mb(services: Sequence[ServiceProcess], key: str) -> float:
    """``key`` (VmRSS, VmHWM) of the services' processes, summed, in MB."""
    return sum(proc_status_kb(service_pid(s), key) for s in services) * 1024 / MB


# --- one level of direct STOW -------------------------------------------------------------


def bench_direct(
    orthanc: OrthancServer, wrapped: Sequence[tuple[bytes, Any]], concurrency: int, n: int
) -> DirectResult:
    """STOW ``n`` instances (after one warm-up) with ``concurrency`` threads, one client each."""
    from capture_api.deliver.dicomweb import DicomWebArchive

    warmup, *measured = wrapped[: n + 1]
    with DicomWebArchive(orthanc.base_url, timeout=HTTP_TIMEOUT_SECONDS) as archive:
        archive.store(*warmup)
    jobs: queue.SimpleQueue[tuple[bytes, Any]] = queue.SimpleQueue()
    for item in measured:
        jobs.put(item)
    spans: list[tuple[float, float]] = []

    def stow_thread() -> None:
        with DicomWebArchive(orthanc.base_url, timeout=HTTP_TIMEOUT_SECONDS) as archive:
            while True:
                try:
                    part10, ref = jobs.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                archive.store(part10, ref)
                spans.append((started, time.perf_counter()))

    run_concurrently([stow_thread] * concurrency)
    held = orthanc.instance_count()
    if held != n + 1:
        raise BenchError(f"Orthanc holds {held} instances after direct STOW, expected {n + 1}")
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return DirectResult(
        photos_per_s=n / wall,
        wall_s=wall,
        request=Latencies([(end - start) * 1000 for start, end in spans]),
    )


# --- report -------------------------------------------------------------------------------

COLUMNS = (
    "concurrency",
    "n",
    "ours photos/s",
    "ours p50 ms",
    "ours p95 ms",
    "upload p50 ms",
    "upload p95 ms",
    "202->verified p50 ms",
    "202->verified p95 ms",
    "direct photos/s",
    "direct p50 ms",
    "direct p95 ms",
    "ratio",
    "API peak RSS MB",
    "RSS growth MB/upload",
    "API CPU ms/photo",
    "Orthanc CPU ms/photo",
    "DB CPU ms/photo",
    "commits/photo",
    "fsyncs/photo",
    "SQL/photo",
    "failed",
)


def table_row(r: LevelResult) -> list[str]:
    return [
        r.label,
        str(r.n),
        f"{r.ours.photos_per_s:.2f}",
        f"{r.ours.verified.p50_ms:.0f}",
        f"{r.ours.verified.p95_ms:.0f}",
        f"{r.ours.upload.p50_ms:.0f}",
        f"{r.ours.upload.p95_ms:.0f}",
        f"{r.ours.accepted.p50_ms:.0f}",
        f"{r.ours.accepted.p95_ms:.0f}",
        f"{r.direct.photos_per_s:.2f}",
        f"{r.direct.request.p50_ms:.0f}",
        f"{r.direct.request.p95_ms:.0f}",
        f"{r.ratio:.2f}",
        f"{r.ours.peak_rss_mb:.0f}",
        f"{r.ours.rss_growth_mb(r.concurrency):.1f}",
        f"{r.ours.api_cpu_ms:.0f}",
        f"{r.ours.orthanc_cpu_ms:.0f}",
        "-" if math.isnan(r.ours.database_cpu_ms) else f"{r.ours.database_cpu_ms:.0f}",
        f"{r.ours.commits:.1f}",
        f"{r.ours.fsyncs:.1f}",
        f"{r.ours.statements:.1f}",
        str(len(r.ours.failures)),
    ]


def format_table(results: Sequence[LevelResult]) -> str:
    """A markdown table, every column right-aligned."""
    rows = [table_row(r) for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(COLUMNS), rule, *(line(r) for r in rows)])


def orthanc_versions(orthanc: OrthancServer) -> tuple[str, str]:
    """Orthanc's version (``GET /system``) and its DICOMweb plugin's."""
    system = httpx.get(f"{orthanc.rest_url}/system", timeout=10).json()
    plugin = httpx.get(f"{orthanc.rest_url}/plugins/dicom-web", timeout=10)
    plugin_version = plugin.json().get("Version", "?") if plugin.status_code == 200 else "?"
    return str(system.get("Version", "?")), str(plugin_version)


def machine_info(orthanc: OrthancServer) -> dict[str, str | int | None]:
    from bench.wrap_bench import cpu_model

    orthanc_version, dicomweb_version = orthanc_versions(orthanc)
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "httpx": metadata.version("httpx"),
        "uvicorn": metadata.version("uvicorn"),
        "orthanc": orthanc_version,
        "orthanc_dicomweb": dicomweb_version,
    }


def decode_line(decode: DecodeCost) -> str:
    return (
        f"strict decode (every coefficient, 1/8 scale) {decode.strict_ms:.1f} ms CPU per photo, "
        f"full RGB decode {decode.full_ms:.1f} ms (same photos, this process)"
    )


def read_back_line(back: ReadBack) -> str:
    return (
        f"read back from the database spool by another replica: {back.database_ms:.1f} ms "
        f"({back.queries} queries, {back.rows} rows, {back.database_cpu_ms:.1f} ms CPU), from a "
        f"local file {back.folder_ms:.1f} ms"
    )


def repeat_line(runs: Sequence[LevelResult]) -> str:
    spreads = repeat_spreads(runs)
    return f"c={runs[0].concurrency}, {len(runs)} runs: " + ", ".join(
        f"{name} {s.median:.1f} ({s.low:.1f}-{s.high:.1f})" for name, s in spreads.items()
    )


def machine_line(machine: dict[str, str | int | None]) -> str:
    return (
        f"machine: {machine['cpu']}, {machine['cpu_count']} CPUs (shared by the API, Orthanc "
        f"and the load generator), {machine['platform']}; Python {machine['python']}, "
        f"httpx {machine['httpx']}, uvicorn {machine['uvicorn']}; Orthanc {machine['orthanc']} "
        f"with DICOMweb {machine['orthanc_dicomweb']}"
    )


def results_json(
    results: Sequence[LevelResult],
    machine: dict[str, str | int | None],
    photo_mb: float,
    decode: DecodeCost,
    read_back: ReadBack | None = None,
    repeats: Sequence[LevelResult] = (),
) -> str:
    def latencies(name: str, lat: Latencies) -> dict[str, Any]:
        return {
            f"{name}_p50_ms": lat.p50_ms,
            f"{name}_p95_ms": lat.p95_ms,
            f"{name}_samples_ms": lat.samples_ms,
        }

    levels = [
        {
            "concurrency": r.concurrency,
            "n": r.n,
            "photos_held_before": r.held,
            "replicas_on_postgresql": r.replicas,
            "ours_photos_per_s": r.ours.photos_per_s,
            "ours_wall_s": r.ours.wall_s,
            **latencies("ours_verified", r.ours.verified),
            **latencies("ours_upload", r.ours.upload),
            **latencies("ours_accepted_to_verified", r.ours.accepted),
            **latencies("ours_server_created_to_verified", r.ours.server),
            "api_idle_rss_mb": r.ours.idle_rss_mb,
            "api_peak_rss_mb": r.ours.peak_rss_mb,
            "api_rss_growth_mb_per_upload": r.ours.rss_growth_mb(r.concurrency),
            "api_cpu_ms_per_photo": r.ours.api_cpu_ms,
            "api_cpu_ms_per_photo_by_thread": r.ours.cpu_by_role_ms,
            "orthanc_cpu_ms_per_photo": r.ours.orthanc_cpu_ms,
            "postgresql_cpu_ms_per_photo": r.ours.database_cpu_ms,
            "commits_per_photo": r.ours.commits,
            "fsyncs_per_photo": r.ours.fsyncs,
            "sql_statements_per_photo": r.ours.statements,
            "written_mb_per_photo": r.ours.written_mb,
            "rotated_photos_per_s": r.ours.rotated_per_s,
            "idle_cpu_ms_per_s": r.ours.idle_cpu_ms_per_s,
            "ours_failures": r.ours.failures,
            "orthanc_instances_after_ours": r.ours.orthanc_instances,
            "direct_photos_per_s": r.direct.photos_per_s,
            "direct_wall_s": r.direct.wall_s,
            **latencies("direct_request", r.direct.request),
            "ratio": r.ratio,
        }
        for r in results
    ]
    setup = {
        "photo_pixels": f"{WIDTH}x{HEIGHT}",
        "photo_mean_mb": photo_mb,
        "settings": "concurrency 1: defaults; above: worker threads max(4, c), the rest default",
        "followed_by": EVENTS_PATH,
    }
    decoding = {"strict_ms_per_photo": decode.strict_ms, "full_ms_per_photo": decode.full_ms}
    document: dict[str, Any] = {
        "machine": machine,
        "setup": setup,
        "levels": levels,
        "decode": decoding,
    }
    if read_back is not None:
        document["read_back_from_database"] = asdict(read_back)
    if len(repeats) > 1:
        document["repeated_level"] = {
            "concurrency": repeats[0].concurrency,
            "runs": len(repeats),
            **{name: asdict(spread) for name, spread in repeat_spreads(repeats).items()},
        }
    return json.dumps(document, indent=2) + "\n"


# --- driver -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Upload -> verified throughput and latency on Orthanc, against bare STOW-RS."
    )
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument(
        "--quick", action="store_true", help="smoke run: 8/16/16 photos at concurrency 1/4/16"
    )
    sizes.add_argument(
        "--photos", type=int, metavar="N", help="photos per level (default 24/48/48)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.photos is not None and args.photos < 1:
        parser.error("--photos must be at least 1")
    return args


def levels_for(args: argparse.Namespace) -> list[tuple[int, int]]:
    levels = QUICK_LEVELS if args.quick else DEFAULT_LEVELS
    if args.photos is not None:
        return [(c, int(args.photos)) for c, _ in levels]
    return list(levels)


def require_orthanc() -> None:
    from tests.orthanc import DICOMWEB_PLUGIN, ORTHANC

    missing = [str(p) for p in (ORTHANC, DICOMWEB_PLUGIN) if not p.exists()]
    if missing:
        sys.exit(
            f"delivery_bench: Orthanc with its DICOMweb plugin is not installed "
            f"(missing {', '.join(missing)}); install it: {INSTALL_HINT}"
        )


@dataclass
class Run:
    """Everything the driver started, so ``finally`` can stop it."""

    services: list[ServiceProcess] = field(default_factory=list)

    def stop(self) -> None:
        for service in self.services:
            service.close()


def bench_level(
    tmp: Path,
    orthanc: OrthancServer,
    run: Run,
    photos: Sequence[bytes],
    wrapped: Sequence[tuple[bytes, Any]],
    concurrency: int,
    n: int,
    held: int = 0,
    replicas: int = 0,
    extras: bool = True,
) -> LevelResult:
    """One level: ``n`` photos through a fresh service (``held`` photos in its database first;
    or ``replicas`` services on a fresh PostgreSQL database), then the same through bare
    STOW-RS."""
    name = level_label(concurrency, held, replicas)
    log(f"concurrency {name}: {n} photos through the service ...")
    orthanc.clear()
    with contextlib.ExitStack() as stack:
        database_url = postgres_database(stack) if replicas else None
        workdir = tmp / f"service-{len(run.services)}"
        services = [
            start_service(workdir / str(i), orthanc.base_url, concurrency, database_url)
            for i in range(max(1, replicas))
        ]
        run.services.extend(services)
        try:
            ours = bench_ours(services, orthanc, photos, concurrency, n, held > 0, extras)
        except BenchError as exc:
            logs = "\n".join(service.log_tail() for service in services)
            raise BenchError(f"{exc}\nservice log:\n{logs}") from exc
        finally:
            for service in services:
                service.stop()
    log(f"concurrency {name}: {n} direct STOW-RS requests ...")
    orthanc.clear()
    direct = bench_direct(orthanc, wrapped, concurrency, n)
    return LevelResult(concurrency, n, ours, direct, held, replicas)


def postgres_database(stack: contextlib.ExitStack) -> str:
    """A fresh PostgreSQL database for the replicas level, dropped when ``stack`` closes;
    BenchError when PostgreSQL does not answer (``make bench`` starts it: ``make pg-up``)."""
    from tests.deliver.service_process import fresh_postgres_database

    try:
        return stack.enter_context(fresh_postgres_database())
    except AssertionError as exc:  # the tests' way to say PostgreSQL is not running
        raise BenchError(str(exc)) from exc


@dataclass(frozen=True)
class DecodeCost:
    """CPU ms per photo of the acceptance check's decode, and of a full decode (medians)."""

    strict_ms: float
    full_ms: float


def decode_cost(photos: Sequence[bytes]) -> DecodeCost:
    """The strict decode every upright upload pays, timed alone on the same photos."""
    import simplejpeg

    from capture_api.encode.jpeg.decode import check_decodes
    from capture_api.encode.jpeg.markers import read_frame

    def cpu_ms(work: Callable[[], object]) -> float:
        started = time.thread_time()
        work()
        return (time.thread_time() - started) * 1000

    strict, full = [], []
    for photo in photos:
        frame = read_frame(photo)
        strict.append(cpu_ms(lambda: check_decodes(photo, frame)))  # noqa: B023 (called now)
        full.append(cpu_ms(lambda: simplejpeg.decode_jpeg(photo)))  # noqa: B023
    return DecodeCost(statistics.median(strict), statistics.median(full))


@dataclass(frozen=True)
class ReadBack:
    """One photo another replica accepted, read back from ``spool_blob`` as the replica that
    delivers it does (``DatabaseSpool.source``), beside the same bytes from a local spool
    file; medians. CPU is the reading thread's (psycopg), not PostgreSQL's."""

    database_ms: float
    database_cpu_ms: float
    folder_ms: float
    queries: int
    rows: int


def read_back_cost(photo: bytes, repeat: int = READ_BACK_REPEAT) -> ReadBack:
    """Time reading ``photo`` back from a fresh PostgreSQL database; BenchError when the bytes
    read are not the photo's, or PostgreSQL does not answer."""
    from sqlalchemy import event

    from capture_api.store.db import make_engine, migrate
    from capture_api.store.spool_blobs import BLOB_CHUNK, DatabaseSpool
    from capture_api.store.spool_source import file_source

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="read-back-")))
        engine = make_engine(postgres_database(stack))
        stack.callback(engine.dispose)
        migrate(engine)
        accepted = tmp / "a" / "ph" / "photo"  # on replica A, which then dies
        DatabaseSpool(tmp / "a", engine).write_bytes(accepted, photo)
        local = tmp / "local" / "photo"
        local.parent.mkdir()
        local.write_bytes(photo)
        accepted.unlink()  # A's disk is on another machine
        other = DatabaseSpool(tmp / "b", engine)
        queries: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *args: queries.append(args[2]))

        def timed(read: Callable[[], bytes]) -> tuple[float, float, int]:
            """Wall ms, this thread's CPU ms and the queries of one ``read``."""
            queries.clear()
            wall, cpu = time.perf_counter(), time.thread_time()
            if read() != photo:
                raise BenchError("the photo read back is not the photo written")
            wall_ms = (time.perf_counter() - wall) * 1000
            return wall_ms, (time.thread_time() - cpu) * 1000, len(queries)

        database = [timed(lambda: other.source(str(accepted)).read()) for _ in range(repeat)]
        folder = [timed(lambda: file_source(str(local)).read()) for _ in range(repeat)]
    return ReadBack(
        database_ms=statistics.median(d[0] for d in database),
        database_cpu_ms=statistics.median(d[1] for d in database),
        folder_ms=statistics.median(f[0] for f in folder),
        queries=database[-1][2],
        rows=-(-len(photo) // BLOB_CHUNK),
    )


@dataclass(frozen=True)
class Measured:
    """Everything one run measured (what ``main`` prints and ``bench/report.py`` tabulates)."""

    levels: list[LevelResult]
    machine: dict[str, str | int | None]
    photo_mb: float  # mean size of the generated photos
    decode: DecodeCost
    read_back: ReadBack | None = None  # with the replicas level (PostgreSQL)
    #: The ``REPEATED_CONCURRENCY`` level's runs, the first one (in ``levels``) included
    repeats: list[LevelResult] = field(default_factory=list)


def measure(
    levels: Sequence[tuple[int, int]] = DEFAULT_LEVELS,
    volume: tuple[int, int] | None = VOLUME_LEVEL,
    replicas: tuple[int, int] | None = REPLICAS_LEVEL,
    repeats: int = REPEATS,
) -> Measured:
    """Run every (concurrency, photos) level against a fresh Orthanc, the
    ``REPEATED_CONCURRENCY`` one ``repeats`` times in all, then the ``volume`` level (a
    database holding ``VOLUME_CONTEXTS`` x ``VOLUME_PER_CONTEXT`` photos) and the
    ``replicas`` level (``REPLICAS`` services on PostgreSQL); raise BenchError."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    require_orthanc()
    from tests.orthanc import OrthancServer

    most = max(n for _, n in [*levels, *filter(None, (volume, replicas))])
    run = Run()
    with tempfile.TemporaryDirectory(prefix="delivery-bench-") as tmp_name:
        tmp = Path(tmp_name)
        orthanc = OrthancServer(tmp / "orthanc")
        try:
            orthanc.start()
            photos = make_photos(most)
            # photos[0] twice: the first copy is the warm-up STOW of every direct phase
            run_id = f"{os.getpid()}-{time.time_ns() % 10**9}"
            wrapped = wrap_direct([photos[0], *photos], run_id)
            results = [bench_level(tmp, orthanc, run, photos, wrapped, c, n) for c, n in levels]
            repeated = [r for r in results if r.concurrency == REPEATED_CONCURRENCY][:1]
            for _ in range(repeats - 1 if repeated else 0):
                c, n = REPEATED_CONCURRENCY, repeated[0].n
                again = bench_level(tmp, orthanc, run, photos, wrapped, c, n, extras=False)
                repeated.append(again)
            if volume is not None:
                c, n = volume
                held = VOLUME_CONTEXTS * VOLUME_PER_CONTEXT
                results.append(bench_level(tmp, orthanc, run, photos, wrapped, c, n, held))
            if replicas is not None:
                c, n = replicas
                results.append(
                    bench_level(tmp, orthanc, run, photos, wrapped, c, n, replicas=REPLICAS)
                )
            machine = machine_info(orthanc)
        finally:
            run.stop()
            orthanc.stop()
    decode = decode_cost(photos)
    read_back = read_back_cost(photos[0]) if replicas is not None else None
    photo_mb = sum(map(len, photos)) / len(photos) / MB
    return Measured(results, machine, photo_mb, decode, read_back, repeated)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        measured = measure(levels_for(args), repeats=1 if args.quick else REPEATS)
    except BenchError as exc:
        sys.exit(f"delivery_bench: {exc}")
    results, machine, photo_mb = measured.levels, measured.machine, measured.photo_mb
    print(format_table(results))
    for r in results:
        split = ", ".join(f"{k} {v:.0f}" for k, v in r.ours.cpu_by_role_ms.items())
        print(f"c={r.label}: API CPU ms per photo by thread: {split}")
    print(decode_line(measured.decode))
    if measured.read_back is not None:
        print(read_back_line(measured.read_back))
    if len(measured.repeats) > 1:
        print(repeat_line(measured.repeats))
    print(machine_line(machine))
    log(f"total {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        document = results_json(
            results, machine, photo_mb, measured.decode, measured.read_back, measured.repeats
        )
        args.json.write_text(document)
        log(f"wrote {args.json}")
    failures = [f for r in results for f in r.ours.failures]
    if failures:
        log(f"delivery_bench: {len(failures)} photo(s) not verified at the end of their level:")
        for failure in failures:
            log(f"  {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
