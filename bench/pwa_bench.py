"""Benchmark the phone client in real headless Chromium: first-load payload and send -> verified.

Run from the repository root (``make bench`` runs it too)::

    .venv/bin/python bench/pwa_bench.py            # prints the figures
    .venv/bin/python bench/pwa_bench.py --json pwa.json

Set-up: the browser tests' stack (``tests.web.stack``): Orthanc with DICOMweb, the development
EHR sandbox and the capture API as a process, all on loopback; Debian's Chromium driven by
Playwright as a Pixel 7 (``tests.web.browser``).

What each figure means:

* ``first_load_kb_gzip``: a fresh phone clicks "Launch capture" in the EHR; every distinct
  resource of capture's origin fetched until the body map is up and the network is idle (the
  page, its CSS and ES modules, the manifest and icons, the service worker and the shell it
  pre-caches, the two API answers for the banner) is compressed with ``gzip -9`` and summed
  (KB = 1024 bytes). Counted from the responses Playwright records, not from a file list.
* ``send_to_verified_ms``: median over ``--runs`` photos (after one warm-up) of the time from
  the click on "Send" to the photo's row showing "In the archive (verified)": encryption into
  IndexedDB, the multipart upload, the in-request encode, STOW-RS to Orthanc, its QIDO-RS
  check and the client's status polling (first poll after 250 ms, then every x1.5). The photo
  is the corpus's 12 MP frame (``tests/42_IndexError.jpg``, 4032x3024, 2.9 MB).
* ``send_to_verified_min_ms`` / ``_max_ms``: the spread of those runs.

Caveat: browser, API, Orthanc and this script share the machine's CPUs (2 cores here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.conftest import SAMPLES  # noqa: E402
from tests.web.browser import first_load, launch_chromium, phone  # noqa: E402
from tests.web.stack import web_stack  # noqa: E402

PHOTO_12MP = SAMPLES / "tests" / "42_IndexError.jpg"
SKIN_OF_ANTERIOR_FOREARM = "70559009"


def measure(runs: int = 5) -> dict[str, float]:
    """The figures above, from a fresh stack (about a minute)."""
    with (
        tempfile.TemporaryDirectory() as workdir,
        web_stack(Path(workdir)) as stack,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        try:
            with phone(playwright, browser) as nurse:
                sizes = first_load(nurse, stack.launch_url("enc-muller"), stack.api.url)
            with phone(playwright, browser) as nurse:
                nurse.launch(stack.launch_url("enc-smith-a"))
                nurse.tap_region(SKIN_OF_ANTERIOR_FOREARM, "L")
                seconds = []
                for sent in range(1, runs + 2):
                    nurse.take_photo(PHOTO_12MP)
                    started = nurse.send()
                    nurse.wait_states("verified", count=sent, timeout=120_000)
                    seconds.append(time.monotonic() - started)
                    nurse.page.click("#send-more")
                    nurse.wait_screen("camera")
        finally:
            browser.close()
    timed = seconds[1:]  # the first photo warms the service and Orthanc up
    return {
        "first_load_kb_gzip": round(sum(sizes.values()) / 1024, 1),
        "send_to_verified_ms": round(statistics.median(timed) * 1000, 1),
        "send_to_verified_min_ms": round(min(timed) * 1000, 1),
        "send_to_verified_max_ms": round(max(timed) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed photos (median)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = measure(args.runs)
    for name, value in figures.items():
        print(f"{name:26} {value:>10}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
