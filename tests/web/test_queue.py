"""No photo lost when the phone drops the page (issue 20), in Chromium and in WebKit.

Photos waiting to be sent survive a reload, a closed tab and a closed browser, still
encrypted: the device key is stored only wrapped by the queue key the service hands to the
same user's session (web_client/js/vault.js, js/custody.js). A tampered or truncated record
fails its authentication tag and is reported, never sent; another user's photos are neither
readable nor sent; the retention limit purges with a message and an audit event.

Tests written against ``PhoneDriver`` run in both engines (tests/web/test_engines.py says how
WebKit is driven); the closed-browser tests run each engine with a profile folder of their
own, which is then read byte by byte for photo bytes or patient names.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Route

from tests.conftest import SAMPLES
from tests.web.browser import Phone
from tests.web.phone import PhoneDriver
from tests.web.stack import WebStack

PHOTOS = [SAMPLES / "gps" / "DSCN0010.jpg", SAMPLES / "gps" / "DSCN0021.jpg"]
SKIN_OF_ANTERIOR_LOWER_LEG = "25763004"
SKIN_OF_ANTERIOR_FOREARM = "70559009"
RECORD_FIELDS = {
    "id",
    "kid",
    "session",
    "context",
    "created",
    "purge_after",
    "accepted",
}


# --- helpers ------------------------------------------------------------------------------------


def queue_two_offline(phone: PhoneDriver, code: str, side: str) -> None:
    """Two photos of one site, sent with no network: both wait, encrypted."""
    phone.tap_region(code, side)
    phone.take_photo(PHOTOS[0])
    phone.click("#review-more")
    phone.wait_screen("camera")
    phone.take_photo(PHOTOS[1])
    phone.go_offline()
    phone.send()
    phone.wait_states("offline")
    deadline = time.monotonic() + 15
    while len(phone.queued()) < 2:
        assert time.monotonic() < deadline, phone.queued()
        time.sleep(0.1)


def queue_one_offline(phone: PhoneDriver, code: str, side: str, photo: Path) -> dict[str, Any]:
    """One photo of a site, sent with no network: it waits, encrypted; its record."""
    phone.tap_region(code, side)
    phone.take_photo(photo)
    phone.go_offline()
    phone.send()
    phone.wait_states("offline")
    (record,) = phone.queued()
    return record


def new_in_orthanc(stack: WebStack, patient_id: str, before: set[str]) -> list[str]:
    """SOP Instance UIDs Orthanc holds for the patient that were not there ``before``, each as
    often as it is stored (so a photo archived twice shows twice)."""
    return [uid for uid in stack.patient_sop_uids(patient_id) if uid not in before]


def wait_in_orthanc(stack: WebStack, patient_id: str, before: set[str], count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(found := new_in_orthanc(stack, patient_id, before)) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    return found


def send_the_offered_photo(phone: PhoneDriver, stack: WebStack, before: set[str]) -> None:
    """An earlier sign-in's photo of Ngata is offered (within 15 s), sent, archived once
    under her ID, and gone from the phone."""
    phone.wait_text("#queue-offer", "1 photo of NGATA, Aroha", timeout=15_000)
    phone.click('#queue-offer [data-action="send"]')
    phone.wait_text("#queue-offer", "The photo is in NGATA, Aroha's record (verified)")
    (uid,) = wait_in_orthanc(stack, "100005", before, 1)
    assert stack.archived(uid).PatientID == "100005"
    assert phone.queued() == [] and phone.errors == []


def custody(phone: PhoneDriver) -> list[dict[str, Any]]:
    """The phone's custody entries (queue key ids and wrapped device keys)."""
    return phone.indexeddb().get("capture-queue", {}).get("custody", [])


# --- both engines -------------------------------------------------------------------------------

#: Records every text ``#send-message`` shows from now on (``window.sendMessages``): a message
#: that says the restored photos are being sent can be gone again, replaced by "all in the
#: archive", before a test reads it once the send screen shows (WebKit, in CI).
WATCH_SEND_MESSAGE = """async () => {
  window.sendMessages = [];
  const note = () => {
    const shown = document.querySelector("#send-message")?.textContent ?? "";
    if (shown && window.sendMessages.at(-1) !== shown) window.sendMessages.push(shown);
  };
  new MutationObserver(note).observe(document.documentElement, {
    subtree: true, childList: true, characterData: true,
  });
  note();
}"""


def test_two_photos_queued_offline_survive_a_reload_and_are_sent_once(
    stack: WebStack, phone: PhoneDriver
) -> None:
    before = set(stack.patient_sop_uids("100004"))
    phone.launch(stack.launch_url("enc-okada"))
    queue_two_offline(phone, SKIN_OF_ANTERIOR_LOWER_LEG, "L")
    records = phone.queued()
    assert {frozenset(r) for r in records} == {frozenset(RECORD_FIELDS)}
    (entry,) = custody(phone)
    assert entry["wrapped"]["bytes"] == 40  # an AES-256 key wrapped with AES-KW (RFC 3394)

    phone.reload()  # the tab is discarded while offline; the shell comes from the cache
    phone.wait_text("#patient-message", "carries on by itself when the network returns")
    phone.evaluate(WATCH_SEND_MESSAGE)
    phone.go_online()
    phone.wait_screen("send")
    phone.wait_states("verified", 2)
    assert phone.states() == ["verified", "verified"]
    shown = phone.evaluate("async () => window.sendMessages")
    assert any("2 photos taken before the page closed are being sent" in m for m in shown), shown
    queue = phone.indexeddb()["capture-queue"]
    assert queue["photos"] == queue["sealed"] == []  # IndexedDB holds no photo any more
    assert [e["wrapped"] for e in custody(phone)] == [None]  # no key material left for them
    ids = sorted(r["id"] for r in records)
    assert sorted(c["capture_id"] for c in phone.captures()) == ids
    assert all(c["status"] == "verified" for c in phone.captures())
    found = wait_in_orthanc(stack, "100004", before, 2)
    assert sorted(found) == sorted(c["sop_instance_uid"] for c in phone.captures())  # once each


def test_a_tampered_or_truncated_record_is_refused_reported_and_never_sent(
    stack: WebStack, phone: PhoneDriver
) -> None:
    phone.launch(stack.launch_url("enc-ngata"))
    queue_two_offline(phone, SKIN_OF_ANTERIOR_FOREARM, "R")
    ids = sorted(r["id"] for r in phone.queued())
    # One photo's ciphertext gets one bit flipped, the other's metadata loses its tail.
    damage = """async (ids) => {
      const request = (r) => new Promise((ok, ko) => {
        r.onsuccess = () => ok(r.result);
        r.onerror = () => ko(r.error);
      });
      const db = await request(indexedDB.open("capture-queue"));
      const store = db.transaction("sealed", "readwrite").objectStore("sealed");
      const [flip, cut] = await Promise.all(ids.map((id) => request(store.get(id))));
      const bytes = new Uint8Array(flip.photo.data.slice(0));
      bytes[1000] ^= 1;
      flip.photo.data = bytes.buffer;
      cut.info.data = cut.info.data.slice(0, cut.info.data.byteLength - 7);
      await request(store.put(flip));
      await request(store.put(cut));
      db.close();
      return true;
    }"""
    assert phone.evaluate(damage, ids)
    phone.reload()
    phone.go_online()
    phone.wait_text("#site-message", "damaged on this phone")
    phone.wait_states("failed")
    assert "integrity check" in phone.text("#send-list")
    assert phone.queued() == []
    assert phone.captures() == []  # neither reached the service
    deadline = time.monotonic() + 15
    while (
        len(purges := [r for r in stack.audit_events("queue-purge") if "damaged" in (r[2] or "")])
        < 2
    ):
        assert time.monotonic() < deadline, purges
        time.sleep(0.2)
    assert {(outcome, patient) for outcome, patient, _ in purges} == {("failed", "100005")}


# --- Chromium -----------------------------------------------------------------------------------


def test_background_sync_sends_the_queue_with_every_page_closed(
    stack: WebStack, nurse: Phone
) -> None:
    """The signal returns after the nurse closed capture: Chromium fires Background Sync and
    the service worker sends the photo with the session cookie, the page long gone."""
    before = set(stack.patient_sop_uids("100003"))
    nurse.launch(stack.launch_url("enc-smith-b"))
    record = queue_one_offline(nurse, SKIN_OF_ANTERIOR_FOREARM, "L", PHOTOS[0])
    context = nurse.page.context
    nurse.page.close()  # every page of capture is closed
    context.set_offline(False)  # the signal returns

    # A page of the same origin that is not capture's (it runs none of capture's code) to
    # reach the service worker through DevTools, and to read IndexedDB afterwards.
    origin = stack.api.url
    other = context.new_page()
    other.goto(f"{origin}/healthz")
    devtools = context.new_cdp_session(other)
    registrations: list[dict[str, Any]] = []
    devtools.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    devtools.send("ServiceWorker.enable")
    deadline = time.monotonic() + 15
    while not (ours := [r for r in registrations if r["scopeURL"] == f"{origin}/"]):
        assert time.monotonic() < deadline, registrations
        other.wait_for_timeout(50)
    devtools.send(
        "ServiceWorker.dispatchSyncEvent",
        {
            "origin": origin,
            "registrationId": ours[0]["registrationId"],
            "tag": "capture-queue",
            "lastChance": False,
        },
    )
    (uid,) = wait_in_orthanc(stack, "100003", before, 1)
    deadline = time.monotonic() + 30
    while Phone(other).queued():  # wiped by the worker once the archive showed it
        assert time.monotonic() < deadline, "the service worker did not wipe the photo"
        other.wait_for_timeout(100)
    queue = Phone(other).indexeddb()["capture-queue"]
    assert queue["sealed"] == [] and [e["wrapped"] for e in queue["custody"]] == [None]
    assert stack.archived(uid).PatientID == "100003"
    assert new_in_orthanc(stack, "100003", before) == [uid]  # once
    assert Phone(other).api(f"/api/v1/captures/{record['id']}")["status"] == "verified"


def test_a_key_the_service_did_not_answer_for_is_asked_again_and_its_photos_offered(
    stack: WebStack, nurse: Phone
) -> None:
    """The service fails the first request for the queue key of a closed tab's photo (a 503,
    as from a restart or a busy database): the page asks again, and the photo is offered as
    soon as it answers; before, it stayed unoffered until capture was opened once more."""
    before = set(stack.patient_sop_uids("100005"))
    nurse.launch(stack.launch_url("enc-ngata"))
    record = queue_one_offline(nurse, SKIN_OF_ANTERIOR_LOWER_LEG, "L", PHOTOS[0])
    later = nurse.reopen()
    later.go_online()
    refused: list[str] = []

    def fail_once(route: Route) -> None:
        if route.request.method == "GET" and not refused:
            refused.append(route.request.url)
            route.fulfill(status=503, content_type="application/json", body='{"detail": "down"}')
        else:
            route.continue_()

    later.page.route("**/api/v1/queue/keys/*", fail_once)
    later.launch(stack.launch_url("enc-ngata"))
    send_the_offered_photo(later, stack, before)
    assert refused == [refused[0]] and refused[0].endswith(record["kid"])  # asked again


def test_photos_taken_while_the_service_could_not_make_a_key_outlive_the_tab(
    stack: WebStack, nurse: Phone
) -> None:
    """The service cannot make the queue key at sign-in (503): photos are sealed under a
    page-only key meanwhile, and move under the service's key once it answers (here: when
    the network comes back), so closing the tab no longer loses them."""
    before = set(stack.patient_sop_uids("100005"))
    down = [True]

    def keys(route: Route) -> None:
        if route.request.method == "POST" and down[0]:
            route.fulfill(status=503, content_type="application/json", body='{"detail": "down"}')
        else:
            route.continue_()

    nurse.page.route("**/api/v1/queue/keys", keys)
    nurse.page.route("**/api/v1/captures", lambda route: route.abort("internetdisconnected"))
    nurse.launch(stack.launch_url("enc-ngata"))
    record = queue_one_offline(nurse, SKIN_OF_ANTERIOR_LOWER_LEG, "R", PHOTOS[1])
    assert record["kid"].startswith("local-")  # page-only: a closed tab would lose it
    down[0] = False
    nurse.go_online()  # the service makes its key now; the upload itself still fails
    deadline = time.monotonic() + 15
    while (kids := [r["kid"] for r in nurse.queued()]) == [record["kid"]]:
        assert time.monotonic() < deadline, custody(nurse)
        time.sleep(0.1)
    (entry,) = custody(nurse)  # the stopgap is gone, its device key wrapped by the service's
    assert kids == [entry["kid"]] and not entry["local"] and entry["wrapped"] is not None

    later = nurse.reopen()  # the tab is closed before the photo could be sent
    later.launch(stack.launch_url("enc-ngata"))
    send_the_offered_photo(later, stack, before)


def test_a_photo_past_the_retention_limit_is_purged_with_a_message_and_audited(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-smith-a"))
    record = queue_one_offline(nurse, SKIN_OF_ANTERIOR_FOREARM, "R", PHOTOS[1])
    assert record["purge_after"] - record["created"] == 72 * 3600 * 1000  # the service's limit
    # 72 hours pass (the phone's clock is all the phone has to go by).
    age = """async () => {
      const request = (r) => new Promise((ok, ko) => {
        r.onsuccess = () => ok(r.result);
        r.onerror = () => ko(r.error);
      });
      const db = await request(indexedDB.open("capture-queue"));
      const store = db.transaction("photos", "readwrite").objectStore("photos");
      for (const r of await request(store.getAll())) {
        r.created -= 73 * 3600e3; r.purge_after -= 73 * 3600e3; await request(store.put(r));
      }
      db.close();
      return true;
    }"""
    assert nurse.evaluate(age)
    nurse.reload()  # offline: purged at once, told at once
    nurse.wait_text("#patient-message", "waited more than 72 h on this phone without being sent")
    assert nurse.queued() == []
    before = len(stack.audit_events("queue-purge"))
    nurse.go_online()  # ... and the service's audit trail hears of it
    deadline = time.monotonic() + 15
    while len(rows := stack.audit_events("queue-purge")) == before:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    outcome, patient, detail = rows[-1]
    assert (outcome, patient) == ("failed", "100002")
    assert detail is not None and "1 photo(s) deleted unsent from a phone: retention" in detail
    assert nurse.indexeddb()["capture-queue"]["reports"] == []  # told: nothing kept
