"""The logging rules one by one: what ``PhiFilter``, ``PhiSafeFormatter`` and the access log
keep out of a log line, and what they keep in it. The end-to-end proof over a full run is
``tests/hostile/test_no_phi_in_logs.py``."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, Form, HTTPException, Response
from fastapi.testclient import TestClient

from capture_api.api.request_log import RequestLog
from capture_api.logging_config import (
    ACCESS_LOGGER,
    QUERY_REMOVED,
    WITHHELD,
    PhiFilter,
    PhiSafeFormatter,
    scrub,
)
from tests.deliver.service_process import REPO

# --- scrub -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "GET /launch/callback?code=abc&state=xyz HTTP/1.1",
            f"GET /launch/callback{QUERY_REMOVED} HTTP/1.1",
        ),
        (
            'GET http://ehr/fhir/Patient?identifier=urn:oid:1|100001 "HTTP/1.1 200 OK"',
            f'GET http://ehr/fhir/Patient{QUERY_REMOVED} "HTTP/1.1 200 OK"',
        ),
        ("Authorization: Bearer eyJhbGci.e30.sig-_x", "Authorization: Bearer [removed]"),
        ("Authorization: Basic dTpw", "Authorization: Basic [removed]"),
        (
            "cookie: capture_session=AbC123; theme=dark",
            "cookie: capture_session=[removed]; theme=dark",
        ),
        (
            '{"access_token": "tok", "expires_in": 60}',
            '{"access_token": "[removed]", "expires_in": 60}',
        ),
        ("refresh_token=r1&x=1", "refresh_token=[removed]&x=1"),
    ],
    ids=["callback", "fhir-search", "bearer", "basic", "cookie", "token-json", "token-form"],
)
def test_scrub_removes_query_strings_and_credentials(line: str, expected: str) -> None:
    assert scrub(line) == expected
    assert scrub(expected) == expected  # idempotent: a second filter changes nothing


@pytest.mark.parametrize(
    "line",
    ["is the archive up? yes", "the state machine moved", "archive unavailable (attempt 3)"],
)
def test_scrub_leaves_ordinary_sentences_alone(line: str) -> None:
    assert scrub(line) == line


# --- the filter and the formatter ---------------------------------------------------------------


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args or None, exc_info)


def test_the_filter_scrubs_the_formatted_message_not_only_the_format() -> None:
    record = _record("%s %s", "GET", "/api/v1/body-sites?q=Müller")
    assert PhiFilter().filter(record) is True
    assert record.getMessage() == f"GET /api/v1/body-sites{QUERY_REMOVED}"
    assert record.args is None


def test_the_filter_keeps_a_line_whose_arguments_do_not_fit_the_format() -> None:
    record = _record("%d captures", "Müller")
    assert PhiFilter().filter(record) is True
    assert "Müller" not in record.getMessage()
    assert "captures" in record.getMessage()


PHI = ("Müller", "100001", "1950-03-14", "Jürgen")  # values, never in the source lines below


def _raise_chained() -> None:
    try:
        raise ValueError(f"patient {PHI[0]}, MRN {PHI[1]}, born {PHI[2]}")
    except ValueError as exc:
        raise RuntimeError(f"could not store {PHI[3]!r}") from exc


def test_the_formatter_keeps_the_stack_and_types_but_withholds_messages() -> None:
    with pytest.raises(RuntimeError) as info:
        _raise_chained()
    text = PhiSafeFormatter("%(message)s").format(_record("store failed", exc=info.value))
    assert "store failed" in text
    assert "builtins.ValueError: " + WITHHELD in text
    assert "builtins.RuntimeError: " + WITHHELD in text
    assert "_raise_chained" in text and __file__ in text  # where it happened
    for value in PHI:
        assert value not in text


def test_run_configuration_applies_to_every_logger_in_a_fresh_process() -> None:
    """``logging_config()`` as ``capture-api run`` installs it: httpx quiet, query cut, INFO."""
    script = (
        "import logging, logging.config\n"
        "from capture_api.logging_config import logging_config\n"
        "logging.config.dictConfig(logging_config())\n"
        "logging.getLogger('capture.outbox').info('GET /x?mrn=100001 done')\n"
        "logging.getLogger('httpx').info('HTTP Request: GET http://ehr/Patient/pat-1')\n"
        "logging.getLogger('uvicorn.error').info('Started server process')\n"
        "try:\n    {}['Müller']\nexcept KeyError:\n"
        "    logging.getLogger('capture.x').exception('lookup failed')\n"
        "from capture_api.logging_config import capture_warnings\n"
        "capture_warnings()\n"
        "import warnings\n"
        "warnings.warn('Invalid value for VR PN: Müller^Jürgen', UserWarning)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    err = result.stderr
    assert f"INFO capture.outbox: GET /x{QUERY_REMOVED} done" in err
    assert "INFO uvicorn.error: Started server process" in err
    assert "pat-1" not in err and "100001" not in err and "Müller" not in err
    assert "ERROR capture.x: lookup failed" in err and f"builtins.KeyError: {WITHHELD}" in err
    assert re.search(rf"WARNING py\.warnings: <string>:\d+: UserWarning {re.escape(WITHHELD)}", err)


# --- the access log -------------------------------------------------------------------------


@pytest.fixture
def app_client() -> Iterator[TestClient]:
    router = APIRouter()

    @router.get("/captures/{capture_id}")
    def get_capture(capture_id: str) -> dict[str, str]:
        if capture_id == "missing":
            raise HTTPException(404, "no such capture")
        return {"capture_id": capture_id}

    @router.post("/captures", status_code=202)
    def post_capture(capture_id: Annotated[str, Form()], response: Response) -> dict[str, str]:
        response.headers["Location"] = f"/api/v1/captures/{capture_id}"
        return {}

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("Müller")

    app = FastAPI()
    app.include_router(router, prefix="/api/v1")
    app.add_middleware(RequestLog)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]


def test_the_access_log_has_route_status_duration_and_capture_id(
    app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    app_client.get("/api/v1/captures/cap-7?mrn=100001")
    app_client.post("/api/v1/captures", data={"capture_id": "cap-8"})
    app_client.get("/api/v1/captures/missing")
    app_client.get("/api/v1/boom")
    app_client.get("/nowhere/Müller?q=1")
    lines = _access_lines(caplog)
    assert len(lines) == 5, lines
    assert lines[0].startswith("GET /api/v1/captures/{capture_id} 200 ")
    assert lines[0].endswith(" ms capture=cap-7")
    assert lines[1].startswith("POST /api/v1/captures 202 ") and lines[1].endswith("capture=cap-8")
    assert lines[2].startswith("GET /api/v1/captures/{capture_id} 404 ")
    assert "capture=" not in lines[2]  # a refused path value is whatever was sent
    assert lines[3].startswith("GET /api/v1/boom 500 ")
    assert lines[4].startswith("GET (no route) 404 ")
    assert not any("100001" in line or "Müller" in line or "?" in line for line in lines)
