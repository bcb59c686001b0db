"""The cheap strict decode refuses exactly what the full decode refuses (issue 13, item 3).

Three readers of the same damaged photos: the full-size strict decode (simplejpeg, every
pixel), the acceptance check (``check_decodes``: a 1/8-scale decode through ctypes) and the
lossless rotation (``jpeg.turbo.transform``, which is the only decode a rotated photo gets).
Each variant must get the same verdict from all three, and ``prepare_photo`` of the upright
and of the EXIF-rotated copy must refuse it too. The corpus: cuts inside the scan (with and
without an EOI after the cut), single bit flips in the scan, runs of 1-bits (no Huffman code
is all ones, T.81 C), and the shared ``camera/corrupted.jpg``. The service encodes a
spooled photo mapped from its file (``store.spool.mapped``): that refuses the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from capture_api.encode.jpeg import check_decodes, decode_rgb, read_frame, scan_data
from capture_api.encode.jpeg.turbo import TransformFailed, TurboOp, transform
from capture_api.encode.prepare import prepare_photo
from capture_api.exceptions import CorruptImage, InputRejected
from capture_api.store.spool import mapped
from tests.conftest import BROKEN_SAMPLES, SAMPLES, phone_jpeg

#: 640x480 and 3648x2736 are whole 16x16 iMCUs: a rotation is never refused for geometry.
WIDTH, HEIGHT = 640, 480


@dataclass(frozen=True)
class Variant:
    name: str
    data: bytes


def _base() -> bytes:
    return phone_jpeg(WIDTH, HEIGHT, seed=13)


def _scan_start(data: bytes) -> int:
    scan = scan_data(data)
    return data.index(scan[:64])


def _corpus() -> list[Variant]:
    data = _base()
    start = _scan_start(data)
    end = len(data) - 2  # the EOI
    rng = random.Random(13)
    out: list[Variant] = []
    for fraction in (0.05, 0.3, 0.6, 0.9, 0.999):
        cut = start + int((end - start) * fraction)
        out.append(Variant(f"cut-{fraction}", data[:cut]))
        out.append(Variant(f"cut-{fraction}+eoi", data[:cut] + b"\xff\xd9"))
    for i in range(12):
        pos = rng.randrange(start + 16, end - 16)
        flipped = data[pos] ^ (1 << rng.randrange(8))
        if flipped == 0xFF or data[pos - 1] == 0xFF:  # keep the marker structure
            flipped = data[pos] ^ 0x01 if data[pos] ^ 0x01 != 0xFF else data[pos] ^ 0x02
        out.append(Variant(f"bitflip-{i}", data[:pos] + bytes([flipped]) + data[pos + 1 :]))
    for i, fraction in enumerate((0.1, 0.5, 0.8)):
        pos = start + int((end - start) * fraction)
        while data[pos - 1] == 0xFF:
            pos += 1
        ones = b"\xff\x00" * 8  # stuffed FF bytes: sixteen 1-bits per pair
        out.append(Variant(f"bad-huffman-{i}", data[:pos] + ones + data[pos + len(ones) :]))
    for name in BROKEN_SAMPLES:
        out.append(Variant(name, (SAMPLES / name).read_bytes()))
    return out


CORPUS = _corpus()


def _refused_by_full(data: bytes) -> bool:
    try:
        decode_rgb(data)
    except CorruptImage:
        return True
    return False


def _refused_by_check(data: bytes) -> bool:
    try:
        check_decodes(data, read_frame(data))
    except CorruptImage:
        return True
    return False


def _refused_by_transform(data: bytes) -> bool:
    try:
        transform(data, TurboOp.ROT90)
    except TransformFailed:
        return True
    return False


def _with_orientation(data: bytes, orientation: int) -> bytes:
    """The same bytes with EXIF Orientation rewritten (the tag's value is one SHORT)."""
    marker = b"\x01\x12\x00\x03\x00\x00\x00\x01\x00"  # big-endian IFD entry: tag 274, SHORT, 1
    at = data.index(marker) + len(marker)
    return data[:at] + bytes([orientation]) + data[at + 1 :]


def test_the_corpus_has_refusals_and_survivors() -> None:
    verdicts = [_refused_by_full(v.data) for v in CORPUS]
    assert sum(verdicts) >= 10, "too few damaged variants to compare"
    assert not all(verdicts), "every variant refused: bit flips should decode"
    assert not _refused_by_full(_base())


@pytest.mark.parametrize("variant", CORPUS, ids=lambda v: v.name)
def test_scaled_check_and_transform_refuse_what_the_full_decode_refuses(variant: Variant) -> None:
    full = _refused_by_full(variant.data)
    assert _refused_by_check(variant.data) == full
    assert _refused_by_transform(variant.data) == full


@pytest.mark.parametrize(
    "variant", [v for v in CORPUS if v.name.startswith(("cut", "bad"))], ids=lambda v: v.name
)
def test_prepare_refuses_damage_upright_and_rotated(variant: Variant, tmp_path: Path) -> None:
    """Upright photos get the scaled check, rotated ones only the transform: both refuse,
    from the photo's bytes and from its spooled file mapped (what the service encodes)."""
    full = _refused_by_full(variant.data)
    for orientation in (1, 6):
        data = _with_orientation(variant.data, orientation)
        spooled = tmp_path / f"{orientation}.photo"
        spooled.write_bytes(data)
        for given in (data, mapped(spooled)):
            if full:
                with pytest.raises(InputRejected):
                    prepare_photo(given)
            else:
                assert prepare_photo(given).frame.rows in (WIDTH, HEIGHT)
