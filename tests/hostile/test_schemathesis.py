"""Schemathesis over every operation of the live API: zero 5xx.

The schema is the app's own OpenAPI document as the code stands (what ``make openapi`` exports
to ``openapi/openapi.json``), so a route added since the last export is fuzzed too. The
requests go over HTTP to the package's integration-mode process (no EHR) on PostgreSQL with a
real Orthanc; a generated ``context_id`` path parameter made of letters and digits is replaced
by a real context with a verified photo, so priors, the timeline and the thumbnails do real
work instead of stopping at 404 (hostile ids stay as generated); a plain ``capture_id`` is
that photo's, so its status, measurements, calibration, image and snap do real work too. Only
one check runs: ``not_a_server_error``; a 4xx for a generated request is the right answer, a
5xx never is.

Bounded and reproducible: at most ``MAX_EXAMPLES`` per operation, derandomized (Hypothesis
derives its examples from the test, not from a random seed), no deadline per example.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from capture_api.api.app import create_app
from capture_api.config import Settings
from tests.conftest import phone_jpeg
from tests.deliver.service_process import ServiceProcess
from tests.hostile.client import upload

MAX_EXAMPLES = 50


@pytest.fixture(scope="module")
def fuzzed_context(api: ServiceProcess) -> str:
    """A context with one verified photo: the value every ``context_id`` path parameter gets."""
    context = api.create_context("FUZZ-1")
    fields = {"capture_id": "fuzz-seed", "context_id": context, "body_site": "14975008"}
    fields["laterality"] = "L"
    sent = upload(api, phone_jpeg(128, 96, seed=5), fields)
    assert sent.status_code == 202, sent.text
    api.wait_all(["fuzz-seed"], timeout=30)
    return context


def _app_schema() -> dict[str, Any]:
    """The OpenAPI document of the code as it is now (what ``make openapi`` would export)."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), worker_enabled=False, ehrs=[])
        return create_app(settings).openapi()


schema = schemathesis.openapi.from_dict(_app_schema())
_PLAIN = re.compile(r"^[A-Za-z0-9]*$")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_with_a_server_error(
    case: Any, api: ServiceProcess, fuzzed_context: str
) -> None:
    parameters = case.path_parameters or {}
    if _PLAIN.match(str(parameters.get("context_id", "-"))):  # hostile ids stay as generated
        parameters["context_id"] = fuzzed_context
    if _PLAIN.match(str(parameters.get("capture_id", "-"))):  # the seeded photo: real work
        parameters["capture_id"] = "fuzz-seed"
    case.call_and_validate(base_url=api.url, checks=[not_a_server_error], timeout=30)


def test_the_service_logged_no_unexpected_error(api: ServiceProcess) -> None:
    """Nothing thrown at the service in this package (corpus, injections, fuzzing) made it
    log a traceback or an error (a dropped audit event is an ERROR too)."""
    lines = api.log_path.read_text(errors="replace").splitlines()
    errors = [line for line in lines if " ERROR " in line or "Traceback" in line]
    assert errors == [], "\n".join(errors[:20])
