"""The phone flow in both engines: Chromium (Android's) and WebKit (Safari's, so most
clinicians' iPhones), written once against ``PhoneDriver`` (tests/web/phone.py).

WebKit here is Debian's WebKitGTK under Xvfb, driven by Selenium through WebKitWebDriver
(tests/webkit/); one browser process for the module, a clean profile for each test. It is not
iOS: no touch events, no iOS viewport or home-screen mode, no HEIC conversion on upload.

Offline in WebKit is the phone's network going away for real: the browser lives in its own
network namespace, the default route is deleted (GLib's monitor, then WebKit, set
``navigator.onLine`` to false and fire ``offline``) and every connection to the stack is reset
(XHR fails). In Chromium it is Playwright's ``set_offline``. A feature WebKit lacks fails
these tests; none is skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES
from tests.web.browser import phone as chromium_phone
from tests.web.phone import PhoneDriver
from tests.web.stack import WebStack
from tests.webkit.phone import (
    EXPECTED,
    WebKitBrowser,
    WebKitPhone,
)

SKIN_OF_ANTERIOR_FOREARM = "70559009"
SKIN_OF_ANTERIOR_LOWER_LEG = "25763004"
SKIN_OF_POSTERIOR_LOWER_LEG = "47224004"
SCT_LEFT = "7771000"
PHOTO = SAMPLES / "mobile" / "jolla.jpg"
PHOTO_12MP = SAMPLES / "tests" / "42_IndexError.jpg"  # 4032x3024, 2.9 MB
JPEG_SOI = "ffd8ff"  # hex: what a JPEG starts with


@pytest.fixture
def webkit_phone(webkit: WebKitBrowser) -> Iterator[WebKitPhone]:
    device = webkit.fresh_phone()
    yield device
    device.collect_errors()
    assert device.errors == [], device.errors


def _new_in_orthanc(stack: WebStack, patient_id: str, before: set[str]) -> list[str]:
    """SOP Instance UIDs Orthanc holds for the patient that were not there ``before``, each as
    often as it is stored (so a photo archived twice, under any UID, shows)."""
    return [uid for uid in stack.patient_sop_uids(patient_id) if uid not in before]


def _find_in_queue(phone: PhoneDriver, needles: list[str]) -> list[str]:
    """Every ``needle`` (hex bytes) found in any stored record, binary values included."""
    script = """async (needles) => {
      const request = (r) => new Promise((ok, ko) => {
        r.onsuccess = () => ok(r.result);
        r.onerror = () => ko(r.error);
      });
      const hex = (bytes) => [...bytes].map((x) => x.toString(16).padStart(2, "0")).join("");
      const texts = [];
      const walk = (value) => {
        if (value instanceof ArrayBuffer) texts.push(hex(new Uint8Array(value)));
        else if (ArrayBuffer.isView(value))
          texts.push(hex(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)));
        else if (value && typeof value === "object") Object.values(value).forEach(walk);
        else texts.push(hex(new TextEncoder().encode(String(value))));
      };
      const db = await request(indexedDB.open("capture-queue"));
      for (const store of db.objectStoreNames) {
        walk(await request(db.transaction(store).objectStore(store).getAll()));
      }
      db.close();
      const at = (text, needle) => {  // on a byte boundary only
        for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
          if (i % 2 === 0) return true;
        }
        return false;
      };
      return needles.filter((needle) => texts.some((text) => at(text, needle)));
    }"""
    found: list[str] = phone.evaluate(script, needles)
    return found


def _assert_sealed(phone: PhoneDriver, photo: Path, readable: list[str]) -> None:
    """The one queued record is AES-GCM ciphertext (+16 byte tag): not the JPEG, and none of
    ``readable`` (patient name, MRN, site code...) in any byte of the queue's database."""
    (record,) = phone.queued()
    assert set(record) == {"id", "kid", "session", "context", "created", "purge_after", "accepted"}
    (sealed,) = phone.indexeddb()["capture-queue"]["sealed"]
    assert set(sealed) == {"id", "photo", "info"} and sealed["id"] == record["id"]
    data: dict[str, Any] = sealed["photo"]["data"]
    assert data["bytes"] == photo.stat().st_size + 16
    assert not data["head"].startswith(JPEG_SOI)
    needles = [JPEG_SOI + photo.read_bytes()[3:8].hex()] + [s.encode().hex() for s in readable]
    assert _find_in_queue(phone, needles) == []
    # The search does find what is there: the record's own id, stored in clear as its key.
    assert _find_in_queue(phone, [record["id"].encode().hex()]) != []


def test_map_photo_send_reaches_orthanc_once_and_leaves_nothing(
    stack: WebStack, phone: PhoneDriver
) -> None:
    before = set(stack.patient_sop_uids("100001"))
    phone.launch(stack.launch_url("enc-muller"))
    banner = phone.banner()
    assert "MÜLLER, Jürgen" in banner and "MRN 100001" in banner and "V-5001" in banner
    phone.shot("engines-01-site")
    phone.tap_region(SKIN_OF_ANTERIOR_FOREARM, "L")
    assert phone.text("#details-site") == "Skin of anterior surface of forearm, left"
    phone.take_photo(PHOTO)
    phone.shot("engines-02-review")
    phone.send()
    phone.wait_states("verified")
    assert phone.states() == ["verified"]
    phone.shot("engines-03-verified")

    (capture,) = phone.captures()
    assert capture["status"] == "verified"
    ds = stack.archived(capture["sop_instance_uid"])
    assert ds.PatientID == "100001" and str(ds.PatientName) == "Müller^Jürgen"
    (region,) = ds.AnatomicRegionSequence
    assert region.CodeValue == SKIN_OF_ANTERIOR_FOREARM
    assert region.AnatomicRegionModifierSequence[0].CodeValue == SCT_LEFT
    assert ds.ImageLaterality == "L"
    assert _new_in_orthanc(stack, "100001", before) == [capture["sop_instance_uid"]]

    assert phone.queued() == []
    kept = phone.storage()
    assert kept["localStorage"] == [] and kept["sessionStorage"] == []
    assert all(not path.startswith("/api/") for paths in kept["caches"].values() for path in paths)

    (entry,) = phone.indexeddb()["capture-queue"]["custody"]
    assert entry["wrapped"] is None  # the device key went with the last photo
    phone.click("#send-finish")
    phone.wait_text("#patient-message", "Nothing from this session is left on this phone")
    assert "No patient selected" in phone.banner()
    assert phone.indexeddb()["capture-queue"]["custody"] == []  # and the queue key's id
    released = [d for _, _, d in stack.audit_events("queue-key") if d == f"released {entry['kid']}"]
    assert released  # destroyed at the service: nothing can open anything of this phone's now


def test_offline_photo_waits_encrypted_then_is_delivered_once(
    stack: WebStack, phone: PhoneDriver
) -> None:
    before = set(stack.patient_sop_uids("100003"))
    phone.launch(stack.launch_url("enc-smith-b"))
    phone.tap_region(SKIN_OF_POSTERIOR_LOWER_LEG, "L", view="back")
    phone.take_photo(PHOTO_12MP)
    phone.go_offline()
    phone.send()
    phone.wait_states("offline")
    assert "Offline" in phone.text("#net-status")
    _assert_sealed(phone, PHOTO_12MP, ["Smith", "John", "100003", SKIN_OF_POSTERIOR_LOWER_LEG])
    phone.shot("engines-04-offline")

    phone.go_online()
    phone.wait_states("verified")
    assert phone.states() == ["verified"]
    assert phone.queued() == []  # wiped as soon as the archive showed it
    (capture,) = phone.captures()
    assert capture["status"] == "verified" and capture["body_site"] == SKIN_OF_POSTERIOR_LOWER_LEG
    assert _new_in_orthanc(stack, "100003", before) == [capture["sop_instance_uid"]]


def test_photos_of_a_closed_tab_are_sent_when_capture_is_opened_again(
    stack: WebStack, phone: PhoneDriver
) -> None:
    """Issue 20: the queue outlives the page (its key is the service's, for this user)."""
    before = set(stack.patient_sop_uids("100005"))
    phone.launch(stack.launch_url("enc-ngata"))
    phone.tap_region(SKIN_OF_ANTERIOR_LOWER_LEG, "R")
    phone.take_photo(SAMPLES / "gps" / "DSCN0010.jpg")
    phone.go_offline()
    phone.send()
    phone.wait_states("offline")
    assert len(phone.queued()) == 1
    # The tab is closed (or the phone killed it) before the network came back.
    later = phone.reopen()
    later.go_online()
    later.launch(stack.launch_url("enc-ngata"))  # the nurse opens capture again: same user
    later.wait_text("#queue-offer", "1 photo of NGATA, Aroha")
    later.click('#queue-offer [data-action="send"]')
    later.wait_text("#queue-offer", "The photo is in NGATA, Aroha's record (verified)")
    assert later.queued() == []
    (uid,) = _new_in_orthanc(stack, "100005", before)
    assert stack.archived(uid).PatientID == "100005"
    assert later.errors == []


# --- WebKit only ----------------------------------------------------------------------------


def test_webkit_is_a_phone_with_what_the_app_needs(
    webkit_phone: WebKitPhone, stack: WebStack
) -> None:
    """The window is an iPhone's viewport at 2x, and the engine has every feature the app uses
    (a missing one fails here, by name, before a flow test fails for a vaguer reason)."""
    webkit_phone.launch(stack.launch_url("enc-muller"))
    found = webkit_phone.js(
        """return {
          viewport: [innerWidth, innerHeight, devicePixelRatio],
          secure: isSecureContext,
          subtle: !!crypto.subtle && typeof crypto.randomUUID === "function",
          locks: !!navigator.locks,
          idbDatabases: typeof indexedDB.databases === "function",
          serviceWorker: "serviceWorker" in navigator,
          cacheStorage: "caches" in window,
          camera: !!navigator.mediaDevices?.getUserMedia,
          online: navigator.onLine,
          agent: navigator.userAgent,
        }"""
    )
    assert found.pop("viewport") == [390, 844, 2]
    assert "iPhone" in found.pop("agent")
    assert found == dict.fromkeys(found, True), found
    assert webkit_phone.evaluate(
        "async () => !!(await navigator.serviceWorker.ready).active"
    )  # the offline shell is installed

    # The page's error record (what the fixture asserts empty) does see what goes wrong: a
    # script from elsewhere, which the service's CSP forbids, and a console.error.
    webkit_phone.js(
        "const s = document.createElement('script');"
        "s.src = `http://${arguments[0]}.invalid/x.js`; document.body.append(s);"
        "console.error(arguments[0]);",
        EXPECTED,
    )
    seen = webkit_phone.until("return window.__captureErrors.length >= 2 && __captureErrors")
    assert any(e.startswith("CSP script-src") and EXPECTED in e for e in seen), seen
    assert EXPECTED in seen, seen
    webkit_phone.js("window.__captureErrors.length = 0")


def test_webkit_live_camera_photo_reaches_orthanc(
    stack: WebStack, webkit_phone: WebKitPhone
) -> None:
    """The in-page camera (getUserMedia, WebKit's mock device), a frame drawn on a canvas and
    encoded as JPEG by WebKit, sent and archived at the camera's full resolution."""
    phone = webkit_phone
    phone.launch(stack.launch_url("enc-muller"))
    phone.tap_region("24527008", "R")  # the right wrist, front
    phone.click("#details-take")
    phone.wait_screen("camera")
    phone.click("#live-start")
    width, height = phone.until(
        "const v = document.querySelector('#live-video');"
        "return v.videoWidth > 0 && [v.videoWidth, v.videoHeight]",
        what="the live preview",
    )
    phone.shot("live-camera")
    phone.click("#live-shutter")
    phone.wait_text("#camera-count", "1 photo taken")
    phone.click("#camera-review")
    phone.wait_screen("review")
    assert phone.js("return document.querySelector('#live-video').srcObject") is None  # off
    phone.send()
    phone.wait_states("verified")
    (capture,) = phone.captures()
    ds = stack.archived(capture["sop_instance_uid"])
    assert (ds.Columns, ds.Rows) == (width, height)
    assert ds.PatientID == "100001" and ds.ImageLaterality == "R"


@pytest.mark.parametrize(
    "after_answer", [False, True], ids=["before-the-service-has-it", "after-the-service-has-it"]
)
def test_webkit_network_lost_during_upload_delivers_once_when_back(
    stack: WebStack, webkit_phone: WebKitPhone, after_answer: bool
) -> None:
    """Like test_offline.py's Chromium test, but the connection really breaks on the wire:
    as the upload starts, or once the service has stored it and answered (the phone never
    hears the answer and sends again: the capture id makes that the same photo)."""
    phone = webkit_phone
    before = set(stack.patient_sop_uids("100002"))
    phone.launch(stack.launch_url("enc-smith-a"))
    phone.tap_region(SKIN_OF_POSTERIOR_LOWER_LEG, "L", view="back")
    phone.take_photo(PHOTO_12MP)
    tripped = phone.network.trip(b"POST /api/v1/captures ", after_answer=after_answer)
    phone.send()
    assert tripped.wait(30), "the upload never started"
    phone.network.go_offline()  # the route goes too: the page sees it within seconds
    phone.wait_states("offline")
    _assert_sealed(phone, PHOTO_12MP, ["Smith", "John", "100002", SKIN_OF_POSTERIOR_LOWER_LEG])
    if after_answer:  # the service has it and delivers it while the phone is offline
        deadline = time.monotonic() + 30
        while not _new_in_orthanc(stack, "100002", before):
            assert time.monotonic() < deadline, "the service never archived the photo"
            time.sleep(0.2)
    else:
        assert _new_in_orthanc(stack, "100002", before) == []

    phone.go_online()
    phone.wait_states("verified")
    assert phone.queued() == []
    (capture,) = phone.captures()
    assert _new_in_orthanc(stack, "100002", before) == [capture["sop_instance_uid"]]


# --- lesions: pinned in one visit, on the map of the next on another device --------------------

CHEEK = "36141000"  # Skin of cheek (CID 4029)
FOLLOW_UP = "enc-muller-2"


@pytest.fixture
def follow_up_visit(stack: WebStack) -> Iterator[str]:
    """A second encounter of Müller's in the EHR (a dermatology follow-up), for this test."""
    encounters = stack.sandbox.state.encounters
    visit = json.loads(json.dumps(encounters["enc-muller"]))
    visit["id"] = FOLLOW_UP
    visit["identifier"][0]["value"] = "V-5006"
    encounters[FOLLOW_UP] = visit
    yield FOLLOW_UP
    del encounters[FOLLOW_UP]


@pytest.fixture
def another_device(request: pytest.FixtureRequest) -> Iterator[Callable[[], PhoneDriver]]:
    """A second phone with nothing of the first (its own cookies and storage), same engine."""
    engine = request.node.callspec.params["phone"]
    with ExitStack() as devices:

        def make() -> PhoneDriver:
            if engine == "webkit":
                device: PhoneDriver = request.getfixturevalue("webkit").fresh_phone()
                return device
            playwright = request.getfixturevalue("playwright")
            browser = request.getfixturevalue("browser")
            return devices.enter_context(chromium_phone(playwright, browser))

        yield make


def _lesion_pins(phone: PhoneDriver) -> list[str]:
    labels: list[str] = phone.evaluate(
        "async () => [...document.querySelectorAll('#bodymap .pin')].map((p) => p.dataset.label)"
    )
    return labels


def test_a_lesion_pinned_in_one_visit_is_on_the_map_of_the_next_on_another_device(
    stack: WebStack,
    phone: PhoneDriver,
    another_device: Callable[[], PhoneDriver],
    follow_up_visit: str,
) -> None:
    """The nurse pins a lesion on the left cheek (face close-up) and photographs it; at the
    follow-up, launched from the EHR on another phone, the lesion is on the map and
    "photograph L<n> again" is one tap, with the same lesion's photos as earlier photos."""
    before = set(stack.patient_sop_uids("100001"))
    phone.launch(stack.launch_url("enc-muller"))
    phone.click("#view-head")
    # The patient's lesions as the service has them: the map's pins arrive asynchronously, so
    # counting them right after the launch races the page (the other engine may have pinned
    # one on this patient already).
    context_id = phone.api("/api/v1/session")["context_id"]
    known = phone.api(f"/api/v1/contexts/{context_id}/lesions")
    phone.click("#pin-toggle")
    phone.click(f'#bodymap [data-code="{CHEEK}"][data-side="L"]')
    phone.wait_text("#pin-site", "Skin of cheek, left")
    phone.fill("#pin-description", "pigmented, 4 mm")
    phone.shot("lesion-01-pin")
    phone.click("#pin-box button[type=submit]")
    phone.wait_screen("details")
    label = f"L{len(known) + 1}"
    assert phone.text("#details-site") == "Skin of cheek, left"
    assert phone.text("#details-lesion") == f"Lesion {label}: pigmented, 4 mm"
    phone.take_photo(PHOTO)
    phone.send()
    phone.wait_states("verified")
    (capture,) = phone.captures()
    ds = stack.archived(capture["sop_instance_uid"])
    assert ds.TrackingID == label and ds.TrackingUID == capture["lesion"]
    assert _new_in_orthanc(stack, "100001", before) == [capture["sop_instance_uid"]]

    later = another_device()
    later.launch(stack.launch_url(follow_up_visit))
    assert "V-5006" in later.banner()
    later.wait_text("#lesion-list", f"Photograph {label} again")
    later.click("#view-head")
    assert label in _lesion_pins(later)
    later.shot("lesion-02-next-visit")
    later.click(f'#lesion-list button[data-lesion="{capture["lesion"]}"]')  # one tap
    later.wait_screen("details")
    assert later.text("#details-lesion") == f"Lesion {label}: pigmented, 4 mm"
    later.wait_text("#priors", "")
    sops: list[str] = later.evaluate(
        "async () => { for (let i = 0; i < 100 && !document.querySelector('#priors li'); i++)"
        " await new Promise((r) => setTimeout(r, 100));"
        " return [...document.querySelectorAll('#priors li')].map((li) => li.dataset.sop); }"
    )
    assert sops == [capture["sop_instance_uid"]]  # the lesion's own last photo: the overlay
    overlay: str = later.evaluate("async () => document.querySelector('#live-overlay').src")
    assert "/timeline/" in overlay and capture["sop_instance_uid"] in overlay
