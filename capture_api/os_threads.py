"""Threads named for the operating system too: ``top -H``, ``ps -L``, ``/proc/<pid>/task``.

Python 3.11 names a thread for Python only (``threading.current_thread().name``); to the
kernel every thread of the service has the process's name (``capture-api``, ``python``). So
an operator looking at a replica that burns CPU with ``top -H``, or the delivery benchmark
splitting the service's CPU by thread, could not tell a delivery thread from a request thread
or the event loop (issue 13: where the CPU of a photo goes). ``NamedThread`` gives the kernel
its name as it starts: Linux keeps the first 15 bytes (``TASK_COMM_LEN``), so our names
start with what tells them apart. Elsewhere (no ``/proc``) it is a plain thread. The request
threads (AnyIO's pool) keep the process's name: they are not ours to start.
"""

from __future__ import annotations

import threading
from contextlib import suppress
from pathlib import Path

#: The kernel's limit on a thread's name, less the terminating NUL.
OS_NAME_BYTES = 15


class NamedThread(threading.Thread):
    """A ``threading.Thread`` whose OS thread carries its name (see the module's docstring)."""

    def run(self) -> None:
        name_os_thread(self.name)
        super().run()


def name_os_thread(name: str) -> None:
    """Name the calling thread for the kernel (its first 15 bytes); nothing where it cannot."""
    with suppress(OSError):  # no /proc (macOS), or a read-only one: the name is a nicety
        comm = Path(f"/proc/self/task/{threading.get_native_id()}/comm")
        comm.write_bytes(name.encode("ascii", "replace")[:OS_NAME_BYTES])
