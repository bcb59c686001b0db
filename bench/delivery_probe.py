"""Probe one photo at a time through the outbox: commits per photo and accepted -> verified.

Run from the repository root, against a running Orthanc with DICOMweb::

    PYTHONPATH=. .venv/bin/python bench/delivery_probe.py --dicomweb http://127.0.0.1:8042/dicom-web

What it does: builds the service in this process exactly as ``capture-api run`` does
(``Runtime.build`` from ``Settings``: SQLite in a temporary folder unless ``--database``
names a URL, the default poll interval unless ``--poll`` sets it), starts the delivery
workers, then accepts ``--photos`` distinct 1600x1200 camera-like JPEGs one after the other
(``CaptureService.accept``: what the upload route calls) and waits for each to be verified
before the next. It prints the database commits per photo the request made and the worker
made, the delivery threads' CPU time per photo, and the time from ``accept`` returning (the
202) to the row reading ``verified`` (p50/p95). The request's own audit row (written by the
API's middleware, not here) is one more commit per photo. Count fsyncs by running this under
``strace -f -e trace=fsync,fdatasync`` (start Orthanc outside it).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import event

from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.config import Settings
from capture_api.intake.service import CaptureRequest
from capture_api.runtime import Runtime
from capture_api.store.records import CaptureStatus


def _jpeg(seed: int) -> bytes:
    from tests.conftest import phone_jpeg

    return phone_jpeg(1600, 1200, seed=seed)


def _thread_cpu_seconds(prefix: str) -> float:
    """CPU time used so far by this process's threads whose name starts with ``prefix``
    (Linux: ``/proc/self/task/<tid>/schedstat``, nanoseconds on CPU)."""
    total = 0
    for thread in threading.enumerate():
        if thread.name.startswith(prefix) and thread.native_id is not None:
            stat = Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text()
            total += int(stat.split()[0])
    return total / 1e9


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dicomweb", required=True)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--poll", type=float, default=None)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="delivery-probe-"))
    values: dict[str, object] = {"data_dir": folder, "dicomweb_url": args.dicomweb}
    if args.poll is not None:
        values["poll_seconds"] = args.poll
    if args.database:
        values["database_url"] = args.database
    settings = Settings(**values)  # type: ignore[arg-type]
    runtime = Runtime.build(settings)
    commits = {"n": 0}
    lock = threading.Lock()

    def counted(_conn: object) -> None:
        with lock:
            commits["n"] += 1

    event.listen(runtime.engine, "commit", counted)
    runtime.start()
    service = runtime.service
    context = service.create_context(ContextIn(patient=PatientIn(id=f"MRN-{uuid.uuid4().hex[:8]}")))
    photos = [_jpeg(seed) for seed in range(args.photos + 1)]
    latencies: list[float] = []
    request_commits: list[int] = []
    worker_commits: list[int] = []
    cpu_start = 0.0
    for index, photo in enumerate(photos):
        capture_id = uuid.uuid4().hex
        before = commits["n"]
        request = CaptureRequest(capture_id=capture_id, context_id=context.id)
        record, _ = service.accept(request, io.BytesIO(photo))
        accepted = time.perf_counter()
        after_request = commits["n"]
        assert record.status == CaptureStatus.ENCODED, record.status
        while True:
            row = service.get(capture_id)
            purged = row is not None and (
                row.spool_deleted_at is not None or settings.spool_retention_seconds > 0
            )
            if row is not None and row.status == CaptureStatus.VERIFIED and purged:
                break
            if row is not None and row.status == CaptureStatus.FAILED:
                print(f"photo {index} failed: {row.reason}", file=sys.stderr)
                return 1
            time.sleep(0.002)
        verified = time.perf_counter()
        time.sleep(0.05)  # let the worker finish its last commit before the next photo
        if index == 0:
            cpu_start = _thread_cpu_seconds(runtime.worker.name)
            continue  # warm-up
        latencies.append((verified - accepted) * 1000)
        request_commits.append(after_request - before)
        worker_commits.append(commits["n"] - after_request)
    worker_cpu = _thread_cpu_seconds(runtime.worker.name) - cpu_start
    runtime.close()
    n = len(latencies)
    print(f"photos: {n} (c=1), poll {settings.poll_seconds:g} s, {settings.sqlalchemy_url[:20]}")
    print(f"request commits/photo: {sum(request_commits) / n:.2f} (+1 request audit row)")
    print(f"worker commits/photo:  {sum(worker_commits) / n:.2f}")
    print(f"worker threads' CPU/photo: {worker_cpu / n * 1000:.1f} ms")
    print(
        f"accepted->verified ms: p50 {_percentile(latencies, 0.5):.0f} "
        f"p95 {_percentile(latencies, 0.95):.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
