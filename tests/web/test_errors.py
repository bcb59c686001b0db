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
from tests.web.test_access import _audit

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


def _damaged_jpeg(path: Path) -> Path:
    """A JPEG cut short (a photo half written): JPEG by its first bytes, refused by the service
    ("premature end of data")."""
    whole = (SAMPLES / "orientation" / "landscape_1.jpg").read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _refused(nurse: Phone, path: Path) -> str:
    """Choose ``path`` with the camera input; the refusal the phone shows (nothing added)."""
    nurse.page.set_input_files("#photo-input", str(path))
    nurse.page.wait_for_selector("#camera-message:not([hidden])")
    assert nurse.screen() == "screen-camera"  # nothing was added
    assert "0 photos taken" in nurse.page.inner_text("#camera-count")
    return nurse.page.inner_text("#camera-message")


def test_a_screenshot_or_png_is_refused_on_the_phone(
    stack: WebStack, nurse: Phone, tmp_path: Path
) -> None:
    _ready_for_photo(nurse, stack)
    message = _refused(nurse, _png(tmp_path / "screenshot.png"))
    assert "“screenshot.png” is a PNG file" in message and "JPEG or HEIC" in message
    message = _refused(nurse, _png(tmp_path / "photo.jpg"))  # its name does not make it a JPEG
    assert "“photo.jpg” is a PNG file" in message


def test_a_file_named_like_a_photo_is_refused_for_what_it_really_is(
    stack: WebStack, nurse: Phone, tmp_path: Path
) -> None:
    """Its first bytes decide, not its name: a text file called .jpg is text (it used to reach
    review as "HEIC photo: no preview"), and the message says what to do."""
    notes = tmp_path / "wound.jpg"
    notes.write_text("Wound 2 cm, clean edges. Photo to follow.\n")
    _ready_for_photo(nurse, stack)
    assert _refused(nurse, notes) == (
        "“wound.jpg” is a text file. capture archives camera photos (JPEG or HEIC): "
        "take the photo with the camera."
    )
    nurse.shot("12-refused-text")
    noise = tmp_path / "IMG_0001.HEIC"
    noise.write_bytes(bytes(range(256)) * 4)
    assert _refused(nurse, noise).startswith("“IMG_0001.HEIC” is not a photo: what is inside")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert "is empty" in _refused(nurse, empty)

    # A real HEIC with a JPEG's name is still a photo, and named as HEIC at review.
    heic = tmp_path / "IMG_5195.jpg"
    heic.write_bytes((SAMPLES / "heic" / "IMG_5195.HEIC").read_bytes())
    nurse.take_photo(heic)
    assert "HEIC photo: no preview" in nurse.page.inner_text("#review-list")


#: What js/sniff.js makes of the first bytes of a file (ISO BMFF: size, "ftyp", brands).
_KINDS = """async () => {
  const { kindOf } = await import('/app/js/sniff.js');
  const ascii = (text) => [...text].map((c) => c.charCodeAt(0));
  const ftyp = (...brands) => {
    const size = 8 + 4 * (brands.length + 1);
    return [0, 0, 0, size, ...ascii('ftyp'), ...ascii(brands[0]), 0, 0, 0, 0,
            ...brands.slice(1).flatMap(ascii)];
  };
  const cases = {
    jpeg: [0xff, 0xd8, 0xff, 0xe1, 0, 16],
    heic: ftyp('heic', 'mif1', 'heic'),
    heif_compatible: ftyp('mif1', 'miaf', 'heix'),
    avif: ftyp('avif', 'avif', 'mif1', 'miaf'),
    mp4: ftyp('isom', 'isom', 'mp41'),
    png: [0x89, ...ascii('PNG'), 13, 10, 26, 10],
    pdf: ascii('%PDF-1.7 '),
    text: ascii('hello, world'),
    empty: [],
  };
  return Object.fromEntries(Object.entries(cases).map(([k, v]) => [k, kindOf(new Uint8Array(v))]));
}"""


def test_the_phone_knows_a_photo_by_its_first_bytes(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-ngata"))
    assert nurse.page.evaluate(_KINDS) == {
        "jpeg": "jpeg",
        "heic": "heic",
        "heif_compatible": "heic",  # a HEIF brand among the compatible ones is enough
        "avif": "unknown",  # HEIF ("mif1") but AV1, not HEVC: refused
        "mp4": "video",
        "png": "png",
        "pdf": "pdf",
        "text": "text",
        "empty": "empty",
    }


def test_a_file_the_service_refuses_shows_its_reason_and_is_wiped(
    stack: WebStack, nurse: Phone, tmp_path: Path
) -> None:
    """A JPEG cut short gets past the phone (it is JPEG by its bytes); the service refuses it
    and says why."""
    _ready_for_photo(nurse, stack)
    nurse.take_photo(_damaged_jpeg(tmp_path / "photo.jpg"))
    nurse.send()
    nurse.wait_states("failed")
    state = nurse.page.inner_text("#send-list .state")
    assert state.startswith("Not sent: ") and "JPEG" in state
    assert nurse.queued() == []


def test_a_failed_photo_can_be_removed_or_retaken_of_the_same_site(
    stack: WebStack, nurse: Phone, tmp_path: Path
) -> None:
    """Failed cards used to say "take it again" with no way to, and piled up."""
    _ready_for_photo(nurse, stack, "enc-smith-a")
    site = nurse.page.inner_text("#camera-site")
    assert site == "Skin of palm of hand, right"
    nurse.take_photo(_damaged_jpeg(tmp_path / "first.jpg"))
    nurse.page.click("#review-more")
    nurse.take_photo(_damaged_jpeg(tmp_path / "second.jpg"))
    nurse.send()
    nurse.wait_states("failed", count=2)
    rows = nurse.page.locator("#send-list li")
    assert rows.count() == 2
    _audit(nurse, "failed photos with their actions", controls=4)
    nurse.shot("12-failed-actions")

    rows.first.get_by_role("button", name="Remove").click()
    nurse.page.wait_for_function("() => document.querySelectorAll('#send-list li').length === 1")
    assert nurse.queued() == []  # nothing of it is left on the phone

    rows.first.get_by_role("button", name="Retake").click()
    nurse.wait_screen("camera")
    assert nurse.page.inner_text("#camera-site") == site  # same site, same side
    assert rows.count() == 0
    nurse.take_photo(SAMPLES / "orientation" / "portrait_5.jpg")
    assert nurse.page.inner_text("#review-site") == site
    nurse.send()
    nurse.wait_states("verified")
    assert nurse.states() == ["verified"]
    assert "All photos are in the archive" in nurse.page.inner_text("#send-message")
    kept = [c for c in nurse.captures() if c["status"] == "verified"]
    assert [(c["body_site"], c["laterality"]) for c in kept] == [(SKIN_OF_HAND, "R")]


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
    """...and keeps the photo, sealed, for the next sign-in of the same user (issue 20)."""
    _ready_for_photo(nurse, stack)
    nurse.take_photo(SAMPLES / "gps" / "DSCN0021.jpg")
    nurse.page.context.clear_cookies()  # the session is gone (expired, signed out elsewhere)
    nurse.send()
    nurse.wait_states("signin")
    message = nurse.page.inner_text("#send-message")
    assert "open capture again from the patient's chart" in message
    assert "stays encrypted on this phone: it is offered to you when you open capture" in message
    assert "Kept encrypted on this phone" in nurse.page.inner_text("#send-list .state")
    (record,) = nurse.queued()

    nurse.launch(stack.launch_url("enc-ngata"))  # open capture again from the chart
    nurse.page.click('#queue-offer [data-action="send"]')
    nurse.wait_text("#queue-offer", "The photo is in NGATA, Aroha's record (verified)")
    assert nurse.queued() == []
    assert nurse.api(f"/api/v1/captures/{record['id']}")["status"] == "verified"


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
        nurse.wait_text("#send-list", "Safe with capture, not in the archive yet: ")
        shown = nurse.page.inner_text("#send-list")
        assert "archive" in shown.split("not in the archive yet:")[1]  # the service's reason
        assert "Next try " in shown and "(will retry)" not in shown
        assert nurse.states() == ["encoded"]  # safe on the service, waiting for the archive
        assert len(nurse.queued()) == 1  # the sealed copy stays until the archive has it
        nurse.shot("12-archive-retrying")
    finally:
        stack.orthanc.start()
    nurse.wait_states("verified", timeout=60_000)
    assert nurse.queued() == []
