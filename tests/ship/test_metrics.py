"""/metrics from a real service process delivering to a real Orthanc.

Scrapes are parsed with prometheus_client's own text parser (what Prometheus reads), and
every assertion compares two scrapes of the same process, so the figures must move.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BROKEN_SAMPLES, SAMPLES
from tests.deliver.service_process import ServiceProcess
from tests.orthanc import OrthancServer, free_port

PHOTO = (SAMPLES / "orientation" / "landscape_1.jpg").read_bytes()
CORRUPT = next(SAMPLES / name for name in BROKEN_SAMPLES)
PATIENT_ID = "METRICS-PHI-7731"
FAST = {"CAPTURE_POLL_SECONDS": "0.05", "CAPTURE_RETRY_BASE_SECONDS": "0.05"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(service: ServiceProcess) -> tuple[Samples, str]:
    """Every sample of ``GET /metrics`` keyed by (name, sorted labels), and the raw text."""
    response = service.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, response.text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def start(tmp: Path, name: str, data: str | None = None, **settings: str) -> ServiceProcess:
    """A service process with its own log; ``data`` names a data folder to share."""
    folder = tmp / (data or name)
    service = ServiceProcess(
        {"CAPTURE_DATA_DIR": str(folder), **FAST, **settings}, log_path=tmp / f"{name}.log"
    )
    service.start()
    return service


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="module")
def service(
    orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("metrics")
    with start(tmp, "delivering", CAPTURE_DICOMWEB_URL=orthanc.base_url) as running:
        yield running


def test_verified_upload_moves_the_counters_and_the_stow_histogram(
    service: ServiceProcess,
) -> None:
    before, _ = scrape(service)
    context = service.create_context(PATIENT_ID)
    assert service.upload("metrics-ok-1", context, PHOTO).status_code == 202
    service.wait_all(["metrics-ok-1"], timeout=30)
    after, text = scrape(service)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("capture_captures_received_total") == 1
    assert moved("capture_captures_verified_total") == 1
    assert moved("capture_stow_seconds_count", outcome="stored") == 1
    assert 0 < moved("capture_stow_seconds_sum", outcome="stored") < 30
    assert moved("capture_stow_seconds_bucket", outcome="stored", le="+Inf") == 1
    assert value(after, "capture_outbox_depth", status="encoded") == 0
    assert value(after, "capture_metrics_database_up") == 1
    assert PATIENT_ID not in text and "metrics-ok-1" not in text


def test_refused_photo_is_counted_by_kind(service: ServiceProcess) -> None:
    before, _ = scrape(service)
    context = service.create_context(PATIENT_ID)
    response = service.upload("metrics-bad-1", context, CORRUPT.read_bytes())
    assert response.status_code == 422, response.text
    after, _ = scrape(service)
    kind = {"kind": "corrupt-image"}
    assert value(after, "capture_captures_failed_total", **kind) - value(
        before, "capture_captures_failed_total", **kind
    ) == pytest.approx(1)
    assert value(after, "capture_captures_received_total") - value(
        before, "capture_captures_received_total"
    ) == pytest.approx(1)


def test_depth_shows_pending_rows_and_retries_while_the_archive_is_down(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/dicom-web"
    with start(tmp_path, "down", CAPTURE_DICOMWEB_URL=dead) as down:
        context = down.create_context(PATIENT_ID)
        for i in range(3):
            assert down.upload(f"metrics-down-{i}", context, PHOTO).status_code == 202
        samples = _wait_for(down, "capture_delivery_retries_total", step="stow")
        assert value(samples, "capture_outbox_depth", status="encoded") == 3
        assert ("capture_outbox_depth", (("status", "verified"),)) not in samples  # done: not depth
        assert value(samples, "capture_outbox_oldest_pending_seconds") > 0
        assert value(samples, "capture_stow_seconds_count", outcome="unavailable") >= 1
        assert value(samples, "capture_captures_verified_total") == 0


def test_depth_is_read_from_the_database_so_a_second_process_sees_it(tmp_path: Path) -> None:
    """A process with no worker and no uploads of its own reports the shared outbox."""
    with (
        start(tmp_path, "uploader", "shared", CAPTURE_WORKER_ENABLED="false") as uploader,
        start(tmp_path, "other", "shared", CAPTURE_WORKER_ENABLED="false") as other,
    ):
        context = uploader.create_context(PATIENT_ID)
        assert uploader.upload("metrics-shared-1", context, PHOTO).status_code == 202
        samples, _ = scrape(other)
        assert value(samples, "capture_outbox_depth", status="encoded") == 1
        assert value(samples, "capture_captures_received_total") == 0  # events are per process


def _wait_for(service: ServiceProcess, name: str, timeout: float = 20.0, **labels: str) -> Samples:
    """Scrape until ``name`` is above zero (the outbox has tried, and failed, at least once)."""
    deadline = time.monotonic() + timeout
    while True:
        samples, _ = scrape(service)
        if value(samples, name, **labels) > 0:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} stayed 0:\n{service.log_tail(20)}")
        time.sleep(0.1)


def test_metrics_need_no_session_and_are_not_under_api_v1(service: ServiceProcess) -> None:
    assert httpx.get(f"{service.url}/api/v1/metrics").status_code == 404
    assert httpx.get(f"{service.url}/metrics").status_code == 200
