"""The body map: every region sends a code the service knows, is labelled with the service's
one name for its site and side, and a paired site gets the patient's side from where it was
tapped (front view: the patient's left is the viewer's right)."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Route

from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

#: The map's views: the whole body, and the close-ups of the face, hands and feet.
VIEWS = ("front", "back", "head", "hand-palmar", "hand-dorsal", "foot-dorsal", "foot-plantar")
#: Views that face the viewer (the patient's right on the viewer's left); the others are seen
#: from behind (the patient's left on the viewer's left).
FACING = {"front", "head", "hand-palmar", "foot-dorsal"}

#: Every drawn shape of every view, from the client's own module (the geometry's one copy).
_SHAPES = """async () => {
  const map = await import('/app/js/bodymap.js');
  const views = Object.keys((await import('/app/js/regions.js')).VIEWS);
  return views.flatMap((view) => map.shapesOf(view).map((s) => ({
    view, key: s.region.key, code: s.region.code, paired: !!s.region.paired,
    laterality: s.laterality,
  })));
}"""
#: WCAG 2.2 SC 2.5.8 (AA) minimum target; the map's regions are the one place below 48 px,
#: and search and recent sites offer the same choices as 48 px buttons.
MIN_REGION_PX = 24


def test_every_region_code_is_a_body_site_the_service_knows(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    shapes: list[dict[str, Any]] = nurse.page.evaluate(_SHAPES)
    assert len(shapes) > 100
    assert {s["view"] for s in shapes} == set(VIEWS)
    for code in sorted({s["code"] for s in shapes}):
        answer = httpx.get(f"{stack.api.url}/api/v1/body-sites/{code}")
        assert answer.status_code == 200, (code, answer.text)
        site = answer.json()
        assert site["scheme"] == "SCT" and site["context_group"] in {"CID 4029", "CID 4031"}
        drawn = [s for s in shapes if s["code"] == code]
        assert all(s["paired"] == site["paired"] for s in drawn), (code, site["meaning"])
        if site["paired"]:  # both sides drawn, one of each
            for view in {s["view"] for s in drawn}:
                sides = sorted(s["laterality"] for s in drawn if s["view"] == view)
                assert sides == ["L", "R"], (code, view, sides)
        else:
            assert all(s["laterality"] is None for s in drawn), code


def _regions(nurse: Phone, view: str) -> list[dict[str, Any]]:
    nurse.page.click(f"#view-{view}")
    nurse.page.wait_for_selector(f"#bodymap[data-view='{view}']")
    # Laid out, not only in the DOM: under load a box read at once could still be 0 x 0.
    nurse.page.wait_for_function(
        "() => [...document.querySelectorAll('#bodymap .region')]"
        ".every((n) => n.getBoundingClientRect().width > 0)"
    )
    boxes: list[dict[str, Any]] = nurse.page.eval_on_selector_all(
        "#bodymap .region",
        """nodes => { const map = document.querySelector('#bodymap svg').getBoundingClientRect();
           return nodes.map(n => { const b = n.getBoundingClientRect();
             return {side: n.dataset.side, label: n.getAttribute('aria-label'),
                     code: n.dataset.code, x: b.x + b.width / 2, w: b.width, h: b.height,
                     middle: map.x + map.width / 2}; }); }""",
    )
    assert len(boxes) > (20 if view in ("front", "back") else 7), view
    return boxes


def test_the_side_follows_from_where_it_is_tapped(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    for view in VIEWS:
        viewer_left_is = "R" if view in FACING else "L"
        for region in _regions(nurse, view):
            label, middle = region["label"], region["middle"]
            site = nurse.api(f"/api/v1/body-sites/{region['code']}")
            if not region["side"]:
                assert abs(region["x"] - middle) < 2, label  # midline structures are unpaired
                assert label == site["name"]
                continue
            on_viewer_left = region["x"] < middle
            assert (region["side"] == viewer_left_is) == on_viewer_left, (view, label)
            side_word = {"L": ", left", "R": ", right"}[region["side"]]
            assert label == site["names"][region["side"]] == site["meaning"] + side_word
        nurse.page.click(f"#view-{view}")
        nurse.page.locator("#bodymap").scroll_into_view_if_needed()
        nurse.page.locator("#bodymap").screenshot(path=str(nurse.shot(f"map-{view}")))


def test_regions_are_big_enough_to_tap_and_work_from_the_keyboard(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    for view in VIEWS:
        for region in _regions(nurse, view):
            assert region["w"] >= MIN_REGION_PX and region["h"] >= MIN_REGION_PX, region
    nurse.page.click("#view-front")
    nurse.page.focus('#bodymap [data-code="181553006"][data-side="R"]')  # right knee, front
    nurse.page.keyboard.press("Enter")
    nurse.wait_screen("details")
    assert nurse.page.inner_text("#details-site") == "Skin of anterior surface of knee, right"


def _tap_at_centre(nurse: Phone, selector: str) -> None:
    """A finger's tap at the middle of what the nurse sees (not a click on the element: what
    is on top there gets it, as on a phone)."""
    nurse.page.locator(selector).scroll_into_view_if_needed()
    box = nurse.page.locator(selector).bounding_box()
    assert box is not None, selector
    nurse.page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_tapping_left_cheek_and_right_palm_thumb_picks_the_coded_site(
    stack: WebStack, nurse: Phone
) -> None:
    """On a phone-size screen (Pixel 7): the face close-up's cheek on the viewer's RIGHT is the
    patient's left cheek; on the palms, the thumb of the hand on the viewer's LEFT is the
    patient's right thumb."""
    nurse.launch(stack.launch_url("enc-muller"))
    viewport = nurse.page.viewport_size
    assert viewport is not None and viewport["width"] == 412  # a phone, not a desktop
    nurse.page.click("#view-head")
    cheek = '#bodymap [data-code="36141000"][data-side="L"]'
    nurse.page.wait_for_load_state("networkidle")  # the lesions loaded: the map is redrawn
    box = nurse.page.locator(cheek).bounding_box()
    svg = nurse.page.locator("#bodymap svg:visible").first.bounding_box()
    assert box is not None and svg is not None
    assert box["x"] > svg["x"] + svg["width"] / 2  # the patient's left: the viewer's right
    _tap_at_centre(nurse, cheek)
    nurse.wait_screen("details")
    assert nurse.page.inner_text("#details-site") == "Skin of cheek, left"
    nurse.shot("map-02-left-cheek-details")

    nurse.page.click("#details-change")
    nurse.wait_screen("site")
    nurse.page.click("#view-hand-palmar")
    thumb = '#bodymap [data-code="76505004"][data-side="R"]'
    box = nurse.page.locator(thumb).bounding_box()
    assert box is not None and box["x"] + box["width"] < svg["x"] + svg["width"] / 2
    _tap_at_centre(nurse, thumb)
    nurse.wait_screen("details")
    assert nurse.page.inner_text("#details-site") == "Thumb, right"


def test_a_tap_still_picks_the_site_when_the_lesions_arrive_between_press_and_release(
    stack: WebStack, nurse: Phone
) -> None:
    """The site screen asks for the patient's lesions each time it opens; their answer came
    while a finger was on the map, and the map was drawn again: the region pressed was no
    longer the one released, so the tap was lost (the browser sends no click) and the nurse
    stayed on the map. A map that would look the same is now kept as it is."""
    held: list[Route] = []
    nurse.page.route("**/api/v1/contexts/*/lesions", lambda route: held.append(route))
    nurse.launch(stack.launch_url("enc-muller"))
    assert held and nurse.page.get_attribute("#bodymap", "aria-busy") == "true"
    thigh = '#bodymap [data-code="61248009"][data-side="R"]'
    nurse.page.locator(thigh).scroll_into_view_if_needed()
    box = nurse.page.locator(thigh).bounding_box()
    assert box is not None
    nurse.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    nurse.page.mouse.down()
    pressed = nurse.page.evaluate_handle("() => document.querySelector('#bodymap svg')")
    for route in held:
        route.continue_()
    nurse.page.wait_for_selector("#bodymap:not([aria-busy])")  # answered and drawn
    kept = nurse.page.evaluate(
        "(before) => document.querySelector('#bodymap svg') === before", pressed
    )
    nurse.page.mouse.up()
    nurse.wait_screen("details", timeout=5_000)
    assert nurse.page.inner_text("#details-site") == "Skin of anterior surface of thigh, right"
    assert kept


def test_a_long_press_names_the_region_without_picking_it(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    nurse.page.click("#view-foot-plantar")
    heel = nurse.page.locator('#bodymap [data-code="84607009"][data-side="L"]')
    assert heel.locator("title").text_content() == "Skin of heel, left"  # the name on hover
    heel.hover()
    assert nurse.page.inner_text(".map-caption") == "Skin of heel, left"
    assert nurse.screen() == "screen-site"
