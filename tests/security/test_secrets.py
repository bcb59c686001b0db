"""Secrets come only from the environment and never come back out: not in repr, JSON, errors
or the service's log."""

from __future__ import annotations

import json
import logging
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.engine import make_url

from capture_api.api.app import create_app
from capture_api.config import EhrRegistration, Settings
from tests.deliver.service_process import ServiceProcess, fresh_postgres_database
from tests.orthanc import free_port

#: Distinctive values, so finding one anywhere is a leak and nothing else.
SECRETS = {
    "CAPTURE_SECRET_KEY": "csrf-key-4f1b9c7e2a8d4e6fb3c5a7d9e1f2a4b6",
    "CAPTURE_ARCHIVE_PASSWORD": "archive-pw-8c2e4a6f",
    "CAPTURE_ARCHIVE_TOKEN": "archive-token-1d3f5b7a",
    "CAPTURE_ARCHIVE_CLIENT_SECRET": "archive-client-secret-9e7c5a3b",
    "client_secret": "ehr-client-secret-6a4c2e0f",
    "database_password": "pg-password-3b5d7f9a",
}
#: Field names that hold a secret (checked against every settings model, present and future).
SECRET_NAMES = ("password", "secret", "token", "secret_key", "database_url")
NOT_SECRETS = {"archive_token_url"}  # a URL naming the token endpoint, not a token


def _ehr_json(**extra: str) -> str:
    return json.dumps(
        [
            {
                "iss": f"http://127.0.0.1:{free_port()}/fhir",
                "client_id": "capture",
                "auth_method": "client_secret_basic",
                "client_secret": SECRETS["client_secret"],
                **extra,
            }
        ]
    )


def _settings_with_every_secret() -> Settings:
    return Settings(
        secret_key=SecretStr(SECRETS["CAPTURE_SECRET_KEY"]),
        archive_password=SecretStr(SECRETS["CAPTURE_ARCHIVE_PASSWORD"]),
        archive_token=SecretStr(SECRETS["CAPTURE_ARCHIVE_TOKEN"]),
        archive_client_secret=SecretStr(SECRETS["CAPTURE_ARCHIVE_CLIENT_SECRET"]),
        database_url=SecretStr(
            f"postgresql+psycopg://capture:{SECRETS['database_password']}@db/capture"
        ),
        ehrs=json.loads(_ehr_json()),
    )


def assert_no_secret(text: str) -> None:
    leaked = [name for name, value in SECRETS.items() if value in text]
    assert not leaked, f"{leaked} leaked into: {text[:2000]}"


def test_settings_never_show_a_secret() -> None:
    settings = _settings_with_every_secret()
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.ehrs)):
        assert_no_secret(shown)
    assert json.loads(settings.model_dump_json())["archive_password"] == "**********"
    # ...while the code that needs them can still read them.
    assert settings.sqlalchemy_url.endswith(f":{SECRETS['database_password']}@db/capture")
    client_secret = settings.ehrs[0].client_secret
    assert client_secret is not None
    assert client_secret.get_secret_value() == SECRETS["client_secret"]


@pytest.mark.parametrize("model", [Settings, EhrRegistration])
def test_every_secret_is_a_secret_str_with_no_default(model: type[BaseModel]) -> None:
    found = []
    for name, field in model.model_fields.items():
        if name in NOT_SECRETS or not any(part in name for part in SECRET_NAMES):
            continue
        found.append(name)
        annotation = field.annotation
        members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
        assert annotation is SecretStr or SecretStr in members, f"{name} is not a SecretStr"
        assert field.default is None, f"{name} has a default value"
    assert found, "no secret fields found: has the naming changed?"


def test_a_bad_setting_does_not_echo_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTURE_SECRET_KEY", "short-" + SECRETS["CAPTURE_ARCHIVE_PASSWORD"])
    monkeypatch.setenv("CAPTURE_EHRS", _ehr_json(auth_method="client_secret_sideways"))
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "CAPTURE_SECRET_KEY must be at least 32 characters" in message
    assert "ehrs" in message
    assert_no_secret(message)


def test_a_missing_secret_key_is_warned_about_with_ehrs(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with caplog.at_level(logging.WARNING, logger="capture.security"):
        create_app(Settings(data_dir=tmp_path, ehrs=json.loads(_ehr_json())))
    assert "CAPTURE_SECRET_KEY is not set" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="capture.security"):
        create_app(
            Settings(
                data_dir=tmp_path, ehrs=json.loads(_ehr_json()), secret_key=SecretStr("s" * 32)
            )
        )
    assert caplog.text == ""


def _secret_environment(database_url: str, data_dir: Path) -> dict[str, str]:
    url = make_url(database_url).set(password=SECRETS["database_password"])
    return {
        "CAPTURE_DATA_DIR": str(data_dir),
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "CAPTURE_SECRET_KEY": SECRETS["CAPTURE_SECRET_KEY"],
        "CAPTURE_DICOMWEB_URL": f"http://127.0.0.1:{free_port()}/dicom-web",
        "CAPTURE_ARCHIVE_AUTH": "basic",
        "CAPTURE_ARCHIVE_USERNAME": "capture",
        "CAPTURE_ARCHIVE_PASSWORD": SECRETS["CAPTURE_ARCHIVE_PASSWORD"],
        "CAPTURE_ARCHIVE_TOKEN": SECRETS["CAPTURE_ARCHIVE_TOKEN"],
        "CAPTURE_ARCHIVE_CLIENT_SECRET": SECRETS["CAPTURE_ARCHIVE_CLIENT_SECRET"],
        "CAPTURE_EHRS": _ehr_json(),
        "CAPTURE_COOKIE_SECURE": "false",
    }


def test_the_service_log_holds_no_secret(tmp_path: Path) -> None:
    """``capture-api run`` on PostgreSQL (password in DATABASE_URL; trust auth ignores it)."""
    log = tmp_path / "service.log"
    with fresh_postgres_database() as database_url:
        env = _secret_environment(database_url, tmp_path / "data")
        with ServiceProcess(env, log_path=log) as service:
            client = service.client
            assert client.get("/healthz").status_code == 200
            assert client.get("/api/v1/session").status_code == 401
            iss = json.loads(env["CAPTURE_EHRS"])[0]["iss"]
            failed = client.get("/launch", params={"iss": iss, "launch": "x"})
            assert failed.status_code == 502  # the EHR is unreachable: an error path runs
    text = log.read_text()
    assert "Application startup complete" in text  # the log was written and read
    assert_no_secret(text)


def test_a_refused_start_explains_itself_without_the_secret(tmp_path: Path) -> None:
    env = {
        "CAPTURE_DATA_DIR": str(tmp_path / "data"),
        "CAPTURE_SECRET_KEY": "short-" + SECRETS["CAPTURE_ARCHIVE_PASSWORD"],
        "CAPTURE_EHRS": _ehr_json(auth_method="client_secret_sideways"),
    }
    service = ServiceProcess(env, log_path=tmp_path / "refused.log")
    with pytest.raises(RuntimeError, match="exited with code"):
        service.start()
    service.close()
    text = (tmp_path / "refused.log").read_text()
    assert "CAPTURE_SECRET_KEY must be at least 32 characters" in text
    assert_no_secret(text)
