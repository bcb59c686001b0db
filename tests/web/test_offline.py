"""Offline and no residue: a photo waits encrypted in IndexedDB while the network is gone,
is delivered exactly once when it returns, and is wiped as soon as the archive verifies it;
signing out with photos waiting keeps them, sealed, for the same user's next sign-in, who
may also delete them (issue 20; more in tests/web/test_queue.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, Route

from tests.conftest import SAMPLES
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

PHOTO_12MP = SAMPLES / "tests" / "42_IndexError.jpg"  # 4032x3024, 2.9 MB
SKIN_OF_POSTERIOR_LOWER_LEG = "47224004"


def _assert_sealed(nurse: Phone, photo: Path) -> None:
    """The stored photo is AES-GCM ciphertext (+16 byte tag), not the JPEG."""
    (record,) = nurse.queued()
    assert set(record) == {"id", "kid", "session", "context", "created", "purge_after", "accepted"}
    (sealed,) = nurse.indexeddb()["capture-queue"]["sealed"]
    assert sealed["id"] == record["id"]
    data = sealed["photo"]["data"]
    assert data["bytes"] == photo.stat().st_size + 16
    assert data["head"] != photo.read_bytes()[:4].hex()  # not FFD8FFE1...


def _drop_before_the_service(route: Route, page: Page) -> None:
    page.context.set_offline(True)
    route.continue_()  # fails: the browser is offline now


def _drop_the_answer(route: Route, page: Page) -> None:
    route.fetch()  # the service stores the photo and answers 202 ...
    page.context.set_offline(True)
    route.abort("internetdisconnected")  # ... but the phone never hears it


@pytest.mark.parametrize(
    "drop",
    [_drop_before_the_service, _drop_the_answer],
    ids=["before-the-service-has-it", "after-the-service-has-it"],
)
def test_offline_during_upload_then_online_delivers_once_and_leaves_nothing(
    stack: WebStack, nurse: Phone, drop: Callable[[Route, Page], None]
) -> None:
    nurse.launch(stack.launch_url("enc-smith-a"))
    nurse.tap_region(SKIN_OF_POSTERIOR_LOWER_LEG, "L", view="back")
    nurse.take_photo(PHOTO_12MP)
    in_flight: list[Route] = []
    nurse.page.route("**/api/v1/captures", lambda route: in_flight.append(route))  # held
    nurse.send()
    for _ in range(500):  # the route handler runs while Playwright waits
        if in_flight:
            break
        nurse.page.wait_for_timeout(20)
    assert nurse.states() == ["uploading"]
    drop(in_flight[0], nurse.page)  # the network goes while the upload is under way
    nurse.page.unroute("**/api/v1/captures")
    nurse.wait_states("offline")
    assert "Offline" in nurse.page.inner_text("#net-status")
    _assert_sealed(nurse, PHOTO_12MP)
    nurse.shot("06-sending-offline")

    nurse.page.context.set_offline(False)
    nurse.wait_states("verified")
    assert nurse.states() == ["verified"]
    assert nurse.queued() == []  # wiped as soon as the archive showed it
    (capture,) = nurse.captures()
    assert capture["status"] == "verified" and capture["body_site"] == SKIN_OF_POSTERIOR_LOWER_LEG
    assert stack.patient_sop_uids("100002").count(capture["sop_instance_uid"]) == 1  # once


def _waiting_offline(stack: WebStack, nurse: Phone, side: str, photo: Path) -> None:
    """A photo of the front of a lower leg, sent with no network: it waits in the queue."""
    nurse.launch(stack.launch_url("enc-ngata"))
    nurse.tap_region("25763004", side)
    nurse.take_photo(photo)
    nurse.page.context.set_offline(True)
    nurse.send()
    nurse.wait_states("offline")
    assert len(nurse.queued()) == 1


def test_signing_out_with_photos_waiting_keeps_them_for_the_next_sign_in_to_send_or_delete(
    stack: WebStack, nurse: Phone
) -> None:
    _waiting_offline(stack, nurse, "L", SAMPLES / "gps" / "DSCN0021.jpg")
    (record,) = nurse.queued()
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    nurse.page.on("dialog", answer)
    nurse.page.click("#send-finish")
    nurse.page.wait_for_selector("#patient-message:not([hidden])")
    assert asked == [
        "1 photo has not been sent yet. It stays encrypted on this phone and is offered to you "
        "when you open capture again (deleted after 72 h if not sent). Sign out now?"
    ]
    assert "1 photo not sent yet stays encrypted on this phone" in nurse.page.inner_text(
        "#patient-message"
    )
    assert nurse.page.is_hidden("#net-status")  # not "photos stay on this phone" any more
    assert [r["id"] for r in nurse.queued()] == [record["id"]]  # kept, still sealed
    (entry,) = nurse.indexeddb()["capture-queue"]["custody"]
    assert entry["wrapped"]["bytes"] == 40

    # The same nurse, next patient: the earlier patient's photo is offered; she deletes it.
    nurse.page.context.set_offline(False)
    nurse.launch(stack.launch_url("enc-smith-a"))
    offer = nurse.page.locator("#queue-offer")
    assert "1 photo of NGATA, Aroha (born 2014-05-05, MRN 100005)" in offer.inner_text()
    nurse.shot("20-earlier-photos-offered")
    offer.locator('[data-action="discard"]').click()
    assert "Delete the photo of NGATA, Aroha for good?" in offer.inner_text()
    offer.locator('[data-action="discard-yes"]').click()
    nurse.wait_text("#queue-offer", "The photo of NGATA, Aroha was deleted from this phone.")
    assert nurse.queued() == []
    assert nurse.page.is_visible("#queue-offer-close")  # nothing more to decide
    deadline = time.monotonic() + 15
    while not (
        rows := [r for r in stack.audit_events("queue-purge") if "discarded" in (r[2] or "")]
    ):
        assert time.monotonic() < deadline, "the deletion was not audited"
        time.sleep(0.2)
    assert rows[-1][:2] == ("success", "100005")  # the user's choice, for that patient


def _back_online(nurse: Phone) -> None:
    """The network returns: until the offline notice is gone."""
    nurse.page.context.set_offline(False)
    nurse.page.wait_for_function(
        "() => !document.querySelector('#net-status').textContent.startsWith('Offline')"
    )


def test_back_online_is_a_notice_of_the_moment(stack: WebStack, nurse: Phone) -> None:
    """ "Back online: sending." is said only while something is being sent, and goes with the
    screen it was said on."""
    nurse.launch(stack.launch_url("enc-ngata"))
    nurse.page.context.set_offline(True)
    nurse.wait_text("#net-status", "Offline")
    _back_online(nurse)
    assert nurse.page.is_hidden("#net-status")  # nothing to send: nothing to say

    nurse.tap_region("25763004", "L")
    nurse.take_photo(SAMPLES / "gps" / "DSCN0021.jpg")
    nurse.page.context.set_offline(True)
    nurse.send()
    nurse.wait_states("offline")
    _back_online(nurse)
    assert nurse.page.inner_text("#net-status") == "Back online: sending."
    nurse.page.click("#send-other")
    nurse.wait_screen("site")
    assert nurse.page.is_hidden("#net-status")


def test_signing_out_leaves_no_network_notice(stack: WebStack, nurse: Phone) -> None:
    """ "Back online: sending." stayed on the signed-out screen, where nothing is sent."""
    _waiting_offline(stack, nurse, "R", SAMPLES / "gps" / "DSCN0010.jpg")
    nurse.page.on("dialog", lambda dialog: dialog.accept())
    _back_online(nurse)
    assert nurse.page.inner_text("#net-status") == "Back online: sending."
    nurse.page.click("#send-finish")
    nurse.wait_text("#patient-message", "Signed out")
    assert nurse.page.is_hidden("#net-status")
