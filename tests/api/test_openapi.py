"""The committed OpenAPI document must be what the app serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from capture_api.api.app import create_app

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "openapi" / "openapi.json"
REFRESH = (
    "openapi/openapi.json is out of date with the app; refresh it with `make openapi` "
    "(or `capture-api openapi > openapi/openapi.json`) and commit the result"
)


def _committed() -> dict[str, Any]:
    assert COMMITTED.is_file(), f"{COMMITTED} is missing; {REFRESH}"
    document: dict[str, Any] = json.loads(COMMITTED.read_text(encoding="utf-8"))
    return document


def test_committed_openapi_matches_the_app() -> None:
    # Round-trip through JSON so tuples and the like compare as the file stores them.
    served = json.loads(json.dumps(create_app().openapi()))
    assert served == _committed(), REFRESH


def test_openapi_command_prints_the_committed_document() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    result = subprocess.run(
        [sys.executable, "-m", "capture_api", "openapi"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == _committed(), REFRESH
