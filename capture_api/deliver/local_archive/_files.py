"""Files of the archive folder: written whole or not at all, and errors in plain words.

Every file the archive writes (an instance, the DICOMDIR) is first written to a temporary
name beside its target, fsynced, renamed over the target and the folder fsynced (POSIX
needs the directory fsynced for a rename to survive a power cut). A crash, even SIGKILL,
leaves the old file or the new one, and at worst a ``.<name>.<hex>.tmp`` beside it, which
nothing reads and the next writer of that file removes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".lock"
#: A File ID component: 1-8 of A-Z, 0-9 and _ (PS3.10 8.2, CS characters); at most 8 levels.
_COMPONENT = re.compile(r"[A-Z0-9_]{1,8}")
_MAX_LEVELS = 8
_TEMP = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")

_FULL_DISK = {errno.ENOSPC, errno.EDQUOT}
_NO_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS}


@contextlib.contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``<root>/.lock``: serialises threads (one open file each)
    and processes around the DICOMDIR and rebuilds."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Staged:
    """An instance's bytes in a fsynced temporary file in the root, until ``move_to``."""

    def __init__(self, root: Path, data: bytes) -> None:
        self.root = root
        self.path = root / f".{uuid.uuid4().hex}.{uuid.uuid4().hex}.tmp"
        root.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.path, "xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            self.discard()
            raise
        self.moved = False

    def move_to(self, target: Path) -> None:
        """Rename into place (never over an existing file) and fsync every folder touched."""
        move_into(self.root, self.path, target)
        self.moved = True

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def move_into(root: Path, source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` inside ``root``, never over an existing file, and
    fsync the folders whose entries changed (up to ``root``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "the archive already has a file there", str(target))
    os.rename(source, target)
    for folder in (target.parent, *target.parent.parents):
        fsync_dir(folder)
        if folder == root:
            break
    if source.parent != root:
        fsync_dir(source.parent)


def replace_file(target: Path, data: bytes) -> None:
    """Write ``target`` whole or not at all: temp file, fsync, rename, fsync the folder."""
    with atomic(target) as out:
        out.write(data)
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic(target: Path) -> Iterator[io.BufferedWriter]:
    """A new file beside ``target`` (umask permissions) that replaces it once complete."""
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "xb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def sweep_temp(folder: Path, name: str, older_than: float = 0.0) -> None:
    """Remove ``.<name>.<hex>.tmp`` files a killed writer left in ``folder``.

    Call it only while holding the lock that every writer of ``name`` holds, or with an age
    (seconds) no live writer reaches.
    """
    cutoff = time.time() - older_than
    for temp in folder.glob(f".{name}.*.tmp"):
        with contextlib.suppress(OSError):
            if _TEMP.fullmatch(temp.name) and temp.lstat().st_mtime <= cutoff:
                temp.unlink()


def is_temp(name: str) -> bool:
    return bool(_TEMP.fullmatch(name))


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (POSIX needs the directory fsynced)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_file_id(parts: tuple[str, ...]) -> bool:
    """Whether a path relative to the root can be a Referenced File ID (PS3.10 8.2, 8.5)."""
    return 0 < len(parts) <= _MAX_LEVELS and all(_COMPONENT.fullmatch(p) for p in parts)


def disk_message(root: Path, exc: OSError) -> str:
    """An OSError in words an operator can act on."""
    if exc.errno in _FULL_DISK:
        return f"the local archive folder {root} is on a full disk: free space, then retry"
    if exc.errno in _NO_WRITE:
        return f"the local archive folder {root} is not writable ({exc.strerror}): check it"
    return f"the local archive folder {root} cannot be used: {exc.strerror or exc}"
