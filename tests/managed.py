"""What every test server (Orthanc, the API process, sandboxes, syslog collectors) shares:
``with server:`` starts it and always stops it, and its log's tail explains a failure."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self


class ManagedServer:
    """A test server used as a context manager; subclasses define ``start`` and ``stop``."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """What leaving the ``with`` block does: stop (subclasses may release more)."""
        self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def log_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a server's log, for an assertion message."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
