"""docker-compose.yml holds together: the three services wired to each other, settings that
``Settings`` accepts, health checks behind every ``depends_on``, and nothing published beyond
loopback. (No Docker engine here: the file is read with PyYAML and checked piece by piece.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from sqlalchemy.engine import make_url

from capture_api.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CAPTURE: dict[str, Any] = SERVICES["capture"]
ENV: dict[str, str] = CAPTURE["environment"]


def test_three_services_capture_postgres_and_orthanc() -> None:
    assert set(SERVICES) == {"capture", "db", "orthanc"}
    assert CAPTURE["build"] == "."
    assert SERVICES["db"]["image"] == "postgres:16"
    assert SERVICES["orthanc"]["image"].startswith("orthancteam/orthanc:")
    assert SERVICES["orthanc"]["environment"]["DICOM_WEB_PLUGIN_ENABLED"] == "true"


def test_every_capture_variable_is_a_setting_and_its_value_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = {f"CAPTURE_{name.upper()}" for name in Settings.model_fields} | {"DATABASE_URL"}
    assert set(ENV) <= fields, set(ENV) - fields
    for key in list(os.environ):
        if key.startswith("CAPTURE_") or key == "DATABASE_URL":
            monkeypatch.delenv(key)
    for key, value in ENV.items():
        assert isinstance(value, str), f"{key}: quote it, compose passes strings"
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.dicomweb_url and settings.database_url
    assert settings.archive_auth.value == "basic"


def test_the_service_addresses_and_credentials_match_each_other() -> None:
    database = make_url(ENV["DATABASE_URL"])
    db_env = SERVICES["db"]["environment"]
    assert (database.host, database.port) == ("db", 5432)
    assert database.username == db_env["POSTGRES_USER"]
    assert database.password == db_env["POSTGRES_PASSWORD"]
    assert database.database == db_env["POSTGRES_DB"]

    archive = urlsplit(ENV["CAPTURE_DICOMWEB_URL"])
    assert (archive.hostname, archive.port, archive.path) == ("orthanc", 8042, "/dicom-web")
    users = json.loads(SERVICES["orthanc"]["environment"]["ORTHANC__REGISTERED_USERS"])
    assert users[ENV["CAPTURE_ARCHIVE_USERNAME"]] == ENV["CAPTURE_ARCHIVE_PASSWORD"]


def test_dependencies_wait_for_health_and_every_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert CAPTURE["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "orthanc": {"condition": "service_healthy"},
    }
    assert any("/readyz" in part for part in CAPTURE["healthcheck"]["test"])


def test_volumes_are_declared_and_capture_keeps_its_data_where_the_image_says() -> None:
    declared = set(COMPOSE["volumes"])
    mounts = [m.split(":") for s in SERVICES.values() for m in s.get("volumes", [])]
    assert {source for source, *_ in mounts} == declared
    data_dir = DockerfileParser(path=str(REPO / "Dockerfile")).envs["CAPTURE_DATA_DIR"]
    assert [target for _, target, *_ in (m.split(":") for m in CAPTURE["volumes"])] == [data_dir]


def test_published_ports_are_loopback_only() -> None:
    published = [p for s in SERVICES.values() for p in s.get("ports", [])]
    assert published
    assert all(str(p).startswith("127.0.0.1:") for p in published), published
