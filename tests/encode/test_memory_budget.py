"""The encoder's memory budget (issue 14, finding 3): whole-image work reserves what it will
hold, refuses what can never fit, and waits for its turn otherwise.

The estimates are checked against an independent measurement: the peak resident set
(``VmHWM`` in ``/proc/self/status``, proc(5)) of a fresh interpreter doing only that work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from capture_api.encode import Limits, MemoryBudget, MiB, memory, prepare_photo
from capture_api.encode.jpeg.markers import read_frame
from capture_api.encode.memory import lossless_rotation_cost, reencode_cost
from capture_api.exceptions import ImageTooLarge
from tests.conftest import REPO
from tests.hostile.corpus import flat_jpeg

_MEASURE = """
import json, sys
from capture_api.encode.jpeg.markers import strip_metadata_parts
from capture_api.encode.orientation import make_upright
from tests.hostile.corpus import flat_jpeg

def kb(field):
    return int(next(l for l in open("/proc/self/status") if l.startswith(field)).split()[1])

width, height = int(sys.argv[1]), int(sys.argv[2])
data = flat_jpeg(width, height, orientation=1)
stripped = strip_metadata_parts(data)
open("/proc/self/clear_refs", "w").write("5")
before = kb("VmRSS")
upright = make_upright(data, stripped, 6)
print(json.dumps({"method": upright.method, "grew": (kb("VmHWM") - before) * 1024}))
"""


def _measured(width: int, height: int) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(width), str(height)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    facts = json.loads(out.stdout)
    return facts["method"], facts["grew"]


@pytest.mark.parametrize(
    ("width", "height", "method"),
    [(4000, 3008, "lossless"), (4001, 3001, "reencode")],
    ids=["lossless-rotation", "re-encode"],
)
def test_the_estimates_bound_what_the_work_really_holds(
    width: int, height: int, method: str
) -> None:
    frame = read_frame(flat_jpeg(width, height))
    size = len(flat_jpeg(width, height))
    estimate = (lossless_rotation_cost if method == "lossless" else reencode_cost)(frame, size)
    done, grew = _measured(width, height)
    assert done == method
    assert grew <= estimate, f"{method}: measured {grew / MiB:.0f} MB > {estimate / MiB:.0f} MB"
    assert estimate <= 2 * grew + 8 * MiB, "the estimate wastes more than half the budget"


def test_a_photo_that_alone_exceeds_the_budget_is_refused_with_the_setting_named() -> None:
    photo = flat_jpeg(14479, 14479, orientation=6)
    budget = MemoryBudget(768 * MiB)
    with pytest.raises(ImageTooLarge) as refused:
        prepare_photo(photo, Limits(memory=budget))
    message = str(refused.value)
    assert "14479x14479" in message and "CAPTURE_DECODE_MEMORY_MB" in message
    assert budget.peak == 0  # refused before anything was reserved


def test_an_upright_photo_of_any_allowed_size_needs_no_budget() -> None:
    budget = MemoryBudget(1)  # one byte: nothing whole-image may run
    prepared = prepare_photo(flat_jpeg(14479, 14479), Limits(memory=budget))
    assert (prepared.frame.columns, prepared.frame.rows) == (14479, 14479)
    assert budget.peak == 0


def test_photos_that_do_not_fit_together_are_turned_upright_one_after_another() -> None:
    photo = flat_jpeg(2001, 1501, orientation=6)  # not block-aligned: one re-encode each
    cost = reencode_cost(read_frame(photo), len(photo))
    budget = MemoryBudget(cost + cost // 2)  # room for one, not two
    with ThreadPoolExecutor(max_workers=4) as pool:
        prepared = list(pool.map(lambda _: prepare_photo(photo, Limits(memory=budget)), range(4)))
    assert all(p.derived for p in prepared)
    assert budget.peak == cost and budget.held == 0


def test_a_waiting_reservation_proceeds_when_the_budget_is_released() -> None:
    budget = MemoryBudget(100)
    entered, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with budget.hold(80, "first"):
            entered.set()
            release.wait(10)

    def second() -> None:
        with budget.hold(80, "second"):
            second_in.set()

    one = threading.Thread(target=first)
    one.start()
    assert entered.wait(10)
    two = threading.Thread(target=second)
    two.start()
    assert not second_in.wait(0.2)  # 80 + 80 > 100: it waits
    assert budget.held == 80
    release.set()
    assert second_in.wait(10)
    one.join(10)
    two.join(10)
    assert budget.peak == 80 and budget.held == 0


def test_freed_memory_is_given_back_once_the_kept_part_passes_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream of rotations reuses what the last one freed; past ``keep`` it goes back."""
    resident = iter([500, 300, 380, 420, 430, 290, 310, 450, 260])  # read before, after a trim
    monkeypatch.setattr(memory, "_resident_bytes", lambda: next(resident) * MiB)
    calls: list[int] = []
    trimmer = memory._Trimmer(calls.append, 128 * MiB)
    trimmer()  # the first: no floor known yet, so trim (500 -> 300)
    trimmer()  # 380: 80 MB above the floor, kept
    trimmer()  # 420: 120 MB, kept
    trimmer()  # 430: 130 MB, given back (-> 290, the new floor)
    trimmer()  # 310: kept
    trimmer()  # 450: 160 MB above 290, given back (-> 260)
    assert calls == [0, 0, 0] and trimmer.trims == 3
    assert trimmer._floor == 260 * MiB


def test_memory_other_jobs_hold_is_not_counted_as_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rotations at once: when one ends, the resident set includes what the other still
    holds. Counted as freed memory, it made a trim after nearly every job, and the next
    rotation faulted its coefficients in again."""
    monkeypatch.setattr(memory, "_resident_bytes", lambda: 450 * MiB)
    calls: list[int] = []
    trimmer = memory._Trimmer(calls.append, 128 * MiB)
    trimmer._floor = 300 * MiB
    trimmer(in_use=88 * MiB)  # 150 MB above the floor, 88 of it held by the other job: kept
    assert calls == []
    trimmer(in_use=0)  # the other one ended too: 150 MB freed, given back
    assert calls == [0]


def test_a_finished_reservation_reports_what_the_others_still_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda in_use=0: seen.append(in_use))
    budget = MemoryBudget(100)
    with budget.hold(30, "the first"), budget.hold(50, "the second"):
        pass
    assert seen == [30, 0]  # the second ended while the first held 30; then nothing was held


def test_without_a_resident_size_every_job_gives_its_memory_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "_resident_bytes", lambda: None)
    calls: list[int] = []
    trimmer = memory._Trimmer(calls.append, 128 * MiB)
    for _ in range(3):
        trimmer()
    assert calls == [0, 0, 0]


def test_the_resident_size_is_this_processs() -> None:
    with open("/proc/self/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    measured = memory._resident_bytes()
    assert measured is not None and abs(measured - rss_kb * 1024) < 16 * MiB
