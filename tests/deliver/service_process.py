"""The capture API as a real subprocess (``python -m capture_api run``), for fault tests.

``ServiceProcess`` starts the service exactly as an operator would, with settings given as
``CAPTURE_*`` environment variables (nothing inherited from the test runner's environment),
waits for ``GET /healthz``, and can stop it (SIGTERM), crash it (SIGKILL) and start it again
on the same port, data folder and database. Its small client helpers speak the public API.

``fresh_postgres_database()`` gives each test its own PostgreSQL database (dropped afterwards).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from tests.managed import ManagedServer, log_tail
from tests.orthanc import free_port

REPO = Path(__file__).resolve().parents[2]
_START_SECONDS = 20.0
_STOP_SECONDS = 20.0

#: The role ``make pg-up`` creates (CREATEDB, with a password: a fresh Debian's pg_hba.conf
#: asks for one over TCP).
PG_ADMIN_URL = os.environ.get(
    "CAPTURE_TEST_PG_URL",
    "postgresql+psycopg://capture_test:capture_test@127.0.0.1:5432/postgres",
)
PG_NOT_RUNNING = "PostgreSQL is not usable for the tests: run make pg-up (make test does)"


# --- PostgreSQL -------------------------------------------------------------------------------


def _libpq(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://``) as a libpq conninfo URL for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database ``capture_<hex>``; yields its SQLAlchemy URL, drops it after."""
    name = f"capture_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise AssertionError(f"{PG_NOT_RUNNING} ({exc})") from exc
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def pg_rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one query on the database at SQLAlchemy ``url`` (a short-lived connection)."""
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        return list(connection.execute(sql, params).fetchall())


# --- the service ------------------------------------------------------------------------------


class ServiceProcess(ManagedServer):
    """One ``capture-api run`` process with the given ``CAPTURE_*`` / ``DATABASE_URL`` settings."""

    def __init__(
        self, settings: Mapping[str, str], *, log_path: Path, port: int | None = None
    ) -> None:
        self.settings = dict(settings)
        self.port = port or free_port()
        self.log_path = Path(log_path)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def environment(self) -> dict[str, str]:
        """os.environ without any capture setting, plus ours (and the repo on PYTHONPATH)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CAPTURE_") and k != "DATABASE_URL"
        }
        paths = [str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.settings)
        return env

    # --- lifecycle -----------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the process without waiting for it (see ``wait_ready``)."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in _reap)
        self._log.write(f"\n--- launch on port {self.port} ---\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "capture_api", "run", "--port", str(self.port)],
            cwd=REPO,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = _START_SECONDS) -> None:
        """Wait for ``GET /healthz`` 200; on failure kill the process and raise with its log."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                last = f"the process exited with code {code}"
                break
            try:
                if self.client.get("/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"the capture API did not start on port {self.port} ({last}):\n{self.log_tail()}"
        )

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown) and wait; SIGKILL if it does not exit in time."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: the process dies on the spot, as in a crash or an OOM kill."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._reap()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self.client.close()

    def _reap(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_path, lines)

    # --- the public API ------------------------------------------------------------------------

    def create_context(self, patient_id: str) -> str:
        response = self.client.post("/api/v1/contexts", json={"patient": {"id": patient_id}})
        assert response.status_code == 201, response.text
        return str(response.json()["context_id"])

    def upload(
        self,
        capture_id: str,
        context_id: str,
        photo: bytes,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        """POST one photo (``client``: another thread's own client, same base URL)."""
        return (client or self.client).post(
            "/api/v1/captures",
            data={"capture_id": capture_id, "context_id": context_id},
            files={"photo": ("photo.jpg", photo, "image/jpeg")},
        )

    def status(self, capture_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/captures/{capture_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_all(
        self, ids: Iterable[str], status: str = "verified", timeout: float = 30.0
    ) -> dict[str, dict[str, Any]]:
        """Poll until every capture has ``status``; fail early if one ends in another state."""
        pending = list(dict.fromkeys(ids))
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        last: dict[str, dict[str, Any]] = {}
        while pending:
            for capture_id in list(pending):
                body = self.status(capture_id)
                last[capture_id] = body
                if body["status"] == status:
                    done[capture_id] = body
                    pending.remove(capture_id)
                elif body["status"] in {"verified", "failed"}:  # final, and not the one we want
                    raise AssertionError(f"{capture_id} ended {body['status']}: {body}")
            if not pending:
                break
            if time.monotonic() > deadline:
                summary = {i: (last[i]["status"], last[i]["retrying"]) for i in pending[:5]}
                raise AssertionError(
                    f"{len(pending)} captures not {status} after {timeout:g} s, e.g. {summary}\n"
                    f"{self.log_tail(20)}"
                )
            time.sleep(0.1)
        return done


def kill_while_encoding(
    api: ServiceProcess,
    capture_id: str,
    photo: bytes,
    row: Callable[[], list[tuple[Any, ...]]],
    patient_id: str = "MRN-KILL",
) -> str:
    """Upload ``photo`` and SIGKILL the API once its row is committed and still ``received``
    (``row``: the capture's (status, lease_owner), read from the database); the context's id.

    Use a photo whose encode takes a while (48 MP): the kill must land inside it.
    """
    from capture_api.store.leases import node_id

    context = api.create_context(patient_id)
    answers: list[object] = []

    def send() -> None:
        with httpx.Client(base_url=api.url, timeout=60) as client:
            try:
                answers.append(api.upload(capture_id, context, photo, client=client))
            except httpx.TransportError as exc:  # the process died under the request
                answers.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = row()
        if rows:
            assert rows[0][0] == "received", f"the encode finished before the kill: {rows}"
            assert str(rows[0][1]).startswith(f"{node_id()}/"), rows  # the upload's claim
            api.kill()
            break
        time.sleep(0.01)
    else:
        raise AssertionError(f"the upload never reached the database\n{api.log_tail()}")
    sender.join(30)
    assert answers and isinstance(answers[0], httpx.TransportError), answers
    return context
