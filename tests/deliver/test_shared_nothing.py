"""Replicas share nothing but PostgreSQL (``CAPTURE_SPOOL=database``, issue 13).

Two real API processes with separate data folders on one PostgreSQL database. Replica A
accepts a batch (202 each) while its workers are stuck in STOW requests to an archive that
never answers, and is SIGKILLed; its folder is deleted (its machine and disk are gone).
Replica B, started afterwards with its own empty folder and the real Orthanc, delivers every
photo exactly once from the bytes A left in the database, including the ones A's workers
held under a lease when they died (taken once those leases expired: A's claims are renamed to
another machine's, as they would be in production, so B cannot free them at start-up).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.encaps import generate_frames

from capture_api.store.spool_source import FolderReader
from tests.conftest import phone_jpeg
from tests.deliver.service_process import (
    ServiceProcess,
    fresh_postgres_database,
    kill_while_encoding,
    pg_rows,
)
from tests.orthanc import OrthancServer

BATCH = 6


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path / "orthanc") as server:
        yield server


@pytest.fixture
def silent_archive() -> Iterator[str]:
    """A DICOMweb base URL whose server accepts connections and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            held.append(connection)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, name="silent-archive", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/dicom-web"
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        server.close()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_replica_killed_after_its_202s_is_delivered_by_another_from_the_database(
    tmp_path: Path, orthanc: OrthancServer, silent_archive: str
) -> None:
    with fresh_postgres_database() as database_url:
        common = {
            "DATABASE_URL": database_url,
            "CAPTURE_SPOOL": "database",
            "CAPTURE_LEASE_SECONDS": "2",
            "CAPTURE_RETRY_BASE_SECONDS": "0.2",
            "CAPTURE_RETRY_MAX_SECONDS": "1",
        }
        folder_a, folder_b = tmp_path / "a", tmp_path / "b"
        replica_a = ServiceProcess(
            common
            | {
                "CAPTURE_DATA_DIR": str(folder_a),
                "CAPTURE_DICOMWEB_URL": silent_archive,
                "CAPTURE_ARCHIVE_TIMEOUT_SECONDS": "120",
            },
            log_path=tmp_path / "a.log",
        )
        replica_b = ServiceProcess(
            common | {"CAPTURE_DATA_DIR": str(folder_b), "CAPTURE_DICOMWEB_URL": orthanc.base_url},
            log_path=tmp_path / "b.log",
        )
        try:
            replica_a.start()
            context = replica_a.create_context("MRN-SHARED-NOTHING")
            ids = [f"sn-{i}" for i in range(BATCH)]
            sops = set()
            for i, capture_id in enumerate(ids):
                answer = replica_a.upload(capture_id, context, phone_jpeg(320, 240, seed=70 + i))
                assert answer.status_code == 202, answer.text
                sops.add(answer.json()["sop_instance_uid"])

            def a_is_sending() -> bool:  # A's workers hold leases, stuck in their STOW
                rows = pg_rows(database_url, "SELECT lease_owner FROM capture")
                return any(owner and "/worker-" in owner for (owner,) in rows)

            _wait(a_is_sending, "replica A's workers to claim photos")
            replica_a.kill()
            shutil.rmtree(folder_a)  # A's machine is gone, and its disk with it
            # A was another machine: B may not free its claims at start-up (that is only
            # for dead processes of B's own machine), it takes them once their leases expire.
            held = pg_rows(
                database_url,
                "UPDATE capture SET lease_owner = 'machine-a.0000/4242/' || "
                "split_part(lease_owner, '/', 3) WHERE lease_owner IS NOT NULL RETURNING id",
            )
            assert held  # photos B may only take once A's leases (2 s) have expired
            (blobs,) = pg_rows(database_url, "SELECT count(DISTINCT name) FROM spool_blob")[0]
            assert blobs >= 2 * BATCH  # every photo and its DICOM object, in the database

            replica_b.start()
            replica_b.wait_all(ids, "verified", timeout=90)
            assert "took over" not in replica_b.log_tail(400)  # expiry, not a local release
        finally:
            replica_a.close()
            replica_b.close()

        assert orthanc.instance_count() == BATCH
        assert orthanc.sop_uids() == sops
        rows = pg_rows(database_url, "SELECT id, status, stow_requests FROM capture")
        assert sorted((r[0], r[1]) for r in rows) == [(i, "verified") for i in ids]
        assert sum(r[2] for r in rows) == BATCH, "an instance was sent more than once"
        verified = pg_rows(
            database_url, "SELECT capture_id FROM audit_event WHERE action = 'verify'"
        )
        assert sorted(c for (c,) in verified) == ids  # each verified exactly once
        assert pg_rows(database_url, "SELECT count(*) FROM spool_blob") == [(0,)]
        assert not list(folder_b.glob("spool/*/*"))  # nothing left on B's disk either


def test_a_photo_whose_replica_died_in_its_encode_is_encoded_by_the_resend_to_another(
    tmp_path: Path, orthanc: OrthancServer
) -> None:
    """The phone had no 202 when replica A died in the encode, so it sends the photo again,
    now to replica B, whose disk never had A's spooled file: B encodes the re-sent bytes at
    once (the same photo: same SHA-256), keeps no copy of them, and delivers it once. Before,
    B answered 500 (file not found) and the photo waited for B's worker and A's lease."""
    photo = phone_jpeg(8064, 6048, seed=4849)  # 48 MP: the kill lands inside A's encode
    with fresh_postgres_database() as database_url:
        common = {
            "DATABASE_URL": database_url,
            "CAPTURE_SPOOL": "database",
            "CAPTURE_LEASE_SECONDS": "2",
            "CAPTURE_DICOMWEB_URL": orthanc.base_url,
        }
        folder_a, folder_b = tmp_path / "a", tmp_path / "b"
        replica_a = ServiceProcess(
            common | {"CAPTURE_DATA_DIR": str(folder_a)}, log_path=tmp_path / "a.log"
        )
        only_uploads = {"CAPTURE_DATA_DIR": str(folder_b), "CAPTURE_WORKER_ENABLED": "false"}
        replica_b = ServiceProcess(common | only_uploads, log_path=tmp_path / "b.log")
        sql = "SELECT status, lease_owner FROM capture WHERE id = 'died-in-encode'"
        try:
            replica_a.start()
            context = kill_while_encoding(
                replica_a, "died-in-encode", photo, lambda: pg_rows(database_url, sql)
            )
            shutil.rmtree(folder_a)  # A's machine is gone, and its disk with it
            pg_rows(  # A was another machine, its upload's lease runs out (2 s)
                database_url,
                "UPDATE capture SET lease_owner = 'machine-a.0000/4242/upload' RETURNING id",
            )
            _wait(
                lambda: (
                    pg_rows(database_url, "SELECT lease_expires_at < now() FROM capture")
                    == [(True,)]
                ),
                "replica A's lease to expire",
            )

            replica_b.start()  # no worker runs in B: only the re-send can encode the photo
            again = replica_b.upload("died-in-encode", context, photo)
            assert again.status_code == 202, again.text
            assert again.json()["status"] == "encoded", again.json()
            assert pg_rows(database_url, sql) == [("encoded", None)]
            assert not list(folder_b.rglob("*.photo")), "B kept a copy of the re-sent photo"

            replica_b.settings["CAPTURE_WORKER_ENABLED"] = "true"  # now B delivers it
            replica_b.restart()
            replica_b.wait_all(["died-in-encode"], "verified", timeout=60)
        finally:
            replica_a.close()
            replica_b.close()

        assert orthanc.sop_uids() == {again.json()["sop_instance_uid"]}
        assert pg_rows(database_url, "SELECT stow_requests FROM capture") == [(1,)]
        assert pg_rows(database_url, "SELECT count(*) FROM spool_blob") == [(0,)]


def test_a_photo_another_replica_encoded_is_traced_and_measured_on_this_one(
    tmp_path: Path, silent_archive: str
) -> None:
    """Behind a load balancer the phone's measure screen asks any replica for the photo it
    just took. While the archive does not have it yet (here: the archive never answers), B
    reads the DICOM object A encoded from the database: the same frame, measured. Before, B
    asked the archive, and answered 502 while it did not answer."""
    photo = phone_jpeg(640, 480, seed=4850)
    with fresh_postgres_database() as database_url:
        common = {
            "DATABASE_URL": database_url,
            "CAPTURE_SPOOL": "database",
            "CAPTURE_DICOMWEB_URL": silent_archive,
            "CAPTURE_ARCHIVE_TIMEOUT_SECONDS": "2",
        }
        replica_a = ServiceProcess(
            common | {"CAPTURE_DATA_DIR": str(tmp_path / "a")}, log_path=tmp_path / "a.log"
        )
        replica_b = ServiceProcess(
            common | {"CAPTURE_DATA_DIR": str(tmp_path / "b")}, log_path=tmp_path / "b.log"
        )
        try:
            replica_a.start()
            replica_b.start()
            context = replica_a.create_context("MRN-TRACE-ANYWHERE")
            answer = replica_a.upload("traced-on-b", context, photo)
            assert answer.status_code == 202, answer.text
            (dicom_path,) = pg_rows(database_url, "SELECT dicom_path FROM capture")[0]
            assert str(tmp_path / "a") in dicom_path  # A's disk: B has no such file
            spooled = FolderReader().source(dicom_path).read()  # A's object, from A's disk
            frame = next(generate_frames(dcmread(BytesIO(spooled)).PixelData, number_of_frames=1))
            replica_a.kill()
            shutil.rmtree(tmp_path / "a")  # B runs on this machine too: A's disk goes

            image = replica_b.client.get("/api/v1/captures/traced-on-b/image")
            assert image.status_code == 200, image.text
            assert image.content == frame  # the archived frame, byte for byte

            square = [[100.0, 100.0], [500.0, 100.0], [500.0, 400.0], [100.0, 400.0]]
            ruler = {"start": [100, 450], "end": [500, 450], "distance_mm": 40}
            measured = replica_b.client.post(
                "/api/v1/captures/traced-on-b/measurements",
                json={"outline": square, "ruler": ruler},
            )
            assert measured.status_code == 201, measured.text
            assert abs(measured.json()["area_cm2"] - 12.0) < 1e-6  # 40 mm x 30 mm
            assert replica_b.status("traced-on-b")["status"] == "encoded"  # still not archived
        finally:
            replica_a.close()
            replica_b.close()
