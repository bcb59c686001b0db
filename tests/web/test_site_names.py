"""One name per coded site and side on every screen, and one highlighted region on the map.

The nurse reads the same words for the front of the right lower leg on the map, in the search,
on the details, camera, review and sending screens, in the recent sites, in the API and in the
archived DICOM object; "R shin" offers that site once (not also the region "Lower leg"); and the
map highlights exactly the site chosen, however it was chosen (map, search, recent sites), or
nothing when the chosen site is not drawn on it.
"""

from __future__ import annotations

from tests.conftest import SAMPLES
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

SKIN_OF_ANTERIOR_LOWER_LEG = "25763004"  # CID 4029, the front view's lower leg
SKIN_OF_ANTERIOR_FOREARM = "70559009"
SKIN_OF_POSTERIOR_LOWER_LEG = "47224004"  # the back view's lower leg
LOWER_LEG_REGION = "30021000"  # CID 4031 "Lower leg": matches "shin" too, never offered with it
#: The highlighted regions of the map as it is drawn now: (code, side).
_SELECTED = """() => [...document.querySelectorAll('#bodymap .region.selected')]
  .map(n => [n.dataset.code, n.dataset.side, n.getAttribute('aria-pressed')])"""


def _selected(nurse: Phone) -> list[tuple[str, str]]:
    found = nurse.page.evaluate(_SELECTED)
    assert all(pressed == "true" for _, _, pressed in found), found
    return [(code, side) for code, side, _ in found]


def _back_to_the_map(nurse: Phone) -> None:
    nurse.page.click("#details-change")
    nurse.wait_screen("site")


def test_a_site_has_one_name_on_every_screen_in_the_api_and_in_the_archive(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-ngata"))
    site = nurse.api(f"/api/v1/body-sites/{SKIN_OF_ANTERIOR_LOWER_LEG}")
    name = site["names"]["R"]
    assert name == "Skin of anterior surface of lower leg, right"
    on_map = nurse.page.locator(
        f'#bodymap [data-code="{SKIN_OF_ANTERIOR_LOWER_LEG}"][data-side="R"]'
    )
    assert on_map.get_attribute("aria-label") == name

    # "R shin": one lower-leg entry, named alike, and the search API agrees.
    nurse.page.fill("#site-search", "R shin")
    nurse.page.locator("#site-results button").first.wait_for()
    offered = nurse.page.locator("#site-results button").all_inner_texts()
    assert [text for text in offered if "leg" in text.lower()] == [name], offered
    hits = nurse.api("/api/v1/body-sites?q=R%20shin")
    assert [(h["site"]["code"], h["name"]) for h in hits] == [(SKIN_OF_ANTERIOR_LOWER_LEG, name)]
    assert LOWER_LEG_REGION not in {h["site"]["code"] for h in hits}
    nurse.page.locator("#site-results").get_by_role("button", name=name).click()
    nurse.wait_screen("details")
    assert nurse.page.inner_text("#details-site") == name

    nurse.page.click("#details-take")
    nurse.wait_screen("camera")
    assert nurse.page.inner_text("#camera-site") == name
    nurse.take_photo(SAMPLES / "orientation" / "landscape_3.jpg")
    assert nurse.page.inner_text("#review-site") == name
    nurse.send()
    assert nurse.page.inner_text("#send-list .site") == name
    nurse.wait_states("verified")

    nurse.page.click("#send-other")
    nurse.wait_screen("site")
    assert nurse.page.locator("#recent-sites button").all_inner_texts() == [name]
    (capture,) = nurse.captures()
    assert stack.archived(capture["sop_instance_uid"]).SeriesDescription == name
    context_id = nurse.api("/api/v1/session")["context_id"]
    timeline = nurse.api(
        f"/api/v1/contexts/{context_id}/timeline"
        f"?body_site={SKIN_OF_ANTERIOR_LOWER_LEG}&laterality=R"
    )
    named = {i["sop_instance_uid"]: i["body_site_name"] for i in timeline["items"]}
    assert named[capture["sop_instance_uid"]] == name
    assert set(named.values()) == {name}  # other tests photograph this site of Ngata too


def test_the_map_highlights_exactly_the_site_chosen_however_it_was_chosen(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    assert _selected(nurse) == []
    nurse.tap_region(SKIN_OF_ANTERIOR_FOREARM, "L")
    _back_to_the_map(nurse)
    assert _selected(nurse) == [(SKIN_OF_ANTERIOR_FOREARM, "L")]

    nurse.search_site("R shin", "Skin of anterior surface of lower leg, right")
    _back_to_the_map(nurse)
    assert _selected(nurse) == [(SKIN_OF_ANTERIOR_LOWER_LEG, "R")]  # not the forearm any more
    nurse.shot("02-site-chosen-by-search")

    recent = nurse.page.locator("#recent-sites")
    recent.get_by_role("button", name="Skin of anterior surface of forearm, left").click()
    nurse.wait_screen("details")  # from the recent sites
    _back_to_the_map(nurse)
    assert _selected(nurse) == [(SKIN_OF_ANTERIOR_FOREARM, "L")]

    # A side changed on the details screen moves the highlight with it.
    nurse.page.click(f'#bodymap [data-code="{SKIN_OF_ANTERIOR_FOREARM}"][data-side="L"]')
    nurse.wait_screen("details")
    nurse.page.check('input[name="side"][value="R"]')
    _back_to_the_map(nurse)
    assert _selected(nurse) == [(SKIN_OF_ANTERIOR_FOREARM, "R")]
    assert recent.get_by_role("button").all_inner_texts() == [  # the side as it was chosen
        "Skin of anterior surface of forearm, right",
        "Skin of anterior surface of lower leg, right",
    ]

    # Only on the back of the map: the map turns to the back to show it.
    nurse.search_site("left calf", "Skin of posterior surface of lower leg, left")
    _back_to_the_map(nurse)
    assert nurse.page.get_attribute("#view-back", "aria-pressed") == "true"
    assert _selected(nurse) == [(SKIN_OF_POSTERIOR_LOWER_LEG, "L")]

    # Not on the map at all: nothing is highlighted, front or back.
    nurse.search_site("navel", "Skin of umbilicus")
    _back_to_the_map(nurse)
    assert _selected(nurse) == []
    nurse.page.click("#view-front")
    assert _selected(nurse) == []
