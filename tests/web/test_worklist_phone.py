"""Issue 19 on the phone (real Chromium, the shared web stack): the worklist follows another
device's claim without a reload, each refusal reads in the phone's words (i18n/en.js), and a
completion the worklist server refuses is said at sign-out, then done once fixed.

The stack's sandbox worklist is shared by the browser suite, so these tests make their own
workitems (Create, PS3.18 11.4) for the station's list (WOUND-PHONE-01, today).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import httpx

from capture_api.capture import Retrieval
from capture_api.context.worklist import ProducedInstance, WorklistClient
from ehr_sandbox.ups_server import workitems
from tests.conftest import SAMPLES
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WORKLIST_STATION, WebStack

pytestmark = requires_chromium

MEDIA = {"Accept": "application/dicom+json", "Content-Type": "application/dicom+json"}


def _create(stack: WebStack, uid: str, family: str, mrn: str, *, code: bool = True) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S+0000")
    station = {
        "00080100": {"vr": "SH", "Value": [WORKLIST_STATION]},
        "00080102": {"vr": "SH", "Value": ["99SANDBOX"]},
        "00080104": {"vr": "LO", "Value": ["Wound care photo station"]},
    }
    item: dict[str, Any] = {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": f"{family}^Test"}]},
        "00100020": {"vr": "LO", "Value": [mrn]},
        "00404005": {"vr": "DT", "Value": [now]},
        "00404025": {"vr": "SQ", "Value": [station]},
    }
    if code:
        workitem_code = {**station, "00080100": {"vr": "SH", "Value": ["CLINPHOTO"]}}
        item["00404018"] = {"vr": "SQ", "Value": [workitem_code]}
    url = f"{stack.sandbox.state.base_url}/dicom-web/workitems?{uid}"
    created = httpx.post(url, content=json.dumps([item], sort_keys=True), headers=MEDIA)
    assert created.status_code == 201, created.headers.get("warning")


def _worklist(stack: WebStack) -> WorklistClient:
    return WorklistClient(f"{stack.sandbox.state.base_url}/dicom-web")


def _buttons(nurse: Phone) -> list[str]:
    return nurse.page.locator("#worklist button").all_inner_texts()


def _wait_list(nurse: Phone, present: str, absent: str | None = None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = " ".join(_buttons(nurse))
        if present in shown and (absent is None or absent not in shown):
            return
        time.sleep(0.1)
    raise AssertionError(f"the list shows {_buttons(nurse)}")


def test_the_list_follows_another_devices_claim_and_refusals_read_in_the_phones_words(
    stack: WebStack, nurse: Phone
) -> None:
    taken, done, stays = (f"1.2.826.0.1.3680043.10.19.{n}" for n in (1, 2, 3))
    _create(stack, taken, "Taken", "I19-001")
    _create(stack, done, "Done", "I19-002")
    _create(stack, stays, "Stays", "I19-003")
    nurse.page.goto(f"{stack.api.url}/launch")
    nurse.page.wait_for_selector("#patient-choose:not([hidden])")
    _wait_list(nurse, "I19-001")
    assert "I19-002" in " ".join(_buttons(nurse))

    # Another device claims "Taken": it leaves this list by itself, with no reload.
    with _worklist(stack) as other_device:
        other_device.claim(taken)
    _wait_list(nurse, "I19-003", absent="I19-001")
    nurse.shot("19-list-after-another-claim")

    # "Done" is completed elsewhere while still shown here (before the next poll):
    # the pick is refused in the phone's words, and the list drops it at once.
    with _worklist(stack) as other_device:
        transaction = other_device.claim(done)
        produced = [ProducedInstance("1.2.3", "1.2.3.4", "1.2.3.4.5")]
        other_device.complete(done, transaction, produced, Retrieval(ae_title="PACS"))
    nurse.page.locator("#worklist button", has_text="I19-002").click(timeout=3000)
    nurse.wait_text("#patient-message", "already completed on the worklist")
    message = nurse.page.inner_text("#patient-message")
    assert message == (
        "This encounter is already completed on the worklist: nothing is left to photograph."
    )
    _wait_list(nurse, "I19-003", absent="I19-002")
    assert "No patient selected" in nurse.banner()


def test_a_taken_pick_says_another_device_has_it(stack: WebStack, nurse: Phone) -> None:
    uid = "1.2.826.0.1.3680043.10.19.4"
    _create(stack, uid, "Raced", "I19-004")
    nurse.page.goto(f"{stack.api.url}/launch")
    _wait_list(nurse, "I19-004")
    with _worklist(stack) as other_device:
        other_device.claim(uid)
    nurse.page.locator("#worklist button", has_text="I19-004").click(timeout=3000)
    nurse.wait_text("#patient-message", "Another device")
    assert nurse.page.inner_text("#patient-message") == (
        "Another device is already photographing this patient: the worklist item is taken. "
        "Pick another patient."
    )


def test_a_refused_completion_is_said_at_sign_out_and_done_once_fixed(
    stack: WebStack, nurse: Phone
) -> None:
    """The item has no Scheduled Workitem Code Sequence, so nothing can fill the Performed
    Workitem Code Sequence COMPLETED needs (PS3.4 Table CC.2.5-3): the server refuses; the
    phone says so at sign-out; the scheduler adds the code and capture completes it."""
    uid = "1.2.826.0.1.3680043.10.19.5"
    _create(stack, uid, "Refused", "I19-005", code=False)
    nurse.page.goto(f"{stack.api.url}/launch")
    _wait_list(nurse, "I19-005")
    nurse.page.locator("#worklist button", has_text="I19-005").click()
    nurse.page.wait_for_selector("#patient-confirm:not([hidden])")
    nurse.page.click("#patient-yes")
    nurse.wait_screen("site")
    nurse.tap_region("84607009", "L", view="back")  # left heel
    nurse.take_photo(SAMPLES / "orientation" / "landscape_2.jpg")
    nurse.send()
    nurse.wait_states("verified")
    nurse.page.click("#send-finish")
    nurse.wait_text("#patient-message", "refused the completion")
    message = nurse.page.inner_text("#patient-message")
    assert message.startswith("Signed out.")
    assert "The worklist server refused the completion: 409" in message
    assert "PerformedWorkitemCodeSequence (0040,4019)" in message
    assert message.endswith("capture will try again.")
    nurse.shot("19-refused-completion")

    item = workitems(stack.sandbox.state)[uid]
    assert item["00741000"]["Value"] == ["IN PROGRESS"]
    item["00404018"] = {  # the scheduler fixes the item; capture's worker retries
        "vr": "SQ",
        "Value": [
            {
                "00080100": {"vr": "SH", "Value": ["CLINPHOTO"]},
                "00080102": {"vr": "SH", "Value": ["99SANDBOX"]},
                "00080104": {"vr": "LO", "Value": ["Clinical photography"]},
            }
        ],
    }
    deadline = time.monotonic() + 30
    while item["00741000"]["Value"] != ["COMPLETED"]:
        assert time.monotonic() < deadline, "the refused completion was not retried"
        time.sleep(0.1)
