"""``make test`` brings its own PostgreSQL up on a fresh Debian (issue 12).

It used to assume a server was running with trust authentication. A fresh Debian install has a
cluster that is stopped (no systemd in a container) and a pg_hba.conf that asks for a password
over TCP. This test makes exactly such a cluster beside the machine's own (Debian's
``pg_createcluster``, on a free port, left stopped), runs ``make pg-up`` against it as the
Makefile's own variables allow, and connects the way the tests do: the role and password of
``PG_ADMIN_URL``, over TCP.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REPO
from tests.deliver.service_process import PG_ADMIN_URL
from tests.orthanc import free_port


def _make(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """Run make as a person at a shell would: not as a sub-make of ``make test``.

    Under ``make test`` the environment carries MAKELEVEL and MAKEFLAGS, and a nested make then
    prints "Entering directory" lines that a person running ``make pg-up`` never sees.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}
    return subprocess.run(
        ["make", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env
    )


def _version() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


@pytest.fixture
def stopped_fresh_cluster() -> Iterator[tuple[str, int]]:
    name, port, version = f"t{uuid.uuid4().hex[:8]}", free_port(), _version()
    subprocess.run(
        ["pg_createcluster", version, name, "--port", str(port)],
        check=True,
        capture_output=True,
    )
    try:
        yield name, port
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True)


def test_make_pg_up_starts_a_fresh_debian_cluster_and_creates_the_tests_role(
    stopped_fresh_cluster: tuple[str, int],
) -> None:
    name, port = stopped_fresh_cluster
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql", port=port)
    with pytest.raises(psycopg.OperationalError):  # not running yet
        psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3).close()

    result = _make("pg-up", f"PG_PORT={port}", f"PG_CLUSTER={name}", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "starting PostgreSQL" in result.stdout and "creating the PostgreSQL role" in result.stdout
    )

    conninfo = url.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, connect_timeout=5) as connection:
        row = connection.execute(
            "SELECT current_user, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == ("capture_test", True)
    with pytest.raises(psycopg.OperationalError, match="password"):  # Debian's default: scram
        psycopg.connect(f"postgresql://{url.username}@127.0.0.1:{port}/postgres").close()

    again = _make("pg-up", f"PG_PORT={port}", f"PG_CLUSTER={name}", timeout=60)
    assert again.returncode == 0 and again.stdout.strip() == "", again.stdout  # idempotent
