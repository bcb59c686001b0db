"""Read the few EXIF facts worth keeping, and nothing that identifies a place or a person.

EXIF blocks from phones are often broken (bad offsets, huge counts, empty values: see
``samples/photos/tests``). A broken EXIF block is never a reason to lose a photo: we read
what we can with piexif, fall back to Pillow's more tolerant reader, and report what we could
not read as a warning. GPS is only noticed (to say it was removed), never copied.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import piexif
from PIL import Image

from capture_api.capture.patient import LO_MAX

# EXIF tag numbers (CIPA DC-008 / Exif 2.32): IFD0 and the Exif sub-IFD.
ORIENTATION, MAKE, MODEL, SOFTWARE = 0x0112, 0x010F, 0x0110, 0x0131
DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL, SUBSEC_TIME_ORIGINAL = 0x9003, 0x9011, 0x9291
EXIF_IFD_POINTER, GPS_IFD_POINTER = 0x8769, 0x8825
FLASH, LENS_SPECIFICATION, LENS_MAKE, LENS_MODEL = 0x9209, 0xA432, 0xA433, 0xA434

#: Exif sub-IFD tag -> (DICOM keyword of the VL Photographic Acquisition module, kind).
#: The DICOM module (PS3.3 C.8.12.11) copies the EXIF values one to one.
_ACQUISITION_TAGS: dict[int, tuple[str, str]] = {
    0x829A: ("ExposureTimeInSeconds", "ds"),
    0x829D: ("FNumber", "ds"),
    0x8822: ("ExposureProgram", "us"),
    0x8827: ("PhotographicSensitivity", "is"),
    0x9000: ("EXIFVersion", "text"),
    0x9204: ("ExposureBiasValue", "ds"),
    0x9207: ("MeteringMode", "us"),
    0x9208: ("LightSource", "us"),
    0x920A: ("FocalLength", "ds"),
    0xA402: ("ExposureMode", "us"),
    0xA403: ("WhiteBalance", "us"),
    0xA404: ("DigitalZoomRatio", "ds"),
    0xA405: ("FocalLengthIn35mmFilm", "is"),
    0xA406: ("SceneCaptureType", "us"),
}
_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class ExifFacts:
    """What we keep from EXIF. ``acquisition`` maps DICOM keywords to values."""

    orientation: int = 1
    taken_at: dt.datetime | None = None
    make: str | None = None
    model: str | None = None
    software: str | None = None
    lens_make: str | None = None
    lens_model: str | None = None
    lens_specification: tuple[float, float, float, float] | None = None
    acquisition: dict[str, float | int | str] = field(default_factory=dict)
    had_gps: bool = False
    warnings: tuple[str, ...] = ()


def read_exif(tiff: bytes | None) -> ExifFacts:
    """Parse a TIFF-structured EXIF payload (the APP1 body after ``Exif\\0\\0``)."""
    if not tiff:
        return ExifFacts()
    ifds = _load_piexif(tiff) or _load_pillow(tiff)
    if ifds is None:
        return ExifFacts(warnings=("the photo's EXIF block is unreadable; it was removed",))
    ifd0, exif_ifd, had_gps = ifds
    warnings: list[str] = []
    orientation = _orientation(ifd0.get(ORIENTATION), warnings)
    return ExifFacts(
        orientation=orientation,
        taken_at=_taken_at(exif_ifd),
        make=_text(ifd0.get(MAKE)),
        model=_text(ifd0.get(MODEL)),
        software=_text(ifd0.get(SOFTWARE)),
        lens_make=_text(exif_ifd.get(LENS_MAKE)),
        lens_model=_text(exif_ifd.get(LENS_MODEL)),
        lens_specification=_lens_spec(exif_ifd.get(LENS_SPECIFICATION)),
        acquisition=_acquisition(exif_ifd),
        had_gps=had_gps,
        warnings=tuple(warnings),
    )


# --- the two readers, normalised to (IFD0, Exif IFD, had GPS) ------------------------------

_Ifds = tuple[dict[int, Any], dict[int, Any], bool]


def _load_piexif(tiff: bytes) -> _Ifds | None:
    try:
        d = piexif.load(tiff)
    except Exception:  # piexif raises anything from struct.error to MemoryError on bad IFDs
        return None
    return d.get("0th") or {}, d.get("Exif") or {}, bool(d.get("GPS"))


def _load_pillow(tiff: bytes) -> _Ifds | None:
    exif = Image.Exif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "Corrupt EXIF data" is only a warning in Pillow
            exif.load(b"Exif\x00\x00" + tiff)
            ifd0 = dict(exif.items())
            sub = dict(exif.get_ifd(EXIF_IFD_POINTER).items())
    except Exception:  # Pillow's reader fails in as many ways as piexif on hostile input
        return None
    return ifd0, sub, GPS_IFD_POINTER in ifd0


# --- value normalisation (piexif gives bytes and tuples, Pillow str and IFDRational) ------


def _text(value: Any, limit: int = LO_MAX) -> str | None:
    if isinstance(value, bytes):
        value = value.split(b"\x00", 1)[0]
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    cleaned = "".join(c for c in value if c.isprintable() and c != "\\").strip()
    return cleaned[:limit] or None


def _number(value: Any) -> float | None:
    try:
        if isinstance(value, tuple) and len(value) == 2:
            return float(Fraction(int(value[0]), int(value[1])))
        if isinstance(value, (tuple, list)) and len(value) == 1:
            return _number(value[0])
        result = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return result if result == result and abs(result) < 1e15 else None  # drop NaN, inf


def _orientation(value: Any, warnings: list[str]) -> int:
    number = _number(value)
    if value is None:
        return 1
    if number is None or int(number) != number or not 1 <= number <= 8:
        warnings.append(f"EXIF orientation {value!r} is not 1-8; the photo is kept as stored")
        return 1
    return int(number)


def _taken_at(exif_ifd: dict[int, Any]) -> dt.datetime | None:
    text = _text(exif_ifd.get(DATE_TIME_ORIGINAL)) or ""
    match = _EXIF_DATE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        taken = dt.datetime(year, month, day, hour, minute, second)
    except ValueError:  # 0000:00:00 00:00:00 and other impossible dates
        return None
    subsec = _text(exif_ifd.get(SUBSEC_TIME_ORIGINAL)) or ""
    if subsec.isdigit():
        taken = taken.replace(microsecond=int(subsec[:6].ljust(6, "0")))
    offset = _OFFSET.match(_text(exif_ifd.get(OFFSET_TIME_ORIGINAL)) or "")
    if offset and int(offset.group(2)) <= 14 and int(offset.group(3)) < 60:
        sign = -1 if offset.group(1) == "-" else 1
        delta = dt.timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3)))
        taken = taken.replace(tzinfo=dt.timezone(sign * delta))
    return taken


def _lens_spec(value: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        return None
    numbers = [_number(v) for v in value]
    if any(n is None for n in numbers):
        return None
    a, b, c, d = (float(n) for n in numbers if n is not None)
    return a, b, c, d


def _acquisition(exif_ifd: dict[int, Any]) -> dict[str, float | int | str]:
    out: dict[str, float | int | str] = {}
    for tag, (keyword, kind) in _ACQUISITION_TAGS.items():
        value = _acquisition_value(exif_ifd.get(tag), kind)
        if value is not None:
            out[keyword] = value
    out.update(_flash(exif_ifd.get(FLASH)))
    return out


def _acquisition_value(raw: Any, kind: str) -> float | int | str | None:
    if raw is None:
        return None
    if kind == "text":
        return _text(raw, limit=16)
    number = _number(raw)
    if number is None:
        return None
    if kind == "ds":
        return number
    if int(number) != number or not 0 <= number <= (65535 if kind == "us" else 2**31 - 1):
        return None
    return int(number)


def _flash(raw: Any) -> dict[str, int]:
    """Split the EXIF Flash bit field into DICOM's five Flash attributes (C.8.12.11)."""
    number = _number(raw)
    if number is None or int(number) != number or not 0 <= number < 128:
        return {}
    bits = int(number)
    return {
        "FlashFiringStatus": bits & 0x01,
        "FlashReturnStatus": (bits >> 1) & 0x03,
        "FlashMode": (bits >> 3) & 0x03,
        "FlashFunctionPresent": (bits >> 5) & 0x01,
        "FlashRedEyeMode": (bits >> 6) & 0x01,
    }
