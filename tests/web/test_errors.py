"""What the phone says when something is wrong: every message names the problem and what to do,
and a refused photo never stays on the phone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Playwright

from tests.conftest import SAMPLES
from tests.web.browser import Phone, phone, requires_chromium
from tests.web.stack import MAX_UPLOAD_BYTES, WebStack

pytestmark = requires_chromium

SKIN_OF_HAND = "70887009"  # palm (front view)


def _png(path: Path) -> Path:
    Image.new("RGB", (64, 48), (200, 120, 90)).save(path, "PNG")
    return path


def _ready_for_photo(nurse: Phone, stack: WebStack, encounter: str = "enc-ngata") -> None:
    nurse.launch(stack.launch_url(encounter))
    nurse.tap_region(SKIN_OF_HAND, "R")
    nurse.page.click("#details-take")
    nurse.wait_screen("camera")


def test_a_screenshot_or_png_is_refused_on_the_phone(
    stack: WebStack, nurse: Phone, tmp_path: Path
) -> None:
    _ready_for_photo(nurse, stack)
    nurse.page.set_input_files("#photo-input", str(_png(tmp_path / "screenshot.png")))
    message = nurse.page.inner_text("#camera-message")
    assert "“screenshot.png” is a PNG file" in message and "JPEG or HEIC" in message
    assert nurse.screen() == "screen-camera"  # nothing was added
    assert "0 photos taken" in nurse.page.inner_text("#camera-count")


def test_a_file_the_service_refuses_shows_its_reason_and_is_wiped(
    stack: WebStack, nurse: Phone, tmp_path: Path
) -> None:
    """A PNG named .jpg gets past the phone; the service answers 415 and names the format."""
    disguised = _png(tmp_path / "photo.jpg")
    _ready_for_photo(nurse, stack)
    nurse.take_photo(disguised)
    nurse.send()
    nurse.wait_states("failed")
    state = nurse.page.inner_text("#send-list .state")
    assert state.startswith("Not sent: ") and "PNG" in state
    assert nurse.queued() == []


def test_a_photo_over_the_limit_says_so_with_the_limit(
    stack: WebStack, nurse: Phone, tmp_path: Path
) -> None:
    noise = np.random.default_rng(5).integers(0, 255, (2400, 3200, 3), dtype=np.uint8)
    huge = tmp_path / "huge.jpg"
    Image.fromarray(noise).save(huge, quality=95)
    assert huge.stat().st_size > MAX_UPLOAD_BYTES
    _ready_for_photo(nurse, stack)
    nurse.take_photo(huge)
    nurse.send()
    nurse.wait_states("failed")
    state = nurse.page.inner_text("#send-list .state")
    assert "too large" in state and "MB limit" in state and "lower resolution" in state
    nurse.shot("12-too-large")
    assert nurse.queued() == []


def test_an_expired_session_says_to_open_capture_again_from_the_chart(
    stack: WebStack, nurse: Phone
) -> None:
    _ready_for_photo(nurse, stack)
    nurse.take_photo(SAMPLES / "gps" / "DSCN0021.jpg")
    nurse.page.context.clear_cookies()  # the session is gone (expired, signed out elsewhere)
    nurse.send()
    nurse.wait_states("failed")
    message = nurse.page.inner_text("#send-message")
    assert "open capture again from the patient's chart" in message
    assert "deleted" in message
    assert nurse.queued() == []


def test_without_a_launch_the_phone_says_where_to_start(stack: WebStack, nurse: Phone) -> None:
    nurse.page.goto(stack.api.url + "/")
    nurse.page.wait_for_selector("#patient-message:not([hidden])")
    assert nurse.page.inner_text("#patient-message") == (
        "Not signed in: open capture from the patient's chart in the EHR."
    )
    assert "No patient selected" in nurse.banner()
    nurse.shot("13-not-signed-in")


def test_consent_is_asked_when_the_service_requires_it(
    stack: WebStack, playwright: Playwright, browser: Browser
) -> None:
    with (
        stack.another_api("consent", CAPTURE_CONSENT_REQUIRED="always") as api,
        phone(playwright, browser) as nurse,
    ):
        nurse.launch(stack.launch_url("enc-okada", api))
        assert "岡田, 花子" in nurse.banner() and "birth date unknown" in nurse.banner()
        nurse.tap_region(SKIN_OF_HAND, "L")
        nurse.take_photo(SAMPLES / "gps" / "DSCN0010.jpg")
        nurse.send()
        dialog = nurse.page.locator("#consent")
        dialog.wait_for()
        nurse.wait_states("consent")
        nurse.page.check('input[name="consenter"][value="guardian"]')
        nurse.page.click("#consent-form button[type=submit]")
        assert "Tick the box" in nurse.page.inner_text("#consent-message")
        nurse.page.check("#consent-agree")
        nurse.page.click("#consent-form button[type=submit]")
        assert "name" in nurse.page.inner_text("#consent-message")
        nurse.page.fill("#consenter-name", "Ngata Aroha")
        nurse.shot("11-consent")
        nurse.page.click("#consent-form button[type=submit]")
        nurse.wait_states("verified")
        assert dialog.is_hidden()
        context_id = nurse.api("/api/v1/session")["context_id"]
        consent = nurse.api(f"/api/v1/contexts/{context_id}/consent")
        assert consent["consenter"] == "guardian" and consent["method"] == "verbal"
        assert nurse.errors == []


def test_an_archive_outage_is_shown_and_the_photo_arrives_once_it_is_back(
    stack: WebStack, nurse: Phone
) -> None:
    _ready_for_photo(nurse, stack)
    nurse.take_photo(SAMPLES / "orientation" / "landscape_6.jpg")
    stack.orthanc.stop()
    try:
        nurse.send()
        nurse.wait_text("#send-list", "The archive is not answering yet")
        assert nurse.states() == ["encoded"]  # safe on the service, waiting for the archive
        assert len(nurse.queued()) == 1  # the sealed copy stays until the archive has it
        nurse.shot("12-archive-retrying")
    finally:
        stack.orthanc.start()
    nurse.wait_states("verified", timeout=60_000)
    assert nurse.queued() == []
