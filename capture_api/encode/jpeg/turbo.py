"""libjpeg-turbo's lossless transform through ctypes: a call that lets other threads run.

The ``turbojpeg`` binding holds the GIL for the whole transform (about 110 ms for a 12 MP
photo), so rotated photos were encoded one at a time whatever the number of cores. A ctypes
call releases the GIL for as long as the C function runs, so the same library
(``tjTransform`` of the TurboJPEG API, the engine of ``jpegtran``) runs on every core.

The transform is also a strict decode: ``tjTransform`` reads every DCT coefficient of the
scan (``jpeg_read_coefficients``), and with ``TJFLAG_STOPONWARNING`` each of libjpeg's
"Corrupt JPEG data" warnings is an error. An upright photo gets ``check_scaled`` instead: a
1/8-scale decode (``tjDecompress2``; DCT scaling keeps one coefficient per block for the
IDCT but Huffman-decodes them all, and reads to EOI), to luminance only. It is cheaper than a
coefficient read (which allocates every coefficient of the image, 36 MB for 12 MP) and
streams through a small buffer.

Both read the photo where it is (a mapped spooled file: ``numpy`` gives its address, as
``c_char_p`` takes only ``bytes``), and the transform writes into an anonymous mapping of the
library's worst-case size (``tjBufSize``, pages the kernel gives only when written), cut to
the stream's length: no copy of the photo is made on either side of the call.

The library is the one the ``turbojpeg`` wheel bundles (``turbojpeg.libs/``, so the container
needs no apt package); a system ``libturbojpeg`` only when that is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import mmap
from enum import IntEnum
from pathlib import Path

import numpy as np

from capture_api.encode.photo_data import PhotoData

#: TurboJPEG flags and transform options (turbojpeg.h, API 2.x, kept by 3.x).
TJFLAG_NOREALLOC = 1024
TJFLAG_STOPONWARNING = 8192
TJXOPT_PERFECT = 1
TJXOPT_COPYNONE = 64
TJPF_GRAY = 6
TJSAMP_444 = 0


class TurboOp(IntEnum):
    """TJXOP_* (turbojpeg.h): the lossless transforms."""

    NONE = 0
    HFLIP = 1
    VFLIP = 2
    TRANSPOSE = 3
    TRANSVERSE = 4
    ROT90 = 5
    ROT180 = 6
    ROT270 = 7


class TransformFailed(Exception):
    """libjpeg-turbo refused: damaged data (a warning, stopped on) or an imperfect transform."""


class _Region(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("w", ctypes.c_int), ("h", ctypes.c_int)]


class _Transform(ctypes.Structure):
    _fields_ = [
        ("r", _Region),
        ("op", ctypes.c_int),
        ("options", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("customFilter", ctypes.c_void_p),
    ]


@functools.cache
def _library() -> ctypes.CDLL:
    import turbojpeg  # only to find the library its wheel bundles

    bundled = sorted((Path(turbojpeg.__file__).parent / "turbojpeg.libs").glob("libturbojpeg*"))
    name = str(bundled[0]) if bundled else ctypes.util.find_library("turbojpeg")
    if name is None:
        raise OSError("libturbojpeg is not installed (pip install turbojpeg)")
    lib = ctypes.CDLL(name)
    lib.tjInitTransform.restype = ctypes.c_void_p
    lib.tjBufSize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.tjBufSize.restype = ctypes.c_ulong
    lib.tjDecompressHeader3.argtypes = [
        ctypes.c_void_p,  # handle
        ctypes.c_void_p,  # jpegBuf
        ctypes.c_ulong,  # jpegSize
        ctypes.POINTER(ctypes.c_int),  # width
        ctypes.POINTER(ctypes.c_int),  # height
        ctypes.POINTER(ctypes.c_int),  # jpegSubsamp
        ctypes.POINTER(ctypes.c_int),  # jpegColorspace
    ]
    lib.tjInitDecompress.restype = ctypes.c_void_p
    lib.tjDecompress2.argtypes = [
        ctypes.c_void_p,  # handle
        ctypes.c_void_p,  # jpegBuf
        ctypes.c_ulong,  # jpegSize
        ctypes.c_void_p,  # dstBuf
        ctypes.c_int,  # width
        ctypes.c_int,  # pitch
        ctypes.c_int,  # height
        ctypes.c_int,  # pixelFormat
        ctypes.c_int,  # flags
    ]
    lib.tjDestroy.argtypes = [ctypes.c_void_p]
    lib.tjGetErrorStr2.argtypes = [ctypes.c_void_p]
    lib.tjGetErrorStr2.restype = ctypes.c_char_p
    lib.tjTransform.argtypes = [
        ctypes.c_void_p,  # handle
        ctypes.c_void_p,  # jpegBuf
        ctypes.c_ulong,  # jpegSize
        ctypes.c_int,  # n
        ctypes.POINTER(ctypes.c_void_p),  # dstBufs
        ctypes.POINTER(ctypes.c_ulong),  # dstSizes
        ctypes.POINTER(_Transform),  # transforms
        ctypes.c_int,  # flags
    ]
    return lib


def transform(data: PhotoData, op: TurboOp) -> mmap.mmap:
    """``jpegtran -perfect -copy none`` with ``op``, strict; raise ``TransformFailed``.

    ``data`` may carry metadata segments: ``-copy none`` writes none of them. The result is
    an anonymous mapping holding exactly the new stream.
    """
    lib = _library()
    handle = lib.tjInitTransform()
    if not handle:
        raise MemoryError("libjpeg-turbo could not start a transform")
    source = np.frombuffer(data, dtype=np.uint8)
    try:
        out = mmap.mmap(-1, _most_bytes(lib, handle, source), flags=mmap.MAP_PRIVATE)
        target = np.frombuffer(out, dtype=np.uint8)
        spec = _Transform(op=int(op), options=TJXOPT_PERFECT | TJXOPT_COPYNONE)
        buffer, size = ctypes.c_void_p(target.ctypes.data), ctypes.c_ulong(target.size)
        # ctypes releases the GIL for the length of this call.
        code = lib.tjTransform(
            handle, source.ctypes.data, source.size, 1, ctypes.byref(buffer),
            ctypes.byref(size), ctypes.byref(spec), TJFLAG_STOPONWARNING | TJFLAG_NOREALLOC,
        )  # fmt: skip
        if code != 0:
            raise TransformFailed(_error(lib, handle))
        del target  # an exported buffer would forbid the resize
    finally:
        lib.tjDestroy(handle)
    out.resize(size.value)  # mremap: the untouched pages were never given
    return out


def _most_bytes(lib: ctypes.CDLL, handle: int, source: np.ndarray) -> int:
    """The library's bound on any JPEG stream of this photo's size, either way round."""
    width, height, subsamp, colorspace = (ctypes.c_int() for _ in range(4))
    code = lib.tjDecompressHeader3(
        handle, source.ctypes.data, source.size, ctypes.byref(width), ctypes.byref(height),
        ctypes.byref(subsamp), ctypes.byref(colorspace),
    )  # fmt: skip
    if code != 0:
        raise TransformFailed(_error(lib, handle))
    sampling = subsamp.value if subsamp.value >= 0 else TJSAMP_444  # unknown: the largest
    w, h = width.value, height.value
    return int(max(lib.tjBufSize(w, h, sampling), lib.tjBufSize(h, w, sampling)))


def _error(lib: ctypes.CDLL, handle: int) -> str:
    return (lib.tjGetErrorStr2(handle) or b"").decode("ascii", "replace")


def check_scaled(data: PhotoData, rows: int, columns: int) -> None:
    """Decode strictly at 1/8 scale to luminance; raise ``TransformFailed`` if damaged."""
    lib = _library()
    handle = lib.tjInitDecompress()
    if not handle:
        raise MemoryError("libjpeg-turbo could not start a decode")
    width, height = -(-columns // 8), -(-rows // 8)
    # ``c_char_p`` takes only ``bytes``; numpy gives the address of a mapped file's bytes too.
    source = np.frombuffer(data, dtype=np.uint8)
    out = ctypes.create_string_buffer(width * height)
    try:
        # ctypes releases the GIL for the length of this call.
        code = lib.tjDecompress2(
            handle, source.ctypes.data, source.size, out, width, 0, height, TJPF_GRAY,
            TJFLAG_STOPONWARNING,
        )  # fmt: skip
        if code != 0:
            raise TransformFailed(_error(lib, handle))
    finally:
        lib.tjDestroy(handle)
