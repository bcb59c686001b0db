"""A spooled DICOM object kept as references to its photo: the photo's megabytes stored once.

An upright camera JPEG is archived byte for byte: its DICOM object is a small header, the
photo's scan as it was uploaded, and a few bytes after it (``encode.part10``). The spool used
to write that object out in full beside the photo it came from, so every 12 MP photo was
written (and fsync'd) twice until verified, and with ``CAPTURE_SPOOL=database`` went through
PostgreSQL's WAL twice (issue 13). Now the object's file in the spool holds only what is not
the photo's: a manifest naming the photo's file and the byte ranges taken from it, and the
literal bytes between them. A 12 MP photo's object is then 2-3 KB on disk, and an outage
of the archive fills the spool half as fast.

Readers never see the difference: ``resolve`` turns such a file into a ``ComposedSource`` with
the object's size and bytes, read from the photo's file here or (``DatabaseSpool``) from the
database on another replica. The photo is kept as long as the object: both are named by the
capture's row until it is verified, and deleted together.

File layout::

    capture-composed-dicom 1\n
    {"photo": "<the photo's file name>", "pieces": [1380, [612, 3851210], 10]}\n
    <the literal pieces' bytes, in order>

where an integer piece is that many literal bytes and ``[start, end]`` a range of the photo's
file (ascending and apart, in the photo's order). A DICOM Part 10 file starts with a 128-byte
preamble and ``DICM``; ours are zeros, so no DICOM file is read as a composed one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capture_api.store.spool_source import SpoolSource

MAGIC = b"capture-composed-dicom 1\n"

#: A piece: literal bytes, or ``(start, end)`` of the photo's file.
Piece = bytes | tuple[int, int]


def encode(pieces: Sequence[Piece], photo_name: str) -> bytes:
    """The composed file's bytes for ``pieces`` of the photo named ``photo_name``."""
    manifest: list[int | list[int]] = []
    literal: list[bytes] = []
    last = 0
    for piece in pieces:
        if isinstance(piece, bytes):
            manifest.append(len(piece))
            literal.append(piece)
            continue
        start, end = piece
        if not last <= start <= end:
            raise ValueError(f"the photo's ranges must ascend and not overlap: {pieces!r}")
        manifest.append([start, end])
        last = end
    line = json.dumps({"photo": photo_name, "pieces": manifest}, separators=(",", ":"))
    return MAGIC + line.encode() + b"\n" + b"".join(literal)


@dataclass(frozen=True)
class ComposedSource:
    """The object a composed file describes, read from ``photo`` (a ``SpoolSource``)."""

    pieces: tuple[Piece, ...]
    photo: SpoolSource

    @property
    def size(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p[1] - p[0] for p in self.pieces)

    def chunks(self) -> Iterator[bytes]:
        photo = self.photo.chunks()
        at, chunk = 0, b""  # ``chunk`` is the photo's bytes from offset ``at``
        for piece in self.pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            start, end = piece
            while start < end:
                if at + len(chunk) <= start:  # the range starts beyond this chunk
                    at += len(chunk)
                    chunk = next(photo, b"")
                    if not chunk:
                        raise OSError(
                            "the photo a spooled DICOM object is made of is shorter than "
                            f"the object needs ({at} bytes, {end} needed)"
                        )
                    continue
                low, high = start - at, min(end - at, len(chunk))
                yield chunk if (low, high) == (0, len(chunk)) else chunk[low:high]
                start = at + high

    def read(self) -> bytes:
        return b"".join(self.chunks())


def resolve(found: SpoolSource, photo_named: Callable[[str], SpoolSource]) -> SpoolSource:
    """``found`` itself, or, when it is a composed file, the DICOM object it describes, with
    ``photo_named(name)`` the source of the photo's file (``OSError`` when it is nowhere).
    A whole file is read no further than its first piece; a composed one is read once."""
    chunks = found.chunks()
    head = b""
    for chunk in chunks:  # however small the pieces
        head += chunk
        if len(head) >= len(MAGIC):
            break
    if not head.startswith(MAGIC):
        return found  # (the generator, and a file's handle, end with this function)
    data = head + b"".join(chunks)
    line_end = data.index(b"\n", len(MAGIC))
    manifest = json.loads(data[len(MAGIC) : line_end])
    literal = memoryview(data)[line_end + 1 :]
    pieces: list[Piece] = []
    for item in manifest["pieces"]:
        if isinstance(item, int):
            pieces.append(bytes(literal[:item]))
            literal = literal[item:]
        else:
            pieces.append((int(item[0]), int(item[1])))
    return ComposedSource(tuple(pieces), photo_named(str(manifest["photo"])))


def beside(path: str | Path | None, name: str) -> str:
    """Where the spool keeps the file ``name`` when it keeps the file at ``path``: every file
    is ``<spool>/<first two characters of its name>/<name>`` (``Spool.path_for``)."""
    return str(Path(path or "").parent.parent / name[:2] / name)
