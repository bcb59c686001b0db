"""Readiness: can this process take a photo and deliver it right now?

Three dependencies, checked at the same time, each within ``TIMEOUT_SECONDS``, and the
process's own background loops:

- **database**: ``SELECT 1`` (the outbox and every context live there);
- **spool**: a file can be created in the spool folder (a 202 means the photo is on disk);
- **archive**: DICOMweb: one QIDO-RS search for a study UID nobody has (an indexed exact
  match, PS3.18 10.6, as cheap as a query gets on any PACS); local archive: its folder is
  writable;
- **loops**: no background loop (delivery, verification, notification, worklist completion)
  failed ``loops.UNREADY_AFTER`` times in a row (``capture_api.observability.loops``): a
  process whose delivery fails on every photo is not ready, and says which loop and why.

Each check runs in a daemon thread, so a database or archive that never answers (a firewall
dropping packets) costs the probe ``TIMEOUT_SECONDS``, not the connect timeout of the driver.
Details name the dependency and the setting to check, never a password, token or patient.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from capture_api.config import ArchiveAuthKind, Settings
from capture_api.deliver.archive_auth import auth_from_settings, credentials_hint
from capture_api.exceptions import CaptureError
from capture_api.observability.loops import LoopHealth
from capture_api.os_threads import NamedThread
from capture_api.store.db import Database, ping

__all__ = ["TIMEOUT_SECONDS", "CheckResult", "Readiness"]

log = logging.getLogger("capture.readiness")

#: Longest a readiness probe takes; orchestrator probe timeouts should be a little longer.
TIMEOUT_SECONDS = 3.0
#: A valid UID that no archive holds: ``2.25`` + a fixed UUID (PS3.5 B.2) used only to probe.
PROBE_STUDY_UID = "2.25.170141183460469231731687303715884105727"
_DICOM_JSON = "application/dicom+json"


class NotReady(Exception):
    """One dependency is not usable; the message says which and what to check."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one dependency check."""

    name: str
    ok: bool
    seconds: float
    detail: str | None = None


class Readiness:
    """The checks for one process's settings and engine (build once, call ``check`` often)."""

    def __init__(
        self,
        settings: Settings,
        engine: Database,
        timeout: float = TIMEOUT_SECONDS,
        loops: LoopHealth | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.timeout = timeout
        self.loops = loops or LoopHealth()
        # Built once: an OAuth2 archive token is fetched once and reused, not on every probe.
        self._auth = auth_from_settings(settings) if settings.dicomweb_url else None

    def check(self) -> list[CheckResult]:
        """Every check, run in parallel; a check still running at the deadline fails."""
        checks: dict[str, Callable[[], None]] = {
            "database": self._database,
            "spool": self._spool,
            "archive": self._dicomweb if self.settings.dicomweb_url else self._local_archive,
            "loops": self._loops,
        }
        return _run_parallel(checks, self.timeout)

    # --- the checks -------------------------------------------------------------------------

    def _database(self) -> None:
        try:
            ping(self.engine)
        except Exception as exc:  # any driver error means "not usable"; its text may hold a DSN
            raise NotReady(
                f"the database did not answer SELECT 1 ({type(exc).__name__}): "
                "check DATABASE_URL and that the database server is up"
            ) from exc

    def _loops(self) -> None:
        problems = self.loops.problems()
        if problems:
            raise NotReady(
                "; ".join(f"the {loop} loop is failing: {why}" for loop, why in problems.items())
            )

    def _spool(self) -> None:
        _writable(self.settings.spool_dir, "spool folder")

    def _local_archive(self) -> None:
        _writable(self.settings.local_archive_dir, "local archive folder")

    def _dicomweb(self) -> None:
        """One QIDO-RS study search by a UID nobody has: 200 or 204 (no match) is ready."""
        base = (self.settings.dicomweb_url or "").rstrip("/")
        wait = max(0.5, min(self.settings.archive_timeout_seconds, self.timeout - 0.5))
        try:
            with httpx.Client(timeout=wait, headers={"User-Agent": "capture-readyz"}) as http:
                response = http.get(
                    f"{base}/studies",
                    params={"StudyInstanceUID": PROBE_STUDY_UID},
                    headers={"Accept": _DICOM_JSON},
                    auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                )
        except httpx.TimeoutException as exc:
            raise NotReady(f"the DICOMweb archive did not answer within {wait:g} s") from exc
        except httpx.RequestError as exc:
            raise NotReady(
                f"cannot reach the DICOMweb archive ({type(exc).__name__}): "
                "check CAPTURE_DICOMWEB_URL and that the archive is up"
            ) from exc
        except CaptureError as exc:  # the OAuth2 token endpoint failed: its message is ours
            raise NotReady(str(exc)) from exc
        _check_qido_answer(response.status_code, self.settings.archive_auth)


def _check_qido_answer(status: int, auth: ArchiveAuthKind) -> None:
    if status in (200, 204):
        return
    if status in (401, 403):
        raise NotReady(
            f"the DICOMweb archive refused our credentials (HTTP {status}): "
            f"{credentials_hint(ArchiveAuthKind(auth))}"
        )
    hint = " (check CAPTURE_DICOMWEB_URL: the part before /studies)" if status == 404 else ""
    raise NotReady(f"the DICOMweb archive answered a QIDO-RS search with HTTP {status}{hint}")


def _writable(folder: Path, what: str) -> None:
    """Create (if needed) and remove a small file in ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".readyz-"):
            pass
    except OSError as exc:
        raise NotReady(
            f"cannot write to the {what} {folder} ({exc.strerror or type(exc).__name__}): "
            "check CAPTURE_DATA_DIR, its permissions and free space"
        ) from exc


# --- running them -----------------------------------------------------------------------------


def _run_parallel(checks: dict[str, Callable[[], None]], timeout: float) -> list[CheckResult]:
    results: dict[str, CheckResult] = {}
    threads = [
        NamedThread(
            target=_run_one, args=(name, check, results), name=f"readyz-{name}", daemon=True
        )
        for name, check in checks.items()
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        results.get(name) or CheckResult(name, False, timeout, f"no answer within {timeout:g} s")
        for name in checks
    ]


def _run_one(name: str, check: Callable[[], None], results: dict[str, CheckResult]) -> None:
    started = time.perf_counter()
    try:
        check()
    except NotReady as exc:
        log.warning("not ready: %s: %s", name, exc)
        results[name] = CheckResult(name, False, time.perf_counter() - started, str(exc))
    except Exception as exc:  # a bug in a check must read "not ready", not crash the probe
        log.exception("readiness check %s failed", name)
        detail = f"the {name} check failed unexpectedly ({type(exc).__name__})"
        results[name] = CheckResult(name, False, time.perf_counter() - started, detail)
    else:
        results[name] = CheckResult(name, True, time.perf_counter() - started)
