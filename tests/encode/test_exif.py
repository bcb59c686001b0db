"""read_exif: the few facts worth keeping, tolerant of broken blocks, and never GPS."""

from __future__ import annotations

import datetime as dt
import random
import struct
import warnings
from typing import Any

import piexif
import pytest

from capture_api.encode.exif import ExifFacts, read_exif
from capture_api.encode.jpeg.markers import strip_metadata
from tests.conftest import SAMPLES, phone_jpeg

E, I0, G = piexif.ExifIFD, piexif.ImageIFD, piexif.GPSIFD


def _tiff(
    zeroth: dict[int, Any] | None = None,
    exif: dict[int, Any] | None = None,
    gps: dict[int, Any] | None = None,
) -> bytes:
    """A TIFF-structured EXIF payload: piexif.dump minus its b"Exif\\0\\0" header."""
    dumped: bytes = piexif.dump({"0th": zeroth or {}, "Exif": exif or {}, "GPS": gps or {}})
    assert dumped.startswith(b"Exif\x00\x00")
    return dumped[6:]


def _raw_tiff(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A little-endian TIFF with one IFD of (tag, type, count, value) entries, any types."""
    head_len = 8 + 2 + 12 * len(entries) + 4
    ifd, extra = [struct.pack("<H", len(entries))], b""
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            field = value.ljust(4, b"\x00")
        else:
            field = struct.pack("<I", head_len + len(extra))
            extra += value + b"\x00" * (len(value) % 2)
        ifd.append(struct.pack("<HHI", tag, kind, count) + field)
    return b"II*\x00" + struct.pack("<I", 8) + b"".join(ifd) + b"\x00\x00\x00\x00" + extra


def _taken(**exif: bytes) -> dt.datetime | None:
    tags = {"date": E.DateTimeOriginal, "subsec": E.SubSecTimeOriginal}
    tags["offset"] = E.OffsetTimeOriginal
    return read_exif(_tiff(exif={tags[k]: v for k, v in exif.items()})).taken_at


# --- nothing to read ---------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, b""], ids=["none", "empty"])
def test_no_exif_gives_defaults(empty: bytes | None) -> None:
    facts = read_exif(empty)
    assert facts == ExifFacts()
    assert facts.orientation == 1 and facts.warnings == () and facts.acquisition == {}


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_give_defaults_with_a_warning(seed: int) -> None:
    rng = random.Random(seed)
    data = bytes([0x42]) + bytes(rng.randrange(256) for _ in range(300))
    facts = read_exif(data)
    assert facts.warnings, facts
    assert "unreadable" in facts.warnings[0]
    assert facts == ExifFacts(warnings=facts.warnings)


_BROKEN_TIFFS = [
    b"II*\x00\xff\xff\xff\x7f",  # IFD offset far past the end
    b"MM\x00*\x00\x00\x00\x08\xff\xff" + bytes(40),  # 65535 entries, 40 bytes of them
    b"II*\x00\x08\x00\x00\x00",  # IFD offset at the very end
]
_BROKEN_IDS = ["offset-past-end", "huge-count", "no-ifd"]


def _read_quietly(data: bytes) -> tuple[ExifFacts, list[warnings.WarningMessage]]:
    """read_exif under a fixed warnings filter, so the result does not depend on -W flags."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        return read_exif(data), caught


@pytest.mark.parametrize("data", _BROKEN_TIFFS, ids=_BROKEN_IDS)
def test_broken_tiff_never_raises(data: bytes) -> None:
    facts, _ = _read_quietly(data)
    assert facts.orientation == 1
    assert facts.make is None and facts.taken_at is None and not facts.had_gps


@pytest.mark.parametrize("data", _BROKEN_TIFFS, ids=_BROKEN_IDS)
def test_broken_tiff_is_reported_without_leaking_python_warnings(data: bytes) -> None:
    facts, caught = _read_quietly(data)
    assert facts.warnings, "an unreadable EXIF block must be reported"
    assert caught == []


# --- dates -------------------------------------------------------------------------------------


def test_date_with_subseconds_and_offset_is_aware() -> None:
    taken = _taken(date=b"2024:03:05 10:11:12", subsec=b"250", offset=b"-05:30")
    assert taken == dt.datetime(
        2024, 3, 5, 10, 11, 12, 250000, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30))
    )
    assert taken is not None
    assert taken.microsecond == 250000
    assert taken.utcoffset() == -dt.timedelta(hours=5, minutes=30)


def test_date_without_offset_is_naive() -> None:
    taken = _taken(date=b"2024:03:05 10:11:12")
    assert taken == dt.datetime(2024, 3, 5, 10, 11, 12)
    assert taken is not None and taken.tzinfo is None


@pytest.mark.parametrize(
    ("subsec", "micro"), [(b"5", 500000), (b"123456789", 123456), (b"abc", 0), (b"", 0)]
)
def test_subseconds_are_fractions_of_a_second(subsec: bytes, micro: int) -> None:
    taken = _taken(date=b"2024:03:05 10:11:12", subsec=subsec)
    assert taken is not None and taken.microsecond == micro


@pytest.mark.parametrize(
    "date",
    [b"0000:00:00 00:00:00", b"2023:13:45 25:00:00", b"2023:02:30 10:00:00", b"", b"    :  :  "],
    ids=["zeros", "impossible", "feb-30", "empty", "blank"],
)
def test_invalid_dates_are_none(date: bytes) -> None:
    assert _taken(date=date, offset=b"+01:00") is None


@pytest.mark.parametrize("offset", [b"+25:00", b"+05:75", b"0530", b"Z", b""])
def test_invalid_offset_leaves_the_date_naive(offset: bytes) -> None:
    taken = _taken(date=b"2024:03:05 10:11:12", offset=offset)
    assert taken == dt.datetime(2024, 3, 5, 10, 11, 12)
    assert taken is not None and taken.tzinfo is None


def test_phone_jpeg_date_round_trips() -> None:
    exif = strip_metadata(phone_jpeg(64, 48)).exif
    taken = read_exif(exif).taken_at
    one_hour = dt.timezone(dt.timedelta(hours=1))
    assert taken == dt.datetime(2026, 11, 2, 9, 15, 30, 250000, tzinfo=one_hour)
    assert taken is not None and taken.utcoffset() == dt.timedelta(hours=1)


# --- text --------------------------------------------------------------------------------------


def test_trailing_nuls_are_dropped() -> None:
    facts = read_exif(_tiff({I0.Make: b"Apple\x00\x00\x00", I0.Model: b"iPhone 15\x00junk"}))
    assert facts.make == "Apple"
    assert facts.model == "iPhone 15"


def test_latin1_text_is_decoded() -> None:
    assert read_exif(_tiff({I0.Make: b"Cam\xe9ra S\xfcd"})).make == "Caméra Süd"


def test_utf8_text_is_decoded() -> None:
    assert read_exif(_tiff({I0.Model: "Caméra Süd".encode()})).model == "Caméra Süd"


def test_backslash_is_removed() -> None:
    model = read_exif(_tiff({I0.Model: b"Pixel\\8\\Pro"})).model
    assert model is not None
    assert "\\" not in model
    assert model == "Pixel8Pro"


def test_control_characters_are_removed_and_text_stripped() -> None:
    assert read_exif(_tiff({I0.Software: b"  17.1\r\n\t\x07 "})).software == "17.1"


def test_long_text_is_cut_to_64() -> None:
    value = "".join(chr(ord("a") + i % 26) for i in range(100))
    facts = read_exif(_tiff({I0.Software: value.encode()}))
    assert facts.software == value[:64]


@pytest.mark.parametrize("value", [b"", b"\x00\x00", b"   ", b"\\\\"])
def test_empty_text_is_none(value: bytes) -> None:
    assert read_exif(_tiff({I0.Make: value})).make is None


def test_lens_fields() -> None:
    facts = read_exif(
        _tiff(
            exif={
                E.LensMake: b"Apple",
                E.LensModel: b"iPhone 15 back camera 6.86mm f/1.78",
                E.LensSpecification: ((686, 100), (686, 100), (178, 100), (178, 100)),
            }
        )
    )
    assert facts.lens_make == "Apple"
    assert facts.lens_model == "iPhone 15 back camera 6.86mm f/1.78"
    assert facts.lens_specification == pytest.approx((6.86, 6.86, 1.78, 1.78))


def test_lens_specification_with_unknown_value_is_none() -> None:
    spec = ((686, 100), (0, 0), (178, 100), (178, 100))
    assert read_exif(_tiff(exif={E.LensSpecification: spec})).lens_specification is None


# --- orientation -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", range(1, 9))
def test_orientation_1_to_8_is_read(value: int) -> None:
    facts = read_exif(_tiff({I0.Orientation: value}))
    assert facts.orientation == value
    assert facts.warnings == ()


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_out_of_range_orientation_is_1_with_a_warning(value: int) -> None:
    facts = read_exif(_tiff({I0.Orientation: value}))
    assert facts.orientation == 1
    assert len(facts.warnings) == 1
    assert "orientation" in facts.warnings[0] and str(value) in facts.warnings[0]


def test_text_orientation_is_1_with_a_warning() -> None:
    facts = read_exif(_raw_tiff([(0x0112, 2, 9, b"rotate90\x00")]))  # ASCII, not SHORT
    assert facts.orientation == 1
    assert any("orientation" in w for w in facts.warnings), facts.warnings


def test_raw_tiff_helper_is_understood() -> None:
    """Guards the helper above: a SHORT orientation 6 and an ASCII Make built by hand."""
    facts = read_exif(_raw_tiff([(0x010F, 2, 6, b"Maker\x00"), (0x0112, 3, 1, b"\x06\x00")]))
    assert (facts.make, facts.orientation) == ("Maker", 6)


def test_missing_orientation_is_1_without_warning() -> None:
    facts = read_exif(_tiff({I0.Make: b"X"}))
    assert facts.orientation == 1 and facts.warnings == ()


# --- exposure ----------------------------------------------------------------------------------


def test_exposure_values_map_to_dicom_keywords() -> None:
    acq = read_exif(
        _tiff(
            exif={
                E.ExposureTime: (1, 120),
                E.FNumber: (18, 10),
                E.ISOSpeedRatings: 125,
                E.FocalLength: (686, 100),
                E.ExposureProgram: 2,
                E.MeteringMode: 5,
                E.FocalLengthIn35mmFilm: 26,
                E.ExposureBiasValue: (-2, 3),
                E.ExifVersion: b"0232",
            }
        )
    ).acquisition
    assert acq["ExposureTimeInSeconds"] == pytest.approx(1 / 120)
    assert acq["FNumber"] == pytest.approx(1.8)
    assert acq["PhotographicSensitivity"] == 125
    assert isinstance(acq["PhotographicSensitivity"], int)
    assert acq["FocalLength"] == pytest.approx(6.86)
    assert acq["ExposureProgram"] == 2
    assert acq["MeteringMode"] == 5
    assert acq["FocalLengthIn35mmFilm"] == 26
    assert acq["ExposureBiasValue"] == pytest.approx(-2 / 3)
    assert acq["EXIFVersion"] == "0232"
    assert "ISOSpeedRatings" not in acq


def test_zero_denominator_leaves_the_key_out() -> None:
    acq = read_exif(_tiff(exif={E.ExposureTime: (1, 0), E.FNumber: (0, 0)})).acquisition
    assert "ExposureTimeInSeconds" not in acq
    assert "FNumber" not in acq


def test_absent_values_are_absent() -> None:
    assert read_exif(_tiff({I0.Make: b"X"})).acquisition == {}


@pytest.mark.parametrize(
    ("flash", "expected"),
    [
        (0x19, (1, 0, 3, 0, 0)),  # fired, auto mode
        (0x00, (0, 0, 0, 0, 0)),  # did not fire
        (0x10, (0, 0, 2, 0, 0)),  # off, compulsory suppression
        (0x07, (1, 3, 0, 0, 0)),  # fired, strobe return light detected
        (0x20, (0, 0, 0, 1, 0)),  # no flash function
        (0x59, (1, 0, 3, 0, 1)),  # fired, auto, red-eye reduction
    ],
    ids=["0x19", "0x00", "0x10", "0x07", "0x20", "0x59"],
)
def test_flash_bits(flash: int, expected: tuple[int, int, int, int, int]) -> None:
    acq = read_exif(_tiff(exif={E.Flash: flash})).acquisition
    keys = (
        "FlashFiringStatus",
        "FlashReturnStatus",
        "FlashMode",
        "FlashFunctionPresent",
        "FlashRedEyeMode",
    )
    assert tuple(acq[k] for k in keys) == expected


def test_flash_out_of_range_is_left_out() -> None:
    acq = read_exif(_tiff(exif={E.Flash: 200})).acquisition
    assert not any(k.startswith("Flash") for k in acq)


# --- GPS ---------------------------------------------------------------------------------------


def test_gps_is_noticed_but_never_copied() -> None:
    gps = {
        G.GPSLatitudeRef: b"N",
        G.GPSLatitude: ((47, 1), (36, 1), (5831, 100)),
        G.GPSLongitudeRef: b"W",
        G.GPSLongitude: ((122, 1), (19, 1), (4417, 100)),
        G.GPSAltitude: (9137, 10),
    }
    facts = read_exif(_tiff({I0.Make: b"PhoneMaker"}, {E.FNumber: (18, 10)}, gps))
    assert facts.had_gps is True
    assert facts.make == "PhoneMaker"
    text = repr(facts)
    for number in ("5831", "58.31", "4417", "44.17", "9137", "913.7", "122", "47.6"):
        assert number not in text, number
    assert not any("GPS" in key for key in facts.acquisition)


def test_no_gps_ifd_means_had_gps_false() -> None:
    assert read_exif(_tiff({I0.Make: b"X"})).had_gps is False


def test_gps_sample_photo_is_noticed() -> None:
    exif = strip_metadata((SAMPLES / "gps" / "DSCN0010.jpg").read_bytes()).exif
    facts = read_exif(exif)
    assert facts.had_gps is True
    assert facts.make == "NIKON"
