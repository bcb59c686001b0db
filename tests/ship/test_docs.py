"""The deployment and registration docs name only things that exist: settings the service
reads, metrics it exports, routes it serves, and an nginx body limit a 20 MB photo fits in.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from capture_api.api.app import create_app
from capture_api.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
DEPLOYMENT = (DOCS / "deployment.md").read_text()
SHIPPED = ("deployment.md", "smart-registration.md", "conformance.md")
#: Variables read by something other than ``Settings``.
OTHER_VARIABLES = {"DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "SSL_CERT_FILE"}
PHOTO_BYTES = 20 * 1024 * 1024
VARIABLE = r"\b(?:CAPTURE|DATABASE|PROMETHEUS|SSL)_[A-Z][A-Z0-9_]*[A-Z0-9]"


@pytest.mark.parametrize("name", SHIPPED)
def test_every_variable_named_is_read_by_the_service(name: str) -> None:
    fields = {f"CAPTURE_{field.upper()}" for field in Settings.model_fields}
    named = set(re.findall(VARIABLE, (DOCS / name).read_text()))
    unknown = named - fields - OTHER_VARIABLES
    assert not unknown, f"{name} names settings that do not exist: {sorted(unknown)}"


def test_every_metric_named_is_exported(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, worker_enabled=False))) as client:
        text = client.get("/metrics").text
    exported = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        exported.update(sample.name for sample in family.samples)
    named = set(re.findall(r"`(capture_[a-z_]+)[`{]", DEPLOYMENT))
    assert len(named) >= 8
    base = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in named}
    assert not base - exported, (
        f"deployment.md names metrics that are not exported: {base - exported}"
    )


def test_nginx_body_limit_fits_a_20_mb_photo_and_its_envelope() -> None:
    (limit,) = re.findall(r"client_max_body_size\s+(\d+)m;", DEPLOYMENT)
    assert int(limit) * 1024 * 1024 > PHOTO_BYTES + 256 * 1024
    (upload,) = re.findall(r"`CAPTURE_MAX_UPLOAD_BYTES` \| `(\d+)`", DEPLOYMENT)
    assert int(upload) == PHOTO_BYTES < int(limit) * 1024 * 1024


def test_the_operations_routes_named_exist(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, worker_enabled=False))) as client:
        for route in ("/healthz", "/readyz", "/metrics"):
            assert f"`{route}`" in DEPLOYMENT
            assert client.get(route).status_code == 200, route
