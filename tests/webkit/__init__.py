"""WebKit (the engine of Safari) as a phone for the browser tests: Debian's WebKitGTK under Xvfb,
in a network namespace of its own, driven by Selenium through WebKitWebDriver."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for helper processes (Xvfb, the namespace's holder): killed when the test
    process dies, even by SIGKILL, instead of living on as orphans."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
