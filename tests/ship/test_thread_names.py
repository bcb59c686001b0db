"""The service's threads carry their names for the operating system (``top -H``, ``ps -L``).

The oracle is procps' ``ps``, which reads what the kernel holds; without ``NamedThread`` every
thread of the service is ``python`` to it, and the first test fails.
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

from capture_api.os_threads import OS_NAME_BYTES, NamedThread
from tests.deliver.service_process import ServiceProcess


def thread_names(pid: int) -> list[str]:
    """Every thread's name as ``ps -L`` shows it."""
    shown = subprocess.run(
        ["ps", "-L", "-o", "comm=", "-p", str(pid)], capture_output=True, text=True, check=True
    )
    return [line.strip() for line in shown.stdout.splitlines() if line.strip()]


def test_a_running_service_shows_its_delivery_threads_by_name(tmp_path: Path) -> None:
    service = ServiceProcess(
        {"CAPTURE_DATA_DIR": str(tmp_path / "data"), "CAPTURE_WORKER_THREADS": "3"},
        log_path=tmp_path / "service.log",
    )
    service.start()
    try:
        assert service.pid is not None
        names = thread_names(service.pid)
    finally:
        service.close()
    delivery = [n for n in names if re.fullmatch(r"worker-[0-9a-f]{6}-[0-2]", n)]
    assert len(delivery) == 3, names  # CAPTURE_WORKER_THREADS, each apart from the rest
    assert len(set(delivery)) == 3, names


def test_a_long_name_is_cut_to_what_the_kernel_keeps() -> None:
    seen: list[str] = []
    ready, done = threading.Event(), threading.Event()

    def wait() -> None:
        ready.set()
        done.wait(10)

    thread = NamedThread(target=wait, name="capture-a-name-longer-than-fifteen", daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        assert thread.native_id is not None
        comm = Path(f"/proc/self/task/{thread.native_id}/comm").read_text().strip()
        seen.append(comm)
    finally:
        done.set()
        thread.join(10)
    assert seen == ["capture-a-name-longer-than-fifteen"[:OS_NAME_BYTES]]
    assert thread.name == "capture-a-name-longer-than-fifteen"  # Python keeps it whole
