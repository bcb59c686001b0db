"""A memory budget for the encoder's whole-image work: rotations, re-encodes, HEIC transcodes.

Most photos never hold their pixels: the strict check decodes at 1/8 scale, and an upright
JPEG is wrapped as it came. Three paths must hold the whole image at once: the lossless
rotation (libjpeg-turbo keeps the source's and the result's DCT coefficients), the one
re-encode (decoded RGB, its rotated copy, the encoder's buffers) and the HEIC transcode.
A 3.3 MB JPEG can claim 14479 x 14479 pixels with EXIF orientation 6; unbounded, one such
upload grew the service by 1.7 GB and four in parallel by 5.6 GB (issue 14, finding 3).

So each of those paths first reserves what it will need from one budget per process
(``CAPTURE_DECODE_MEMORY_MB``): a photo that alone needs more than the whole budget is
refused with a message saying so, before anything is allocated; photos that fit wait for
each other, so the encoder never holds more than the budget however many arrive at once.
The costs per pixel were measured with ``/proc/self/status`` VmHWM on libjpeg-turbo 3 and
Pillow 11 (4:2:0: lossless rotation 6.6 bytes per pixel, re-encode 8.0) and are rounded up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from capture_api.encode.jpeg.markers import FrameInfo
from capture_api.exceptions import ImageTooLarge

MiB = 1024 * 1024

#: The default budget: one 100-megapixel lossless rotation, or a 90-megapixel re-encode.
DEFAULT_BUDGET_BYTES = 768 * MiB


def lossless_rotation_cost(frame: FrameInfo, jpeg_bytes: int) -> int:
    """Bytes a DCT-domain rotation holds: two sets of 16-bit coefficients and the output."""
    h_max = max(c.h for c in frame.components)
    v_max = max(c.v for c in frame.components)
    coefficients_per_pixel = sum(c.h * c.v for c in frame.components) / (h_max * v_max)
    return int(frame.rows * frame.columns * coefficients_per_pixel * 2 * 2.2) + 2 * jpeg_bytes


def reencode_cost(frame: FrameInfo, jpeg_bytes: int) -> int:
    """Bytes a decode, rotation and re-encode holds: the pixels about three times over."""
    return int(frame.rows * frame.columns * frame.samples_per_pixel * 2.8) + 2 * jpeg_bytes


def transcode_cost(width: int, height: int) -> int:
    """Bytes a HEIC decode and JPEG encode holds (libheif's planes, RGB, the encoder)."""
    return int(width * height * 3 * 2.8)


class MemoryBudget:
    """Bytes the encoder may hold in whole-image buffers at once, shared by its threads."""

    def __init__(self, limit_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if limit_bytes <= 0:
            raise ValueError("the encoder's memory budget must be positive")
        self.limit = limit_bytes
        self._held = 0
        self._peak = 0
        self._changed = threading.Condition()

    @property
    def held(self) -> int:
        """Bytes reserved right now."""
        return self._held

    @property
    def peak(self) -> int:
        """The most ever reserved at once (for tests and the bench)."""
        return self._peak

    def check(self, cost: int, what: str) -> None:
        """Refuse work that alone needs more than the whole budget (``ImageTooLarge``)."""
        if cost > self.limit:
            raise ImageTooLarge(
                f"{what} would need {cost / MiB:.0f} MB of memory; this service allows "
                f"{self.limit / MiB:.0f} MB (CAPTURE_DECODE_MEMORY_MB). Send the photo at a "
                "lower resolution, or ask your administrator to raise the limit"
            )

    @contextmanager
    def hold(self, cost: int, what: str) -> Iterator[None]:
        """Reserve ``cost`` bytes for the block, waiting while other photos hold the budget."""
        self.check(cost, what)
        with self._changed:
            self._changed.wait_for(lambda: self._held + cost <= self.limit)
            self._held += cost
            self._peak = max(self._peak, self._held)
        try:
            yield
        finally:
            release_freed_memory(in_use=self._held - cost)  # the other jobs' reservations
            with self._changed:
                self._held -= cost
                self._changed.notify_all()


#: Freed image memory a process may keep for its next whole-image job: glibc's arenas reuse
#: it without the page faults that fresh memory costs (a 12 MP lossless rotation's 36 MB of
#: coefficients: about 25 ms of kernel time when every job gives it back and faults it in).
KEEP_FREED_BYTES = 128 * MiB


def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's ``malloc_trim``, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def _resident_bytes() -> int | None:
    """This process's resident set (``/proc/self/statm``, field 2), or None without /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _Trimmer:
    """``malloc_trim`` once the freed memory kept passes ``keep`` bytes, not after every job.

    The floor is the lowest resident set seen right after a trim: the process keeps at most
    ``keep`` bytes above it beyond what jobs hold, whatever the order of jobs and threads.
    What jobs hold is the ``in_use`` the caller passes (the budget the other running jobs
    reserved; the estimates are upper bounds, so the bound holds): counting it as freed
    memory trimmed after nearly every job once three rotations ran at once, and each next
    rotation faulted its 70 MB of coefficients in again (17,000 page faults per photo; issue
    13). Where the resident set cannot be read, every call trims (the safe side).
    """

    def __init__(self, trim: Callable[[int], object] | None, keep: int) -> None:
        self._trim = trim
        self.keep = keep
        self._floor: int | None = None
        self._lock = threading.Lock()
        self.trims = 0  # how many times it gave memory back (tests)

    def __call__(self, in_use: int = 0) -> None:
        if self._trim is None:
            return
        with self._lock:
            resident = _resident_bytes()
            floor = self._floor
            if (
                floor is not None
                and resident is not None
                and resident - floor - max(in_use, 0) < self.keep
            ):
                return
            self._trim(0)
            self.trims += 1
            after = _resident_bytes()
            if after is not None:
                self._floor = after if self._floor is None else min(self._floor, after)


_TRIM = _Trimmer(_malloc_trim(), KEEP_FREED_BYTES)


def release_freed_memory(in_use: int = 0) -> None:
    """Give the memory finished whole-image jobs freed back to the system, once it adds up
    (``in_use``: bytes other running jobs reserved, not freed memory).

    Pillow allocates images in 16 MB blocks, below glibc's mmap threshold, so they come from
    the calling thread's malloc arena and stay there when freed; with each request on its own
    thread, the budget's one-at-a-time would still leave every thread's arena holding a whole
    image (four 48 MP re-encodes, one after another: 861 MB resident instead of about 470).
    ``malloc_trim(0)`` returns the free pages of every arena (glibc 2.8 and later). It runs
    only when the process keeps ``KEEP_FREED_BYTES`` or more above its trimmed size: memory
    given back is faulted in again by the next job, which for a stream of rotated photos cost
    more kernel time than the rotation's own copies (issue 13).
    """
    _TRIM(in_use)
