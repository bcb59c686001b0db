"""The browser is closed with photos waiting (battery dead, phone restarted), in Chromium and in
WebKit, each with a profile folder of its own (issue 20).

While it is closed, its folder is read byte by byte: no photo bytes and no patient name or MRN
anywhere, though the scan does find what is stored in clear (the capture ids). Then the
browser starts again: another user signs in and can neither read nor send the photos; the
same user signs in for another patient, is offered the earlier patient's photos by name, and
sends them to that patient's record: each archived once, nothing left on the phone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

import pytest
from playwright.sync_api import Playwright

from tests.deliver.service_process import REPO
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, DEVICE, Phone
from tests.web.phone import PhoneDriver
from tests.web.stack import WebStack
from tests.web.test_queue import (
    PHOTOS,
    SKIN_OF_ANTERIOR_FOREARM,
    new_in_orthanc,
    queue_two_offline,
    wait_in_orthanc,
)
from tests.webkit.phone import (
    WebKitPhone,
    console_errors,
    port_of,
    require_webkit,
    webkit_browser,
)

#: What must never be on the phone's disk: the patient (as the phone and the chart write it).
PATIENT_WORDS = ["Müller", "MÜLLER", "Jürgen", "100001", "1950-03-14"]

Browser = Callable[[], AbstractContextManager[PhoneDriver]]


def _encodings(text: str) -> list[bytes]:
    """The ways a browser may store a string: UTF-8, Latin-1 (one-byte strings), UTF-16."""
    out = [text.encode("utf-8"), text.encode("utf-16-le")]
    with suppress(UnicodeEncodeError):
        out.append(text.encode("latin-1"))
    return out


#: The app's own files, which the browser caches (the offline shell) and which are no patient
#: data, though a comment may quote a sandbox patient as an example.
APP_CODE = sorted(
    (p.read_bytes() for p in (REPO / "web_client").rglob("*") if p.suffix in {".js", ".html"}),
    key=len,
    reverse=True,
)


def _found_in(folder: Path, needles: dict[str, list[bytes]]) -> dict[str, list[str]]:
    """needle name -> the files (relative) holding any of its byte strings, outside copies of
    the app's own code."""
    hits: dict[str, list[str]] = {}
    # os.walk, not rglob: a folder the engine's last process removes meanwhile (WebKit's
    # storage process may outlive the closed browser by a moment) is skipped, not an error.
    files = [Path(top) / name for top, _, names in os.walk(folder) for name in names]
    for path in sorted(p for p in files if p.is_file() and not p.is_symlink()):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # a socket or a lock the browser left
        for code in APP_CODE:
            data = data.replace(code, b"")
        for name, forms in needles.items():
            if any(form in data for form in forms):
                hits.setdefault(name, []).append(str(path.relative_to(folder)))
    return hits


def _inspect_closed_profile(folder: Path, capture_ids: list[str]) -> None:
    needles: dict[str, list[bytes]] = {word: _encodings(word) for word in PATIENT_WORDS}
    for photo in PHOTOS:
        data = photo.read_bytes()
        needles[f"{photo.name} header"] = [data[:64]]
        needles[f"{photo.name} scan data"] = [data[len(data) // 2 : len(data) // 2 + 32]]
    assert _found_in(folder, needles) == {}
    # The scan does see the queue: the capture ids are kept in clear (as its keys).
    seen = _found_in(folder, {i: _encodings(i) for i in capture_ids})
    assert set(seen) == set(capture_ids), seen


def _closed_browser_scenario(stack: WebStack, start: Browser, folder: Path) -> None:
    before = set(stack.patient_sop_uids("100001"))
    with start() as phone:
        phone.launch(stack.launch_url("enc-muller"))  # Nurse Nina, Mr Müller
        queue_two_offline(phone, SKIN_OF_ANTERIOR_FOREARM, "L")
        capture_ids = sorted(r["id"] for r in phone.queued())
        # While the phone is off, the session ends. (Were it still valid when the browser
        # starts again, Chromium's Background Sync would send the photos with it at once.)
        phone.clear_cookies()
    # The battery died: the browser is gone, its folder is all that is left.
    _inspect_closed_profile(folder, capture_ids)

    with start() as phone:  # Dr Okafor picks the phone up, for another patient
        vera = f"{stack.sandbox.state.base_url}/ehr/launch/enc-smith-a?user=prac-vera"
        phone.launch(vera)
        phone.wait_text("#site-message", "2 photos of another user wait encrypted on this phone")
        assert "Müller" not in phone.text("body") and "MÜLLER" not in phone.text("body")
        assert sorted(r["id"] for r in phone.queued()) == capture_ids  # kept for their user
        assert new_in_orthanc(stack, "100001", before) == []
    refused = [r for r in stack.audit_events("queue-key") if r[0] == "refused"]
    assert refused and "another user's key" in (refused[-1][2] or "")

    with start() as phone:  # Nurse Nina again, next patient
        phone.launch(stack.launch_url("enc-ngata"))
        phone.wait_text("#queue-offer", "2 photos of MÜLLER, Jürgen (born 1950-03-14, MRN 100001)")
        phone.click('#queue-offer [data-action="send"]')
        phone.wait_text("#queue-offer", "All 2 photos are in MÜLLER, Jürgen's record", 60_000)
        queue = phone.indexeddb()["capture-queue"]
        assert queue["photos"] == queue["sealed"] == []
        assert "NGATA" in phone.banner()  # still with the patient in front of her
        found = wait_in_orthanc(stack, "100001", before, 2)
        assert len(found) == len(set(found)) == 2  # each photo archived once
        for uid in found:
            assert stack.archived(uid).PatientID == "100001"  # in the earlier patient's record
    assert ("success", "100001") in [(o, p) for o, p, _ in stack.audit_events("queue-handoff")]


def test_chromium_closed_with_photos_waiting(
    stack: WebStack, playwright: Playwright, chromium_installed: None, tmp_path: Path
) -> None:
    folder = tmp_path / "chromium-profile"

    @contextmanager
    def start() -> Iterator[PhoneDriver]:
        device = dict(playwright.devices[DEVICE])
        device.pop("default_browser_type", None)  # a launch option, not a context's
        context = playwright.chromium.launch_persistent_context(
            str(folder), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, **device
        )
        context.set_default_timeout(15_000)
        try:
            phone = Phone(context.pages[0] if context.pages else context.new_page())
            yield phone
            assert phone.errors == [], phone.errors
        finally:
            context.close()  # the browser process ends: only the folder stays

    _closed_browser_scenario(stack, start, folder)


@pytest.fixture
def webkit_installed_here() -> None:
    require_webkit()


def test_webkit_closed_with_photos_waiting(
    stack: WebStack, webkit_installed_here: None, tmp_path: Path
) -> None:
    ports = [port_of(stack.api.url), port_of(stack.sandbox.state.base_url)]

    @contextmanager
    def start() -> Iterator[PhoneDriver]:
        with webkit_browser(tmp_path, ports, keep_profile=True) as browser:
            phone = WebKitPhone(browser.driver, browser.network)
            yield phone
            phone.collect_errors()
            assert phone.errors == [], phone.errors
        assert console_errors(tmp_path / "webdriver.log") == []

    _closed_browser_scenario(stack, start, tmp_path / "profile")
