"""At volume, a photo costs what it costs on an empty database (issue 13: volume is correctness).

A database that has served a clinic for a while holds many contexts, photos and audit events;
the statements one photo makes (upload, encode, STOW-RS, verification, the phone's status,
list and event stream) must each touch a bounded number of rows, not every photo ever taken.
An index SQLite does not pick looks fine on an empty test database and costs a full table
scan per statement at volume: 100,000 photos made one upload cost 35 ms more CPU (the count
of a context's photos), and every open phone's event stream 37 ms every 0.25 s.

The oracle is SQLite's own virtual machine: each statement the service ran in the flow is run
again (in a transaction rolled back) on the same database with a progress handler counting VM
instructions. No timing: a full scan of 100,000 rows is millions of instructions, an indexed
lookup a few hundred.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from bench.volume import fill
from capture_api.api.app import create_app
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.deliver.outbox import OutboxPolicy
from capture_api.notify.worker import NotifyWorker
from capture_api.store import captures, rejections
from capture_api.store.db import make_engine
from capture_api.store.records import utcnow
from tests.audit.conftest import settings_for
from tests.conftest import phone_jpeg
from tests.correct.conftest import FOREARM, engine_of, open_context, send_photo, wait_status
from tests.orthanc import OrthancServer

#: A busy clinic's year or two: 4,000 encounters of 25 photos, 4 audit events per photo.
CONTEXTS, PER_CONTEXT, AUDIT_PER_PHOTO = 4_000, 25, 4
#: VM instructions one statement may take (a lookup of a context's 25 rows: a few thousand;
#: a scan of the 100,000 photos: millions).
MOST_STEPS = 20_000
STEP = 10  # the progress handler's granularity (instructions per call)
#: The EHR the volume's contexts were opened from (its notifier made their chart rows).
ISS = "https://ehr.example/fhir"
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with OrthancServer(tmp_path / "orthanc") as orthanc:
        settings = settings_for(tmp_path / "capture", dicomweb_url=orthanc.base_url)
        with TestClient(create_app(settings)) as c:
            yield c


def _steps(db: sqlite3.Connection, statement: str, parameters: Any) -> int:
    """VM instructions of one statement, its writes rolled back."""
    counted = [0]

    def tick() -> int:
        counted[0] += STEP
        return 0

    db.set_progress_handler(tick, STEP)
    db.execute("BEGIN")
    try:
        db.execute(statement, parameters).fetchall()
    except sqlite3.IntegrityError:
        pass  # an INSERT of a row that is there already: its index lookups ran
    finally:
        db.execute("ROLLBACK")
        db.set_progress_handler(None, STEP)
    return counted[0]


def _follow(client: TestClient, context: str, heard: list[str]) -> None:
    """Read the context's event stream until both photos were said verified."""
    with client.stream("GET", "/api/v1/captures/events", params={"context_id": context}) as sse:
        for line in sse.iter_lines():
            said = json.loads(line[5:]) if line.startswith("data:") else {}
            if said.get("status") == "verified" and said["capture_id"] not in heard:
                heard.append(said["capture_id"])
            if len(heard) == 2:
                return


def _plan(db: sqlite3.Connection, statement: str, parameters: Any) -> str:
    rows = db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    return "; ".join(str(row[-1]) for row in rows)


def test_every_statement_of_a_photo_stays_bounded_with_100000_photos_held(
    client: TestClient, tmp_path: Path
) -> None:
    first = open_context(client, {"id": "MRN-VOLUME-0"})
    send_photo(client, first, "volume-template")
    database = tmp_path / "capture" / "capture.db"
    fill(database, CONTEXTS, PER_CONTEXT, AUDIT_PER_PHOTO, iss=ISS)

    ran: list[tuple[str, Any]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        ran.append((statement, parameters[0] if many else parameters))  # one row of many

    engine: Engine = engine_of(client)
    event.listen(engine, "before_cursor_execute", record)
    try:
        context = open_context(client, {"id": "MRN-VOLUME-1"})
        heard: list[str] = []
        follower = threading.Thread(target=_follow, args=(client, context, heard), daemon=True)
        follower.start()  # the phone's event stream, open while its photos go
        for i in range(2):
            answer = client.post(
                "/api/v1/captures",
                data={"capture_id": f"volume-new-{i}", "context_id": context},
                files={"photo": ("p.jpg", phone_jpeg(320, 240, seed=60 + i), "image/jpeg")},
                headers={"Accept": "application/json"},
            )
            assert answer.status_code == 202, answer.text
            assert client.get(f"/api/v1/captures/volume-new-{i}").status_code == 200
        for i in range(2):
            wait_status(client, f"volume-new-{i}", "verified")
        listed = client.get("/api/v1/captures", params={"context_id": context})
        assert [c["capture_id"] for c in listed.json()] == ["volume-new-0", "volume-new-1"]
        views = ("", "/priors", f"/timeline?body_site={FOREARM}", "/lesions", "/refilable")
        for view in views:
            shown = client.get(f"/api/v1/contexts/{context}{view}")  # what the phone shows
            assert shown.status_code == 200, (view, shown.text)
        follower.join(30)
        assert heard == ["volume-new-0", "volume-new-1"], heard  # the stream told both
    finally:
        event.remove(engine, "before_cursor_execute", record)

    db = sqlite3.connect(database, timeout=30, isolation_level=None)
    try:
        held = db.execute("SELECT count(*) FROM capture").fetchone()[0]
        assert held >= CONTEXTS * PER_CONTEXT
        seen: dict[str, tuple[int, str]] = {}
        for statement, parameters in ran:
            if statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "PRAGMA", "SAVEPOINT")):
                continue
            steps = _steps(db, statement, parameters)
            if steps > seen.get(statement, (-1, ""))[0]:
                seen[statement] = (steps, _plan(db, statement, parameters))
    finally:
        db.close()
    assert len(seen) >= 10, seen  # the flow ran its statements (upload, STOW, verify, reads)
    over = {s: cost for s, cost in seen.items() if cost[0] > MOST_STEPS}
    assert not over, "\n\n".join(
        f"{steps} VM steps, plan: {plan}\n{' '.join(s.split())[:300]}"
        for s, (steps, plan) in over.items()
    )

    # Between photos, the workers look for work: the notifier for photos without their chart
    # rows (every photo has them here), the retractions, the purge of spooled bytes kept.
    _notified(database)
    engine = make_engine(f"sqlite:///{database}")
    counted = [0]

    def counting(connection: sqlite3.Connection, _record: Any) -> None:
        connection.set_progress_handler(lambda: counted.__setitem__(0, counted[0] + STEP), STEP)

    event.listen(engine, "connect", counting)
    notifier = NotifyWorker(engine, _notifying(tmp_path), OutboxPolicy())
    try:
        assert notifier.enqueue_missing() == 0  # the first look reads every photo, once an hour
        looks: dict[str, Callable[[], object]] = {
            "notifier": notifier.enqueue_missing,
            "retractions": lambda: rejections.missing_retractions(engine, 100),
            "spool purge": lambda: captures.spool_purge_due(engine, utcnow() - HOUR),
        }
        costs = {}
        for name, look in looks.items():
            counted[0] = 0
            look()
            costs[name] = counted[0]
    finally:
        notifier.stop(1)
        engine.dispose()
    assert max(costs.values()) <= MOST_STEPS, costs


def _notified(database: Path) -> None:
    """Every verified photo has its Media and DocumentReference, sent."""
    db = sqlite3.connect(database, timeout=30)
    try:
        for resource_type in ("Media", "DocumentReference"):
            db.execute(
                "INSERT INTO notification (capture_id, resource_type, iss, status, attempts,"
                " next_attempt_at, created_at, updated_at) SELECT id, ?, ?, 'sent', 1,"
                " verified_at, verified_at, verified_at FROM capture WHERE status = 'verified'",
                (resource_type, ISS),
            )
        db.commit()
    finally:
        db.close()


def _notifying(tmp_path: Path) -> Settings:
    """Settings of a service that notifies ``ISS`` (no request is made: only its looks run)."""
    return Settings(
        data_dir=tmp_path / "notifier",
        wado_url="http://archive.invalid/wado",
        notify_enabled=False,
        ehrs=[
            EhrRegistration(
                iss=ISS,
                client_id="capture",
                auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC,
                client_secret="secret",  # type: ignore[arg-type]
                scopes="launch openid fhirUser patient/*.read",
                notify=["Media", "DocumentReference"],
            )
        ],
    )
