"""A virtual X display for WebKitGTK, which has no headless mode (Debian's xvfb).

Xvfb picks a free display number itself (``-displayfd``), so several test runs (or helpers on
one machine) never collide on ``:99``; it listens on no TCP port.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from types import TracebackType
from typing import Self

from tests.webkit import die_with_parent

XVFB = "/usr/bin/Xvfb"
#: Room for a 390x844 CSS px window at devicePixelRatio 2 (780x1688 pixels).
SCREEN = "1024x1800x24"


def _read_line(fd: int, timeout: float) -> str:
    """Xvfb writes the number, then a newline in a second write: closing the pipe before the
    newline makes its second write fail, and Xvfb exits ("Cannot write display number")."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 16) if ready else b""
        if not chunk:
            return ""
        data += chunk
    return data.decode().strip()


class VirtualDisplay:
    """``with VirtualDisplay() as display: ... display.name`` (e.g. ":3"); stopped on exit."""

    def __init__(self) -> None:
        self.name = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        if not os.access(XVFB, os.X_OK):
            raise RuntimeError(f"{XVFB} is missing: run `make test` (Makefile APT_TEST: xvfb)")
        read, write = os.pipe()
        try:
            try:
                self._process = subprocess.Popen(
                    [XVFB, "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp"],
                    pass_fds=(write,),
                    preexec_fn=die_with_parent,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            finally:
                os.close(write)
            number = _read_line(read, timeout=15)
        finally:
            os.close(read)
        alive = self._process.poll() is None
        if not number or not alive or not os.path.exists(f"/tmp/.X11-unix/X{number}"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"Xvfb did not start (display {number!r}, running: {alive})")
        self.name = f":{number}"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
