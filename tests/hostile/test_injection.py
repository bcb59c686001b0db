"""Injection strings in every text field: refused with a 4xx, or stored inert.

Each string goes into each text field of the upload form (note, view, operator, device,
capture_id, context_id) and of the context JSON body. The answer is never a 5xx. A refusal
names the field; an accepted value reaches the archived DICOM object exactly as sent (no
template evaluated, no path followed, no SQL run), the object passes dciodvfy, and the
database still has its tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest

from tests.conftest import dciodvfy_errors, phone_jpeg
from tests.deliver.service_process import ServiceProcess, pg_rows
from tests.hostile.client import archived_bytes, assert_actionable, upload
from tests.hostile.corpus import INJECTIONS
from tests.orthanc import OrthancServer

#: Upload form field -> the DICOM attribute that carries it (None: not written as text).
FORM_FIELDS: dict[str, str | None] = {
    "note": "ImageComments",
    "view": "AcquisitionContextDescription",
    "operator": "OperatorsName",
    "device": "StationName",
    "capture_id": None,
    "context_id": None,
}

#: Context body field (a path into the JSON) -> the DICOM attribute that carries it.
CONTEXT_FIELDS: dict[tuple[str, ...], str] = {
    ("patient", "id"): "PatientID",
    ("patient", "name", "family"): "PatientName",
    ("patient", "name", "given"): "PatientName",
    ("patient", "issuer", "namespace"): "IssuerOfPatientID",
    ("encounter", "admission_id"): "AdmissionID",
    ("encounter", "description"): "StudyDescription",
    ("encounter", "accession_number"): "AccessionNumber",
    ("encounter", "unit"): "",  # reports only
}
#: How a refusal names a field when not by its form name.
_WORDS = {"operator": "name", "family": "name", "given": "name", "id": "patient"}
SH_MAX = 16  # Station Name is SH: a longer device label is not sent at all


def _params(fields: list[Any]) -> list[Any]:
    return [
        pytest.param(
            field, key, id=f"{'.'.join(field) if isinstance(field, tuple) else field}-{key}"
        )
        for field in fields
        for key in INJECTIONS
    ]


@pytest.fixture(scope="module")
def context(api: ServiceProcess) -> str:
    return api.create_context("INJECT-1")


def _refused_or_accepted(response: Any, field: str, value: str) -> bool:
    """True when accepted (201/202); a refusal must be a 4xx naming ``field``."""
    assert response.status_code < 500, response.text
    if response.status_code in (201, 202):
        return True
    assert response.status_code in (404, 422), response.text
    detail = assert_actionable(response, response.status_code, echoed=value).lower()
    if response.status_code == 404:
        assert "context" in detail, detail
    else:
        names = {field, field.replace("_", " "), _WORDS.get(field, field)}
        assert any(name.lower() in detail for name in names), (names, detail)
    return False


def _archived(api: ServiceProcess, orthanc: OrthancServer, body: Any, tmp: Path) -> Any:
    api.wait_all([body["capture_id"]], timeout=30)
    path = tmp / "stored.dcm"
    path.write_bytes(archived_bytes(orthanc, body["sop_instance_uid"]))
    assert dciodvfy_errors(path) == []
    return pydicom.dcmread(path)


@pytest.mark.parametrize(("field", "key"), _params(list(FORM_FIELDS)))
def test_form_field(
    api: ServiceProcess,
    orthanc: OrthancServer,
    context: str,
    tmp_path: Path,
    field: str,
    key: str,
) -> None:
    value = INJECTIONS[key]
    fields = {"capture_id": f"inject-{field}-{key}", "context_id": context, field: value}
    seed = sum(map(ord, fields["capture_id"]))
    response = upload(api, phone_jpeg(64, 48, seed=seed), fields)
    if not _refused_or_accepted(response, field, value):
        return
    assert field not in ("capture_id", "context_id"), "an id accepted an injection string"
    ds = _archived(api, orthanc, response.json(), tmp_path)
    keyword = FORM_FIELDS[field]
    assert keyword is not None
    if field == "device" and len(value) > SH_MAX:
        assert keyword not in ds
    else:
        assert str(ds[keyword].value) == value


@pytest.mark.parametrize(("field", "key"), _params(list(CONTEXT_FIELDS)))
def test_context_field(
    api: ServiceProcess,
    orthanc: OrthancServer,
    tmp_path: Path,
    field: tuple[str, ...],
    key: str,
) -> None:
    value = INJECTIONS[key]
    body: dict[str, Any] = {"patient": {"id": "INJECT-2", "name": {"family": "Doe"}}}
    node = body
    for part in field[:-1]:
        node = node.setdefault(part, {})
    node[field[-1]] = value
    response = api.client.post("/api/v1/contexts", json=body)
    if not _refused_or_accepted(response, field[-1], value):
        return
    capture_id = f"inject-ctx-{'-'.join(field)}-{key}"
    photo = phone_jpeg(64, 48, seed=sum(map(ord, capture_id)))
    sent = upload(
        api, photo, {"capture_id": capture_id, "context_id": response.json()["context_id"]}
    )
    assert sent.status_code == 202, f"the context was accepted, its photos must be: {sent.text}"
    keyword = CONTEXT_FIELDS[field]
    ds = _archived(api, orthanc, sent.json(), tmp_path)
    if keyword == "PatientName":
        assert value in str(ds.PatientName).split("^")
    elif keyword:
        assert str(ds[keyword].value) == value


def test_the_database_still_has_its_tables_and_rows(
    api: ServiceProcess, api_database: str, context: str
) -> None:
    fields = {"capture_id": "inject-last", "context_id": context, "note": INJECTIONS["sql"]}
    assert upload(api, phone_jpeg(64, 48, seed=404), fields).status_code == 202
    tables = {r[0] for r in pg_rows(api_database, "SELECT tablename FROM pg_tables")}
    assert {"capture", "encounter_context", "audit_event"} <= tables
    assert pg_rows(api_database, "SELECT count(*) FROM capture")[0][0] > 0
    listed = api.client.get("/api/v1/captures", params={"context_id": context})
    assert listed.status_code == 200 and "inject-last" in {c["capture_id"] for c in listed.json()}
