"""The photo upload's multipart body, read as it arrives: the photo straight into the spool.

Starlette's form parser spools a file part over 1 MB to a temporary file, which the service
then copied into the spool and read back to hash (issue 13: 31 ms and two copies of every
12 MP photo). Here python-multipart's ``MultipartParser`` runs over ``request.stream()``
and its callbacks write the photo's chunks into a spool file (``store.spool.Incoming``,
SHA-256 on the way); the other fields are small text kept in memory and validated by
``PhotoForm`` exactly as the ``Form(...)`` parameters were (an empty field is absent, a
repeated one is a list, errors are FastAPI's 422 shape).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from capture_api.capture import (
    FreeText,
    Laterality,
    MultilineText,
    SensitivityCategory,
    SensitivityLevel,
)
from capture_api.capture.lesions import ContactMethod, Polarization
from capture_api.exceptions import InputRejected
from capture_api.store.spool import Incoming, SpooledFile

PHOTO_FIELD = "photo"
#: The text fields are short (the note, 10 KB, is the longest); far more is not a phone.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 64


class PhotoForm(BaseModel):
    """The metadata sent with one photo (the form's fields other than ``photo``)."""

    capture_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
    context_id: Annotated[FreeText, Field(min_length=1, max_length=64)]
    body_site: Annotated[str | None, Field(pattern=r"^[0-9]{5,18}$")] = None
    laterality: Laterality | None = None
    sensitivity: SensitivityLevel = SensitivityLevel.NORMAL
    categories: list[SensitivityCategory] | None = None
    note: Annotated[MultilineText | None, Field(max_length=10240)] = None
    view: Annotated[FreeText | None, Field(max_length=1024)] = None
    operator: Annotated[FreeText | None, Field(max_length=64)] = None
    device: Annotated[FreeText | None, Field(max_length=64)] = None
    captured_at: dt.datetime | None = None
    lesion: Annotated[
        str | None,
        Field(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64, description="a lesion's Tracking UID"),
    ] = None
    dermoscopic: Annotated[bool, Field(description="taken through a dermatoscope")] = False
    polarization: Polarization | None = None
    contact: ContactMethod | None = None
    immersion: Annotated[
        str | None, Field(pattern=r"^(ULTRASOUND_GEL|ALCOHOL|WATER|MINERAL_OIL|PLASTIC_CAP)$")
    ] = None


def request_body_schema() -> dict[str, Any]:
    """The route's OpenAPI ``requestBody``: ``PhotoForm`` plus the photo, references inlined."""
    schema = PhotoForm.model_json_schema()
    definitions = schema.pop("$defs", {})
    schema["properties"] = {
        PHOTO_FIELD: {
            "type": "string",
            "format": "binary",
            "title": "Photo",
            "description": "The camera's JPEG or HEIC file",
        },
        **schema["properties"],
    }
    schema["required"] = [PHOTO_FIELD, *schema.get("required", [])]
    schema["title"] = "Photo upload"
    return {
        "required": True,
        "content": {"multipart/form-data": {"schema": _inline(schema, definitions)}},
    }


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


class _Reader:
    """The parser's callbacks: text fields into memory, the photo into ``open_photo()``."""

    def __init__(self, open_photo: Callable[[], Incoming]) -> None:
        self.open_photo = open_photo
        self.fields: dict[str, list[str]] = defaultdict(list)
        self.photo: Incoming | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field, self._value = b"", b""
        self._name: str | None = None
        self._text: bytearray | None = None
        self._writing = False
        self._count = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._grow("_field", data[start:end]),
            "on_header_value": lambda data, start, end: self._grow("_value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _grow(self, name: str, data: bytes) -> None:
        value = getattr(self, name) + data
        if len(value) > MAX_FIELD_BYTES:
            raise InputRejected("a multipart header of the upload is too long")
        setattr(self, name, value)

    def _part_begin(self) -> None:
        self._count += 1
        if self._count > MAX_FIELDS:
            raise InputRejected(f"the upload has more than {MAX_FIELDS} form fields")
        self._headers, self._name, self._text, self._writing = {}, None, None, False

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name == PHOTO_FIELD and b"filename" in options:  # a file part, as UploadFile
            if self.photo is not None:
                raise InputRejected("the upload holds more than one photo: send one per request")
            self.photo = self.open_photo()
            self._writing = True
        else:  # a text field (a "photo" sent as text is one, and the photo is then missing)
            self._text = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._writing and self.photo is not None:
            self.photo.write(memoryview(data)[start:end])  # a view: the chunk is not copied
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                raise InputRejected(f"the form field {self._name!r} is too long")

    def _part_end(self) -> None:
        if self._text is not None and self._name:
            self.fields[self._name].append(self._text.decode("utf-8", "replace"))
        self._text, self._writing = None, False


async def read_photo_form(
    request: Request, open_photo: Callable[[], Incoming]
) -> tuple[PhotoForm, SpooledFile]:
    """Stream the body: the photo durably into the spool, the fields validated.

    The photo's file is removed again when anything is wrong with the request; once this
    returns, the caller owns the spooled file.
    """
    reader = _Reader(open_photo)
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    try:
        if not boundary:
            raise RequestValidationError([_missing("photo", "a multipart/form-data body")])
        parser = MultipartParser(boundary, reader.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        form = _validated(reader.fields)
        if reader.photo is None:
            raise RequestValidationError([_missing(PHOTO_FIELD, "the photo file")])
        return form, await run_in_threadpool(reader.photo.finish)  # fsync off the event loop
    except BaseException:
        if reader.photo is not None:
            reader.photo.discard()
        raise


def _validated(fields: dict[str, list[str]]) -> PhotoForm:
    values: dict[str, Any] = {}
    for name, given in fields.items():
        present = [v for v in given if v != ""]  # FastAPI reads an empty form field as absent
        if not present:
            continue
        values[name] = present if name == "categories" else present[-1]
    try:
        return PhotoForm.model_validate(values)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _missing(name: str, what: str) -> dict[str, Any]:
    return {"type": "missing", "loc": ("body", name), "msg": f"Field required: {what}"}
