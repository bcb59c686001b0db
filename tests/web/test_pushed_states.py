"""Issue 13, item 2b, in real Chromium: a photo's states reach the page pushed by the service
(Server-Sent Events), with no status polling; where the stream is refused, the page falls
back to polling and still gets there."""

from __future__ import annotations

import re

from playwright.sync_api import Request, Route

from tests.conftest import SAMPLES
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

#: GET /api/v1/captures/{id} (a status poll); the events stream and uploads are not polls.
STATUS_POLL = re.compile(r"/api/v1/captures/(?!events)[^/?]+$")
EVENTS = "/api/v1/captures/events"
FOREARM = '#bodymap [data-code="70559009"][data-side="L"]'  # the front view's left forearm


def _requests(nurse: Phone) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    def note(request: Request) -> None:
        seen.append((request.method, request.url.split("?")[0]))

    nurse.page.on("request", note)
    return seen


def test_the_verified_state_arrives_without_polling(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-smith-a"))
    seen = _requests(nurse)
    nurse.page.click(FOREARM)
    nurse.wait_screen("details")
    nurse.take_photo(SAMPLES / "orientation" / "landscape_1.jpg")
    nurse.send()
    nurse.wait_states("verified")
    assert nurse.states() == ["verified"]
    polls = [url for method, url in seen if method == "GET" and STATUS_POLL.search(url)]
    assert polls == [], polls
    assert [m for m, url in seen if url.endswith(EVENTS)] == ["GET"]  # one stream, opened once
    assert ("POST", f"{stack.api.url}/api/v1/captures") in seen
    (capture,) = nurse.captures()
    assert capture["status"] == "verified"


def test_without_the_stream_the_page_polls(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-smith-b"))

    def refuse(route: Route) -> None:
        route.fulfill(status=404, content_type="application/json", body='{"detail": "no"}')

    nurse.page.route(re.compile(r".*/api/v1/captures/events.*"), refuse)
    seen = _requests(nurse)
    nurse.page.click(FOREARM)
    nurse.wait_screen("details")
    nurse.take_photo(SAMPLES / "orientation" / "landscape_1.jpg")
    nurse.send()
    nurse.wait_states("verified")
    polls = [url for method, url in seen if method == "GET" and STATUS_POLL.search(url)]
    assert polls, "the page neither had the stream nor polled"
