"""``make test`` on a machine without Chromium fails the browser tests instead of skipping them
(issue 12): a skipped PWA suite would let CI pass with the phone client untested."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

ACCESS_TESTS = "tests/web/test_access.py"


def test_browser_tests_fail_when_chromium_is_missing() -> None:
    env = os.environ | {"CAPTURE_TEST_CHROMIUM": "/nonexistent/chromium"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ACCESS_TESTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 1, result.stdout[-2000:]
    assert "error" in summary or "failed" in summary, summary
    assert "skipped" not in summary and "passed" not in summary, summary
    assert "/nonexistent/chromium" in result.stdout
