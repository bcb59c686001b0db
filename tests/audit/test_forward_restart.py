"""The ATNA forwarding queue survives a restart (issue 14, item 3).

Until now the messages waiting for a collector that was down lived only in memory: a restart,
a crash or an OOM kill lost them (the rows stayed in the database, but the repository never
heard of them). Now every forwarded row is also queued in ``audit_forward``, in the row's own
transaction, and leaves it only once the collector took it: a process that starts sends what
is still there. A real ``capture-api run`` is killed with SIGKILL here, as a crash would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from capture_api.store import audit_rows
from capture_api.store.db import make_engine
from tests.audit.collectors import TcpCollector
from tests.audit.conftest import audit_rows as rows_of
from tests.audit.conftest import engine_of, open_context, wait_until
from tests.audit.test_syslog import app_with
from tests.deliver.service_process import ServiceProcess
from tests.orthanc import free_port

__all__ = ["app_with"]  # the syslog tests' app factory


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'capture.db'}")
    yield engine
    engine.dispose()


def _service(tmp_path: Path, collector_port: int) -> ServiceProcess:
    settings = {
        "CAPTURE_DATA_DIR": str(tmp_path / "data"),
        "CAPTURE_AUDIT_SYSLOG_URL": f"tcp://127.0.0.1:{collector_port}",
        "CAPTURE_WORKER_ENABLED": "false",
    }
    return ServiceProcess(settings, log_path=tmp_path / "api.log")


def _request_ids(messages: list[Any]) -> list[str]:
    ids = []
    for message in messages:
        for entity in message.xml.iter("ParticipantObjectIdentification"):
            ids.append(entity.attrib.get("ParticipantObjectID", ""))
    return ids


@pytest.mark.parametrize("ending", ["kill", "stop"])
def test_what_was_not_sent_is_replayed_after_a_restart(
    tmp_path: Path, database: Engine, ending: str
) -> None:
    port = free_port()
    service = _service(tmp_path, port)
    with service:
        for n in range(3):
            service.create_context(f"MRN-FWD-{n}")
        wait_until(lambda: audit_rows.pending_count(database) >= 3, what="three queued rows")
        if ending == "kill":
            service.kill()  # SIGKILL: the in-memory queue is gone with the process
        else:
            service.stop()  # SIGTERM: 2 s to flush into a collector that is still down
        stored = audit_rows.pending_count(database)
        assert stored >= 3  # still queued in the database
        with TcpCollector(port) as collector:
            service.start()
            messages = collector.wait_for(stored, timeout=30)
            wait_until(lambda: audit_rows.pending_count(database) == 0, what="queue emptied")
    patients = {i for i in _request_ids(messages) if i.startswith("MRN-FWD-")}
    assert patients == {"MRN-FWD-0", "MRN-FWD-1", "MRN-FWD-2"}
    for message in messages:
        assert message.event_id == "110110"


def test_a_full_memory_queue_loses_nothing(app_with: Any) -> None:
    """Two messages fit in memory; five are written while the collector is down."""
    port = free_port()
    client = app_with(audit_syslog_url=f"tcp://127.0.0.1:{port}", audit_queue_size=2)
    context_id = open_context(client)
    for _ in range(4):
        assert client.get(f"/api/v1/contexts/{context_id}").status_code == 200
    engine = engine_of(client)
    assert len(rows_of(client)) == 5
    assert audit_rows.pending_count(engine) == 5
    with TcpCollector(port) as collector:
        messages = collector.wait_for(5, timeout=30)
        wait_until(lambda: audit_rows.pending_count(engine) == 0, what="queue emptied")
    assert len(messages) >= 5
    time.sleep(0.2)
    assert audit_rows.pending_count(engine) == 0
