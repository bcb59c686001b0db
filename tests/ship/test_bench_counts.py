"""``CAPTURE_BENCH_COUNTERS``: the fsyncs, commits and SQL statements ``make bench`` divides by
its photos are counted, and shown in /metrics only when asked for (in a child process: it wraps
os.fsync)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from capture_api.config import Settings

CHILD = """
import os, sys, tempfile
from pathlib import Path
from sqlalchemy import text
from capture_api.observability import bench_counts, metrics
from capture_api.store.db import make_engine

folder = Path(tempfile.mkdtemp())
engine = make_engine(f"sqlite:///{folder / 'c.db'}")
if sys.argv[1] == "on":
    bench_counts.install(engine)
with engine.begin() as connection:
    connection.execute(text("CREATE TABLE t (x INTEGER)"))
for _ in range(3):
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
with engine.connect() as connection:  # a read: a statement, no commit
    connection.execute(text("SELECT count(*) FROM t")).one()
with open(folder / "f", "wb") as out:
    out.write(b"x")
    os.fsync(out.fileno())
    os.fdatasync(out.fileno())
print(metrics.render(engine).decode())
"""


def _metrics(mode: str, tmp: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, cwd=tmp, check=True
    )
    found = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("capture_bench_"):
            found[name] = float(value)
    return found


def test_counted_when_asked_for(tmp_path: Path) -> None:
    assert _metrics("on", tmp_path) == {
        "capture_bench_commits_total": 4.0,  # CREATE + three INSERTs, one transaction each
        "capture_bench_fsyncs_total": 2.0,
        "capture_bench_statements_total": 5.0,  # CREATE, three INSERTs and the SELECT
    }


def test_absent_by_default(tmp_path: Path) -> None:
    assert _metrics("off", tmp_path) == {}
    assert Settings().bench_counters is False
