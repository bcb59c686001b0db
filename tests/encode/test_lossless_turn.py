"""The lossless turn reads the photo as received and writes straight into its result.

``jpeg.turbo.transform`` is given the photo with its metadata segments (the mapped spooled
file, not a stripped copy joined for it) and writes into an anonymous mapping of the
library's worst-case size, cut to the stream (issue 13: two 4 MB copies per rotated photo
fewer). The oracle is ``jpegtran -perfect -copy none`` of Debian's libjpeg-turbo, another
build of the same engine run as a separate program: every shared sample photo, turned every
way, must come out byte for byte as jpegtran writes it, or be refused where jpegtran refuses.
"""

from __future__ import annotations

import mmap
import subprocess
from pathlib import Path

import pytest

from capture_api.encode.formats import PhotoFormat, sniff
from capture_api.encode.jpeg.markers import strip_metadata_parts
from capture_api.encode.jpeg.turbo import TransformFailed, TurboOp, transform
from capture_api.encode.orientation import make_upright
from capture_api.store.spool import mapped
from tests.conftest import phone_jpeg, require_tool, sample_id, sample_paths

_JPEGTRAN_ARGS = {
    TurboOp.HFLIP: ["-flip", "horizontal"],
    TurboOp.VFLIP: ["-flip", "vertical"],
    TurboOp.TRANSPOSE: ["-transpose"],
    TurboOp.TRANSVERSE: ["-transverse"],
    TurboOp.ROT90: ["-rotate", "90"],
    TurboOp.ROT180: ["-rotate", "180"],
    TurboOp.ROT270: ["-rotate", "270"],
}
_JPEG_SAMPLES = [p for p in sample_paths() if sniff(p.read_bytes()) is PhotoFormat.JPEG]


def _jpegtran(data: bytes, op: TurboOp) -> bytes | None:
    """jpegtran's stream, or None when it refuses (an error, or a warning: damaged data)."""
    done = subprocess.run(
        [require_tool("jpegtran"), "-perfect", "-copy", "none", *_JPEGTRAN_ARGS[op]],
        input=data,
        capture_output=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 and not done.stderr else None


def _ours(data: bytes | mmap.mmap, op: TurboOp) -> bytes | None:
    try:
        turned = transform(data, op)
    except TransformFailed:
        return None
    assert isinstance(turned, mmap.mmap)
    return turned[:]


@pytest.mark.parametrize("path", _JPEG_SAMPLES, ids=sample_id)
def test_every_sample_turns_every_way_as_jpegtran_turns_it(path: Path) -> None:
    data = path.read_bytes()
    for op in _JPEGTRAN_ARGS:
        assert _ours(data, op) == _jpegtran(data, op), op.name


def test_some_samples_turn_and_some_are_refused() -> None:
    """The comparison above is not all refusals (nor all successes)."""
    turned = [_ours(p.read_bytes(), TurboOp.ROT90) is not None for p in _JPEG_SAMPLES]
    assert 3 <= sum(turned) < len(turned)


def test_a_phone_photo_turns_from_its_mapped_file_as_jpegtran_turns_it(tmp_path: Path) -> None:
    photo = phone_jpeg(1024, 768, orientation=6, gps=True, seed=3)
    path = tmp_path / "rotated.photo"
    path.write_bytes(photo)
    mapping = mapped(path)
    assert isinstance(mapping, mmap.mmap)
    expected = _jpegtran(photo, TurboOp.ROT90)
    assert expected is not None and _ours(mapping, TurboOp.ROT90) == expected


def test_the_metadata_given_to_the_turn_changes_nothing() -> None:
    """The photo as received and its stripped stream (what was turned before) turn alike,
    and the turned stream carries none of the photo's EXIF (GPS included)."""
    photo = phone_jpeg(1024, 768, orientation=6, gps=True, seed=4)
    stripped = strip_metadata_parts(photo)
    upright = make_upright(photo, stripped, 6)
    assert upright.method == "lossless"
    assert upright.data[:] == transform(stripped.joined().data, TurboOp.ROT90)[:]
    assert b"Exif\x00\x00" in photo and upright.data.find(b"Exif\x00\x00") == -1


def test_a_damaged_photo_is_refused_in_libjpegs_words() -> None:
    photo = phone_jpeg(1024, 768, orientation=6, seed=5)
    cut = photo[: len(photo) * 2 // 3]
    with pytest.raises(TransformFailed, match=r"(?i)premature end|corrupt"):
        transform(cut, TurboOp.ROT90)
    with pytest.raises(TransformFailed):
        transform(b"", TurboOp.ROT90)
