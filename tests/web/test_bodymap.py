"""The body map: every region sends a code the service knows, is labelled with the service's
one name for its site and side, and a paired site gets the patient's side from where it was
tapped (front view: the patient's left is the viewer's right)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack

pytestmark = requires_chromium

#: Every drawn shape of both views, from the client's own module (the geometry's one copy).
_SHAPES = """async () => {
  const map = await import('/app/js/bodymap.js');
  return ['front', 'back'].flatMap((view) => map.shapesOf(view).map((s) => ({
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
    assert len(shapes) > 40
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
    boxes: list[dict[str, Any]] = nurse.page.eval_on_selector_all(
        "#bodymap .region",
        """nodes => nodes.map(n => { const b = n.getBoundingClientRect();
             return {side: n.dataset.side, label: n.getAttribute('aria-label'),
                     code: n.dataset.code, x: b.x + b.width / 2, w: b.width, h: b.height}; })""",
    )
    assert len(boxes) > 20, view
    return boxes


def test_the_side_follows_from_where_it_is_tapped(stack: WebStack, nurse: Phone) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    svg = nurse.page.locator("#bodymap svg").bounding_box()
    assert svg is not None
    middle = svg["x"] + svg["width"] / 2
    for view, viewer_left_is in (("front", "R"), ("back", "L")):
        for region in _regions(nurse, view):
            label = region["label"]
            site = nurse.api(f"/api/v1/body-sites/{region['code']}")
            if not region["side"]:
                assert abs(region["x"] - middle) < 2, label  # midline structures are unpaired
                assert label == site["name"]
                continue
            on_viewer_left = region["x"] < middle
            assert (region["side"] == viewer_left_is) == on_viewer_left, (view, label)
            side_word = {"L": ", left", "R": ", right"}[region["side"]]
            assert label == site["names"][region["side"]] == site["meaning"] + side_word
    nurse.shot("01-site-back")


def test_regions_are_big_enough_to_tap_and_work_from_the_keyboard(
    stack: WebStack, nurse: Phone
) -> None:
    nurse.launch(stack.launch_url("enc-muller"))
    for view in ("front", "back"):
        for region in _regions(nurse, view):
            assert region["w"] >= MIN_REGION_PX and region["h"] >= MIN_REGION_PX, region
    nurse.page.click("#view-front")
    nurse.page.focus('#bodymap [data-code="181553006"][data-side="R"]')  # right knee, front
    nurse.page.keyboard.press("Enter")
    nurse.wait_screen("details")
    assert nurse.page.inner_text("#details-site") == "Skin of anterior surface of knee, right"
