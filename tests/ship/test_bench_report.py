"""``make bench``'s table: the phone-client section with and without ``bench/pwa_bench.py``,
and the rows made from the wrap and delivery benchmarks' own result types.

The full run takes minutes and is not part of the suite (the README's ``make bench``); this
keeps the table's assembly honest without it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import archive_bench as ab
from bench import delivery_bench as db
from bench import measure_bench as mb
from bench import report
from bench import wrap_bench as wb
from capture_api.exceptions import CorruptImage

DECODE = db.DecodeCost(strict_ms=27.61, full_ms=61.0)


def test_missing_pwa_module_is_a_not_available_row() -> None:
    (row,) = report.pwa_rows("bench.no_such_bench")
    assert row.capture == "not available"
    assert "bench/no_such_bench.py is not there" in row.note


def test_pwa_figures_come_from_its_measure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "fake_pwa_bench.py"
    module.write_text(
        "def measure():\n    return {'first_load_kb_gzip': 41.6, 'send_to_verified_ms': 812.4}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = report.pwa_rows("fake_pwa_bench")
    assert [(r.figure, r.capture) for r in rows] == [
        ("PWA first load (gzip)", "42 KB"),
        ("PWA send -> verified, 12 MP photo, median", "812 ms"),
    ]


def test_pwa_measure_without_the_agreed_keys_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "partial_pwa_bench.py").write_text("def measure():\n    return {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (row,) = report.pwa_rows("partial_pwa_bench")
    assert row.capture == "not available"
    assert "first_load_kb_gzip" in row.note and "send_to_verified_ms" in row.note


def test_rows_from_the_benchmarks_results_and_the_markdown_table() -> None:
    spec = wb.PHOTOS[1]
    wrap = wb.Result(
        spec,
        3.8,
        ours=wb.Timing([50.0, 52.5, 60.0]),
        img2dcm=wb.Timing([40.0, 41.0, 45.0]),
        memory=wb.Memory(300.0, 120.0, 180.0, 20.0),
    )
    level = db.LevelResult(
        1,
        3,
        db.OursResult(
            photos_per_s=5.8,
            wall_s=0.5,
            verified=db.Latencies([170.0, 200.0, 345.0]),
            upload=db.Latencies([90.0, 95.0, 100.0]),
            server=db.Latencies([80.0, 90.0, 100.0]),
            accepted=db.Latencies([40.0, 55.0, 70.0]),
            idle_rss_mb=150.0,
            peak_rss_mb=420.0,
            failures=[],
            orthanc_instances=4,
            api_cpu_ms=41.6,
            orthanc_cpu_ms=55.2,
            commits=4.0,
            fsyncs=4.5,
            statements=18.25,
            idle_cpu_ms_per_s=3.25,
        ),
        db.DirectResult(40.5, 0.1, db.Latencies([20.0, 25.0, 30.0])),
    )
    rows = report.wrap_rows([wrap]) + report.delivery_rows(db.Measured([level], {}, 3.8, DECODE))
    table = report.markdown(rows).splitlines()
    assert table[0].startswith("| figure ") and table[1].startswith("|:-")
    assert len(table) == 2 + len(rows)
    text = "\n".join(table)
    assert "52.5 / 60.0 ms" in text and "img2dcm 41.0 / 45.0 ms" in text
    assert "5.8 /s" in text and "direct STOW 40.5 /s" in text
    assert "200 / 345 ms" in text and "420 MB" in text and "300 MB" in text
    assert len({len(line) for line in table}) == 1, "columns are padded to one width"
    figures = {r.figure: r for r in rows}
    latency = figures["delivery c=1: accepted (202) -> verified p50 / p95 (default settings)"]
    assert latency.capture == "55 / 70 ms"  # from the 202, not from the send
    assert "send -> verified 200 / 345 ms" in latency.note
    assert "x6.98 of bare STOW" in figures["delivery c=1: photos/s, send -> verified"].note
    cpu = figures["delivery c=1: API CPU per photo"]
    assert (cpu.capture, cpu.reference) == ("42 ms", "Orthanc 55 ms")
    assert figures["delivery c=1: commits / fsyncs per photo"].capture == "4.0 / 4.5"
    statements = figures["delivery c=1: SQL statements per photo"]
    assert statements.capture == "18.2" and "replicas" not in statements.note
    growth = figures["delivery c=1: peak RSS growth per concurrent upload"]
    assert growth.capture == "270.0 MB" and growth.note.startswith("x71.1 of the photo")
    assert figures["idle CPU of the service over 10 s"].capture == "3.2 ms/s"
    assert not [f for f in figures if f.startswith("rotated")], "rotated is measured at c=4 only"
    decode = figures["strict decode of a 12 MP upload (every coefficient, 1/8 scale), CPU"]
    assert (decode.capture, decode.reference) == ("27.6 ms", "full RGB decode 61.0 ms")


def _four_clients(**figures: float) -> db.OursResult:
    """A concurrency-4 level's own figures, with ``figures`` besides."""
    return db.OursResult(
        photos_per_s=20.0,
        wall_s=2.0,
        verified=db.Latencies([300.0]),
        upload=db.Latencies([90.0]),
        server=db.Latencies([200.0]),
        idle_rss_mb=150.0,
        peak_rss_mb=180.0,
        failures=[],
        orthanc_instances=41,
        **figures,  # type: ignore[arg-type]
    )


def test_the_rotated_row_comes_from_the_four_client_level() -> None:
    ours = _four_clients(rotated_per_s=13.4)
    level = db.LevelResult(4, 40, ours, db.DirectResult(30.0, 1.0, db.Latencies([50.0])))
    rows = report.delivery_rows(db.Measured([level], {}, 3.8, DECODE))
    figures = {r.figure: r for r in rows}
    assert (
        figures["rotated 12 MP photos/s, c=4 (EXIF 6, lossless turn, to 202)"].capture == "13.4 /s"
    )
    assert figures["delivery c=4: peak RSS growth per concurrent upload"].capture == "7.5 MB"
    assert "x1.50 of bare STOW" in figures["delivery c=4: photos/s, send -> verified"].note


def test_the_replicas_level_names_postgresql_and_adds_its_cpu() -> None:
    ours = _four_clients(commits=4.0, fsyncs=4.0, statements=30.3, database_cpu_ms=31.4)
    direct = db.DirectResult(30.0, 1.0, db.Latencies([50.0]))
    level = db.LevelResult(4, 24, ours, direct, replicas=2)
    figures = {r.figure: r for r in report.delivery_rows(db.Measured([level], {}, 3.8, DECODE))}
    c = "delivery c=4 (PostgreSQL, 2 replicas)"
    assert "PostgreSQL 31 ms more" in figures[f"{c}: API CPU per photo"].note
    assert "both replicas" in figures[f"{c}: commits / fsyncs per photo"].note
    statements = figures[f"{c}: SQL statements per photo"]
    assert statements.capture == "30.3" and "both replicas" in statements.note
    assert not [f for f in figures if f.startswith("rotated")], "rotated: the SQLite c=4 level"
    row = db.table_row(level)
    assert row[0] == "4 (PostgreSQL, 2 replicas)"
    assert row[db.COLUMNS.index("DB CPU ms/photo")] == "31"
    sqlite = db.table_row(
        db.LevelResult(4, 24, dataclasses.replace(ours, database_cpu_ms=math.nan), direct)
    )
    assert sqlite[0] == "4" and sqlite[db.COLUMNS.index("DB CPU ms/photo")] == "-"


def test_a_rotated_photo_differs_only_in_its_orientation() -> None:
    photo = db.make_photos(1)[0]
    turned = db.rotated(photo)
    assert len(turned) == len(photo) and turned != photo
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(turned)).getexif()[274] == 6


def test_local_archive_rows_from_the_benchmarks_levels() -> None:
    def level(held: int, store: list[float], pydicom: float | None = None) -> ab.Level:
        return ab.Level(
            held=held,
            fill_s=1.0,
            rebuild_s=12.34,
            store=wb.Timing(store),
            first_visible_ms=3.21,
            priors_ms=1.5,
            rewrite=wb.Timing([40.0, 45.0, 90.0]),
            rewrite_cpu_ms=38.0,
            dicomdir_kb=2919.6,
            pydicom_rewrite_ms=pydicom,
        )

    measured = ab.Measured(
        [level(0, [9.0, 10.0, 30.0]), level(1_000, [11.0, 12.0]), level(10_000, [14.0], 5610.0)]
    )
    rows = report.archive_rows(measured)
    figures = {r.figure: (r.capture, r.reference, r.note) for r in rows}
    assert figures["local archive: store with 0 held, med / max"][0] == "10.0 / 30.0 ms"
    assert figures["local archive: store with 1,000 held, med / max"][0] == "11.5 / 12.0 ms"
    big = figures["local archive: store with 10,000 held, med / max"]
    assert big[0] == "14.0 / 14.0 ms" and "goal < 30 ms" in big[2]
    assert figures["local archive: DICOMDIR rewrite with 10,000 held, med"] == (
        "45 ms",
        "pydicom FileSet 5610 ms",
        "38 ms CPU, 2,920 KB",
    )
    assert (
        figures["local archive: first is_visible / find_priors, 10,000 held"][0] == "3.2 / 1.5 ms"
    )
    assert figures["local archive: rebuild index + DICOMDIR from 10,000 files"][0] == "12.3 s"
    assert len(report.markdown(rows).splitlines()) == 2 + len(rows)


def test_wound_measurement_rows_per_tilt_band() -> None:
    def band(low: float, high: float, area: float) -> mb.BandFigures:
        return mb.BandFigures(
            low, high, 40, 0, area, 1.94, 0.01, 0.06, 0.27, 0.66, 0.34, 0.84, 1.0, 4.7, 0.02
        )

    figures = [band(0, 15, 0.28), band(15, 30, 0.41), band(30, 45, 0.28)]
    rows = report.measure_rows(figures, [band(30, 45, 0.46)])
    assert len(rows) == 7
    assert [r.figure for r in rows[:2]] == [
        "wound area error, tilt 0-15 deg: med / p95",
        "wound length; width error, tilt 0-15 deg: med / p95",
    ]
    assert rows[0].capture == "0.28 / 1.94 %" and rows[0].reference == "goal: median < 3 %"
    assert rows[4].reference == "goal: median < 5 %"
    assert rows[1].capture == "0.27 / 0.66; 0.34 / 0.84 mm"
    assert rows[-1].figure.startswith("wound area error, harder photos, tilt 30-45")
    text = report.markdown(rows)
    assert "marker alone 0.01 / 0.06 %" in text and "100% within" in text
    assert {line.count("|") for line in text.splitlines()} == {5}, "no stray column separators"


def test_the_strict_decode_figure_times_the_check_uploads_pass() -> None:
    """The bench's decode figure is the product's acceptance check, cheaper than a full
    decode of the same photo (it still reads every coefficient), and it refuses what the
    upload refuses: the figure measures the real check, not a no-op."""
    photo = db.make_photos(1)[0]
    cost = db.decode_cost([photo])
    assert 0 < cost.strict_ms < cost.full_ms
    middle = len(photo) // 2
    zeroed = photo[:middle] + bytes(4000) + photo[middle + 4000 :]  # whole markers, bad codes
    with pytest.raises(CorruptImage, match="image data is damaged"):
        db.decode_cost([zeroed])


def test_the_read_back_figure_reads_the_photo_from_postgresql_a_mebibyte_per_query() -> None:
    """The figure reads a real photo from a real PostgreSQL as the replica delivering another's
    photo does, and checks the bytes: 16 rows (1 MiB) per query; a report row shows it beside
    the same photo read from a local file."""
    photo = db.make_photos(1)[0]
    back = db.read_back_cost(photo, repeat=2)
    assert back.rows == -(-len(photo) // (64 * 1024)) > 16
    assert back.queries == 1 + -(-(back.rows - 1) // 16)  # size, count and row 0; the rest
    assert back.database_ms > 0 and back.folder_ms > 0 and back.database_cpu_ms > 0

    level = db.LevelResult(4, 24, _four_clients(), db.DirectResult(30.0, 1.0, db.Latencies([50.0])))
    measured = db.Measured([level], {}, 3.8, DECODE, back)
    row = report.delivery_rows(measured)[-1]
    assert row.figure.startswith("a 12 MP photo read back by a replica that did not accept it")
    assert f"{back.queries} queries for {back.rows} rows" in row.capture
    assert row.reference == f"from a local spool file {back.folder_ms:.1f} ms"
    assert "read_back_from_database" in db.results_json([level], {}, 3.8, DECODE, back)
    assert report.delivery_rows(db.Measured([level], {}, 3.8, DECODE))[-1].figure != row.figure


def test_the_api_cpu_is_split_by_what_each_thread_does() -> None:
    split = {"event loop": 9.6, "requests": 44.2, "delivery": 12.4, "other": 0.3}
    ours = dataclasses.replace(_four_clients(), cpu_by_role_ms=split)
    level = db.LevelResult(4, 24, ours, db.DirectResult(30.0, 1.0, db.Latencies([50.0])))
    figures = {r.figure: r for r in report.delivery_rows(db.Measured([level], {}, 3.8, DECODE))}
    row = figures["delivery c=4: API CPU per photo by thread"]
    assert row.capture == "event loop 10 / requests 44 / delivery 12 / other 0 ms"


def _burner(stay: bool) -> str:
    """A script: a thread named as a delivery thread burns 0.6 s of CPU (then stays, asleep,
    or ends) while the first thread waits; it prints ``done`` when the burning is over."""
    return (
        "import threading, time\n"
        "from capture_api.os_threads import NamedThread\n"
        "burnt = threading.Event()\n"
        "def burn():\n"
        "    end = time.thread_time() + 0.6\n"
        "    while time.thread_time() < end: pass\n"
        "    burnt.set()\n"
        f"    time.sleep({30 if stay else 0})\n"
        "NamedThread(target=burn, name='worker-abc123-0', daemon=True).start()\n"
        "burnt.wait(); time.sleep(0.2); print('done', flush=True); time.sleep(30)\n"
    )


def _roles_of(script: str) -> dict[str, float]:
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=db.REPO_ROOT
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "done"
            return db.cpu_by_role(child.pid)
        finally:
            child.kill()


def test_cpu_by_role_reads_a_live_process_threads_by_their_names() -> None:
    running = _roles_of(_burner(stay=True))
    assert running["delivery"] >= 0.5, running
    assert running["event loop"] < 0.4, running  # the interpreter's start-up only
    assert running["requests"] < 0.1, running
    # A thread that has ended is no longer listed: its time, kept in the process's, is
    # counted with the routes' pool (whose idle threads end).
    ended = _roles_of(_burner(stay=False))
    assert ended["delivery"] == 0.0, ended
    assert ended["requests"] >= 0.5, ended


def test_written_bytes_are_what_a_live_process_sent_towards_storage(tmp_path: Path) -> None:
    """The kernel's count, read for another process: 3 MB written and fsync'd, and a 4 MB
    file only read, give 3 MB (the page cache's writes are counted, reads are not)."""
    read_only = tmp_path / "read.bin"
    read_only.write_bytes(b"r" * 4_000_000)
    script = (
        "import os, sys\n"
        f"open({str(read_only)!r}, 'rb').read()\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
        f"with open({str(tmp_path / 'out.bin')!r}, 'wb') as out:\n"
        "    out.write(b'w' * 3_000_000); out.flush(); os.fsync(out.fileno())\n"
        "print('done', flush=True); sys.stdin.readline()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        try:
            assert child.stdout.readline().strip() == "ready"
            before = db.written_bytes(child.pid)
            child.stdin.write("\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "done"
            written = db.written_bytes(child.pid) - before
        finally:
            child.kill()
    assert 3_000_000 <= written < 3_100_000, written


def test_the_written_row_is_per_photo_beside_the_photo() -> None:
    ours = dataclasses.replace(_four_clients(), written_mb=3.91)
    direct = db.DirectResult(30.0, 1.0, db.Latencies([50.0]))
    levels = [db.LevelResult(4, 24, ours, direct), db.LevelResult(4, 24, ours, direct, replicas=2)]
    figures = {r.figure: r for r in report.delivery_rows(db.Measured(levels, {}, 3.85, DECODE))}
    row = figures["delivery c=4: written towards storage per photo"]
    assert (row.capture, row.reference) == ("3.91 MB", "photo 3.85 MB")
    replicas = figures["delivery c=4 (PostgreSQL, 2 replicas): written towards storage per photo"]
    assert "PostgreSQL" in replicas.note
    unread = dataclasses.replace(ours, written_mb=math.nan)  # /proc/<pid>/io not readable
    figures = {
        r.figure: r
        for r in report.delivery_rows(
            db.Measured([db.LevelResult(4, 24, unread, direct)], {}, 3.85, DECODE)
        )
    }
    assert "delivery c=4: written towards storage per photo" not in figures


def test_the_repeated_level_shows_median_and_range_of_what_one_run_cannot_pin_down() -> None:
    runs = [
        db.LevelResult(
            4,
            40,
            dataclasses.replace(
                _four_clients(api_cpu_ms=cpu, orthanc_cpu_ms=orthanc), photos_per_s=rate
            ),
            db.DirectResult(direct, 1.0, db.Latencies([30.0])),
        )
        for rate, cpu, orthanc, direct in [
            (25.7, 53.0, 14.0, 123.9),
            (20.3, 65.0, 16.0, 108.3),
            (22.4, 57.4, 15.0, 120.0),
        ]
    ]
    sixteen = dataclasses.replace(runs[0], concurrency=16)
    measured = db.Measured([runs[0], sixteen], {}, 3.8, DECODE, repeats=runs)
    rows = report.delivery_rows(measured)
    figures = {r.figure: r for r in rows}
    names = [r.figure for r in rows]
    assert names.index("delivery c=4, 3 runs: API CPU per photo") < names.index(
        "delivery c=16: photos/s, send -> verified"
    ), "beside the run it repeats"
    cpu = figures["delivery c=4, 3 runs: API CPU per photo"]
    assert (cpu.capture, cpu.reference) == ("57 ms (53-65)", "Orthanc 15 ms (14-16)")
    rate = figures["delivery c=4, 3 runs: photos/s, send -> verified"]
    assert rate.capture == "22.4 /s (20.3-25.7)"
    assert rate.reference == "direct STOW 120.0 /s (108.3-123.9)"
    assert rate.note.startswith("x5.33 (4.82-5.36) of bare STOW")  # each run's own ratio
    assert figures["delivery c=4: API CPU per photo"].capture == "53 ms", "the first run's own"
    document = json.loads(db.results_json([runs[0]], {}, 3.8, DECODE, repeats=runs))
    assert document["repeated_level"]["runs"] == 3
    assert document["repeated_level"]["api_cpu_ms_per_photo"] == {
        "median": 57.4,
        "low": 53.0,
        "high": 65.0,
    }
    once = db.Measured([runs[0]], {}, 3.8, DECODE, repeats=runs[:1])
    assert not [r for r in report.delivery_rows(once) if "runs:" in r.figure]
