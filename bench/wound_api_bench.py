"""The wound-measurement API's response times on a 12 MP photo (issue 16).

Run from the repository root::

    .venv/bin/python bench/wound_api_bench.py            # 7 requests of each kind
    .venv/bin/python bench/wound_api_bench.py --repeats 3

One in-process app (embedded archive, SQLite) takes a 12 MP phantom photo (4032 x 3024,
``tests/measure/phantom.py``, 20 degrees of tilt, an 8 cm2 wound) and verifies it, so its
spooled bytes are gone and every request reads the photo back from the archive, as in
production. Then, each ``repeats`` times, median and slowest (ms):

* ``calibration``: ``GET .../calibration`` (read back, decode, find and check the marker);
* ``measure``: ``POST .../measurements`` with a new outline each time (the same work, the
  measurement, the TID 1500 SR, its spooling and outbox row, the database row);
* ``snap``: ``POST .../snap`` (read back, decode, GrabCut on the crop around the outline).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from capture_api.api.app import create_app  # noqa: E402
from capture_api.config import Settings  # noqa: E402
from tests.measure.phantom import render_phantom  # noqa: E402

DEFAULT_REPEATS = 7


@dataclass(frozen=True)
class Timing:
    """One request kind: median and slowest of ``n`` requests, in milliseconds."""

    name: str
    median_ms: float
    slowest_ms: float
    n: int


def _time(call: Callable[[int], None], repeats: int) -> list[float]:
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _timing(name: str, samples: Sequence[float]) -> Timing:
    return Timing(name, statistics.median(samples), max(samples), len(samples))


def measure(repeats: int = DEFAULT_REPEATS) -> list[Timing]:
    """The three timings (see the module docstring)."""
    phantom = render_phantom(5, tilt_deg=20.0, area_cm2=8.0, kind="irregular")
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), poll_seconds=0.05, retry_base_seconds=0.05)
        with TestClient(create_app(settings)) as client:
            context = client.post("/api/v1/contexts", json={"patient": {"id": "BENCH"}})
            context_id = context.json()["context_id"]
            sent = client.post(
                "/api/v1/captures",
                data={"capture_id": "bench-1", "context_id": context_id},
                files={"photo": ("p.jpg", phantom.jpeg, "image/jpeg")},
            )
            if sent.status_code != 202:
                raise RuntimeError(f"upload refused: {sent.text}")
            deadline = time.monotonic() + 60
            while client.get("/api/v1/captures/bench-1").json()["status"] != "verified":
                if time.monotonic() > deadline:
                    raise RuntimeError("the photo was not verified within 60 s")
                time.sleep(0.05)
            base = "/api/v1/captures/bench-1"
            tracing = phantom.tracing_px

            def calibration(_: int) -> None:
                assert client.get(f"{base}/calibration").status_code == 200

            def measure_one(i: int) -> None:
                outline = (tracing + 0.01 * (i + 1)).round(3).tolist()  # a new measurement
                answer = client.post(f"{base}/measurements", json={"outline": outline})
                assert answer.status_code == 201, answer.text

            def snap(_: int) -> None:
                outline = tracing[::3].round(1).tolist()
                assert client.post(f"{base}/snap", json={"outline": outline}).status_code == 200

            return [
                _timing("calibration", _time(calibration, repeats)),
                _timing("measure", _time(measure_one, repeats)),
                _timing("snap", _time(snap, repeats)),
            ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wound-measurement API response times.")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    for t in measure(args.repeats):
        print(f"{t.name:12s} median {t.median_ms:7.0f} ms  slowest {t.slowest_ms:7.0f} ms  n={t.n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
