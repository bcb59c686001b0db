"""At volume, a photo costs what it costs on an empty database (issue 13: volume is correctness).

A database that has served a clinic for a while holds many contexts, photos and audit events;
the statements one photo makes (upload, encode, STOW-RS, verification, the phone's status,
list, event stream and views) and the looks the workers make between photos must each touch
a bounded number of rows, not every photo ever taken. An index SQLite does not pick looks
fine on an empty test database and costs a full table scan per statement at volume: with
100,000 photos held one upload cost 35 ms more CPU (the count of a context's photos), every
open phone's event stream 37 ms every 0.25 s, and the notifier's look for photos without
their chart rows 4 million VM steps at every pass.

The oracle is the database's own count of its work, never a timing: each statement the
service ran is run again (in a transaction rolled back) on the same database. SQLite: a
progress handler counts its virtual machine's instructions (a scan of 100,000 rows is
millions, an indexed lookup a few hundred). PostgreSQL (after ``ANALYZE``, as autovacuum
keeps it): ``EXPLAIN (ANALYZE)`` says how many rows each scan read and threw away.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, make_url

from bench.volume import fill
from capture_api.api.app import create_app
from capture_api.config import ClientAuthMethod, EhrRegistration, Settings
from capture_api.deliver.outbox import OutboxPolicy
from capture_api.notify.worker import NotifyWorker
from capture_api.store import captures, measurements, rejections
from capture_api.store.db import make_engine
from capture_api.store.records import WoundMeasurementRecord, utcnow
from tests.audit.conftest import settings_for
from tests.conftest import phone_jpeg
from tests.correct.conftest import FOREARM, engine_of, open_context, send_photo, wait_status
from tests.deliver.service_process import fresh_postgres_database
from tests.orthanc import OrthancServer

#: A busy clinic's year or two: 4,000 encounters of 25 photos, 4 audit events per photo.
CONTEXTS, PER_CONTEXT, AUDIT_PER_PHOTO = 4_000, 25, 4
#: Photos of them measured as wounds (an SR each, its Observation sent).
MEASURED = 20_000
#: The EHR the volume's contexts were opened from (its notifier made their chart rows).
ISS = "https://ehr.example/fhir"
HOUR = dt.timedelta(hours=1)

Ran = list[tuple[str, Any]]


class Volume(Protocol):
    """One database filled with a clinic's worth of rows, and its count of a statement's work."""

    unit: str
    most: int  # what one statement may cost, in ``unit``

    def notified(self) -> None: ...
    def measured(self) -> None: ...
    def cost(self, statement: str, parameters: Any) -> tuple[int, str]: ...


class SqliteVolume:
    unit = "SQLite VM steps"
    #: A lookup of a context's 25 rows: a few thousand; a scan of the 100,000 photos: millions.
    most = 20_000
    step = 10  # the progress handler's granularity (instructions per call)

    def __init__(self, path: Path) -> None:
        self.path = path

    def notified(self) -> None:
        """Every verified photo has its Media and DocumentReference, sent."""
        with _closing(sqlite3.connect(self.path, timeout=30)) as db:
            for resource_type in ("Media", "DocumentReference"):
                db.execute(_NOTIFIED.replace("%s", "?"), (resource_type, ISS))
            db.commit()

    def measured(self) -> None:
        with _closing(sqlite3.connect(self.path, timeout=30)) as db:
            cols = [row[1] for row in db.execute("PRAGMA table_info(capture)")]
            for statement in _measured(cols):
                db.execute(statement)
            db.commit()

    def cost(self, statement: str, parameters: Any) -> tuple[int, str]:
        counted = [0]

        def tick() -> int:
            counted[0] += self.step
            return 0

        with _closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            plan = "; ".join(
                str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            db.set_progress_handler(tick, self.step)
            db.execute("BEGIN")
            try:
                db.execute(statement, parameters).fetchall()
            except sqlite3.IntegrityError:
                pass  # an INSERT of a row that is there already: its index lookups ran
            finally:
                db.execute("ROLLBACK")
        return counted[0], plan


class PostgresVolume:
    unit = "rows PostgreSQL read"
    #: A context's 25 rows, a few index pages; a scan of the photos: 100,000.
    most = 2_000

    def __init__(self, url: str) -> None:
        self.conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)

    def notified(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as db:
            for resource_type in ("Media", "DocumentReference"):
                db.execute(_NOTIFIED, (resource_type, ISS))
            db.execute("ANALYZE notification")

    def measured(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as db:
            cols = [
                row[0]
                for row in db.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'capture' ORDER BY ordinal_position"
                )
            ]
            for statement in _measured(cols):
                db.execute(statement)
            db.execute("ANALYZE")

    def cost(self, statement: str, parameters: Any) -> tuple[int, str]:
        if not statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            return 0, "not a query"  # LISTEN, NOTIFY, SET
        with psycopg.connect(self.conninfo) as db:
            try:
                (plan,) = db.execute(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}",
                    parameters,
                ).fetchone() or ([],)
            except psycopg.errors.IntegrityError:
                return 0, "a row that is there already"
            finally:
                db.rollback()
        read: list[int] = []
        scans: list[str] = []

        def walk(node: dict[str, Any]) -> None:
            if "Scan" in node["Node Type"]:
                rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                read.append(rows * node["Actual Loops"])
                scans.append(f"{node['Node Type']} {node.get('Index Name', '')}".strip())
            for child in node.get("Plans", []):
                walk(child)

        walk(plan[0]["Plan"])
        return sum(read), "; ".join(scans)


_NOTIFIED = (
    "INSERT INTO notification (capture_id, resource_type, iss, status, attempts,"
    " next_attempt_at, created_at, updated_at) SELECT id, %s, %s, 'sent', 1,"
    " verified_at, verified_at, verified_at FROM capture"
    " WHERE status = 'verified' AND object_kind = 'photo'"
)


def _measured(capture_columns: list[str]) -> list[str]:
    """``MEASURED`` volume photos measured as wounds: each has its SR (a verified outbox row
    of kind sr), its current measurement and its Observation, sent (SQL of both databases)."""
    photos = f"FROM capture t WHERE t.id LIKE 'volume-photo-%' ORDER BY t.id LIMIT {MEASURED}"
    made = {
        "id": "'sr-' || t.id",
        "object_kind": "'sr'",
        "sop_instance_uid": "t.sop_instance_uid || '.9'",
    }
    values = ", ".join(made.get(c, f't."{c}"') for c in capture_columns)
    names = ", ".join(f'"{c}"' for c in capture_columns)
    measurement = (
        "id, capture_id, context_id, status, patient_id, issuer, area_cm2, length_mm,"
        " width_mm, perimeter_mm, method, perspective_corrected, mm_per_px, quality_json,"
        " outline_json, snapped, tracking_uid, tracking_id, sr_sop_instance_uid,"
        " sr_capture_id, observation_json, measured_at, created_at"
    )
    return [
        f"INSERT INTO capture ({names}) SELECT {values} {photos}",
        f"INSERT INTO wound_measurement ({measurement}) SELECT 'wm-' || t.id, t.id,"
        " t.context_id, 'recorded', 'MRN-VOLUME-0', '', 1.0, 10.0, 10.0, 40.0,"
        " 'ruler-two-point', FALSE, 0.1, '{}', '[]', FALSE, '2.25.1', 'wound',"
        f" t.sop_instance_uid || '.9', 'sr-' || t.id, '{{}}', t.created_at, t.created_at {photos}",
        "INSERT INTO notification (capture_id, resource_type, iss, status, attempts,"
        " next_attempt_at, created_at, updated_at) SELECT id, 'Observation', "
        f"'{ISS}', 'sent', 1, verified_at, verified_at, verified_at FROM capture"
        " WHERE object_kind = 'sr' AND id LIKE 'sr-volume-photo-%'",
    ]


@contextmanager
def _closing(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield db
    finally:
        db.close()


@contextmanager
def _recorded(engine: Engine) -> Iterator[Ran]:
    """The statements ``engine`` runs meanwhile, with their parameters (one row of many)."""
    ran: Ran = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        ran.append((statement, parameters[0] if many else parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield ran
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def client(tmp_path: Path, database_url: str | None) -> Iterator[TestClient]:
    with OrthancServer(tmp_path / "orthanc") as orthanc:
        extra = {"database_url": database_url} if database_url else {}
        settings = settings_for(tmp_path / "capture", dicomweb_url=orthanc.base_url, **extra)
        with TestClient(create_app(settings)) as c:
            yield c


def test_every_statement_of_a_photo_and_every_look_stay_bounded_with_100000_photos_held(
    client: TestClient, tmp_path: Path, database_url: str | None
) -> None:
    first = open_context(client, {"id": "MRN-VOLUME-0"})
    send_photo(client, first, "volume-template")
    url = database_url or f"sqlite:///{tmp_path / 'capture' / 'capture.db'}"
    volume: Volume = (
        PostgresVolume(url) if database_url else SqliteVolume(tmp_path / "capture" / "capture.db")
    )
    fill(url, CONTEXTS, PER_CONTEXT, AUDIT_PER_PHOTO, iss=ISS)

    with _recorded(engine_of(client)) as ran:
        _one_context_of_photos(client)
    costs = _costs(volume, ran)
    assert len(costs) >= 10, costs  # the flow ran its statements (upload, STOW, verify, reads)
    _assert_bounded(volume, costs)

    # Between photos, the workers look for work: the notifier for photos and wound SRs
    # without their chart rows (every one has them here), the retractions, the purge of
    # spooled bytes kept, the files in the spool folder no capture names.
    volume.measured()
    volume.notified()
    engine = make_engine(url)
    notifier = NotifyWorker(engine, _notifying(tmp_path), OutboxPolicy())
    try:
        assert notifier.enqueue_missing() == 0  # the first look reads every photo, once an hour
        with _recorded(engine) as looked:
            notifier.enqueue_missing()
            rejections.missing_retractions(engine, 100)
            captures.spool_purge_due(engine, utcnow() - HOUR)
            captures.spooled_names(engine)  # the idle spool tidy
            # ...and what a measurement does: another patient's site trend, an SR's inputs,
            # a wound measured again (its earlier measurement superseded)
            measurements.for_site(engine, "MRN-VOLUME-1", None, FOREARM, "L")
            measurements.observation_inputs(engine, "sr-volume-photo-1")
            measurements.record(engine, _measured_again("volume-photo-2"))
    finally:
        notifier.stop(1)
        engine.dispose()
    looks = _costs(volume, looked)
    # photos without a row (one statement), SRs without an Observation (two), retractions,
    # purge, tidy, a site's trend, an Observation's inputs, a measurement's UPDATE and INSERT
    assert len(looks) >= 10, looks
    _assert_bounded(volume, looks)


def _one_context_of_photos(client: TestClient) -> None:
    """A new context: two photos uploaded and followed to verified (status, list, the event
    stream open meanwhile), then the views of the context the phone shows."""
    context = open_context(client, {"id": "MRN-VOLUME-1"})
    heard: list[str] = []
    follower = threading.Thread(target=_follow, args=(client, context, heard), daemon=True)
    follower.start()
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
        shown = client.get(f"/api/v1/contexts/{context}{view}")
        assert shown.status_code == 200, (view, shown.text)
    follower.join(30)
    assert heard == ["volume-new-0", "volume-new-1"], heard  # the stream told both


def _follow(client: TestClient, context: str, heard: list[str]) -> None:
    """Read the context's event stream until both photos were said verified."""
    with client.stream("GET", "/api/v1/captures/events", params={"context_id": context}) as sse:
        for line in sse.iter_lines():
            said = json.loads(line[5:]) if line.startswith("data:") else {}
            if said.get("status") == "verified" and said["capture_id"] not in heard:
                heard.append(said["capture_id"])
            if len(heard) == 2:
                return


def _costs(volume: Volume, ran: Ran) -> dict[str, tuple[int, str]]:
    """Each distinct statement's highest cost, with its plan."""
    costs: dict[str, tuple[int, str]] = {}
    for statement, parameters in ran:
        if statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "PRAGMA", "SAVEPOINT")):
            continue
        cost = volume.cost(statement, parameters)
        if cost[0] >= costs.get(statement, (-1, ""))[0]:
            costs[statement] = cost
    return costs


def _assert_bounded(volume: Volume, costs: dict[str, tuple[int, str]]) -> None:
    over = {s: cost for s, cost in costs.items() if cost[0] > volume.most}
    assert not over, "\n\n".join(
        f"{cost} {volume.unit}, plan: {plan}\n{' '.join(s.split())[:300]}"
        for s, (cost, plan) in over.items()
    )


def _measured_again(capture_id: str) -> WoundMeasurementRecord:
    """A new measurement of a volume photo already measured (``Volume.measured``)."""
    return WoundMeasurementRecord(
        id=f"wm-again-{capture_id}",
        capture_id=capture_id,
        context_id="volume-context-3",
        patient_id="MRN-VOLUME-0",
        area_cm2=2.0,
        length_mm=20.0,
        width_mm=10.0,
        perimeter_mm=60.0,
        method="ruler-two-point",
        perspective_corrected=False,
        mm_per_px=0.1,
        quality_json="{}",
        outline_json="[]",
        tracking_uid="2.25.1",
        tracking_id="wound",
        sr_sop_instance_uid=f"2.25.9.{capture_id.rsplit('-', 1)[-1]}",
        sr_capture_id=f"sr-again-{capture_id}",
        observation_json="{}",
        measured_at=utcnow(),
    )


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
                notify=["Media", "DocumentReference", "Observation"],
            )
        ],
    )
