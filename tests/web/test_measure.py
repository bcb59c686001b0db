"""Issue 16 on the phone, in real Chromium: a photo of a wound with the printed sticker is sent,
then traced with the finger (pointer events) on the measuring screen, and the service stores
the area it computed itself.

Oracle: a phantom photo of known geometry (tests/measure/phantom.py: the real sticker rendered
by resvg, a wound polygon of known area, a tilted pinhole camera). The outline is drawn with
the pointer at the screen positions of the phantom's (noisy) tracing; the phone's live area
and the service's stored area must both match the phantom's true area. Undo and moving a
point are exercised on the way, and "Snap to edge" is accepted before saving.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import phone_jpeg
from tests.measure.phantom import Phantom, render_phantom
from tests.web.browser import Phone, requires_chromium
from tests.web.stack import WebStack
from tests.web.test_access import _audit

pytestmark = requires_chromium

SIZE = (1600, 1200)


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    """A large wound (20 cm2) so that a finger-sized tracing on a phone screen is accurate."""
    return render_phantom(21, tilt_deg=15.0, area_cm2=20.0, kind="irregular", size=SIZE)


def _live_area(nurse: Phone) -> float:
    value = nurse.page.get_attribute("#measure-live", "data-area")
    return float(value) if value else 0.0


def _to_page(nurse: Phone, points: np.ndarray) -> np.ndarray:
    """Image pixels -> page CSS pixels of the fitted (unzoomed) photo on the canvas."""
    box = nurse.page.locator("#trace-canvas").bounding_box()
    assert box is not None
    scale = box["width"] / SIZE[0]
    return np.column_stack([box["x"] + points[:, 0] * scale, box["y"] + points[:, 1] * scale])


def _stroke(nurse: Phone, page_points: np.ndarray) -> None:
    mouse = nurse.page.mouse
    mouse.move(float(page_points[0, 0]), float(page_points[0, 1]))
    mouse.down()
    for x, y in page_points[1:]:
        mouse.move(float(x), float(y))
    mouse.up()


def test_a_wound_traced_on_the_phone_is_measured_and_stored_by_the_service(
    stack: WebStack, nurse: Phone, phantom: Phantom, tmp_path: Path
) -> None:
    photo = tmp_path / "wound.jpg"
    photo.write_bytes(phantom.jpeg)
    nurse.launch(stack.launch_url("enc-okada"))
    nurse.search_site("heel", "Skin of heel")
    nurse.page.check('input[name="side"][value="L"]')
    nurse.take_photo(photo)
    nurse.send()
    nurse.wait_states("verified")
    nurse.page.click("#send-list .measure-open")
    nurse.wait_screen("measure")
    nurse.wait_text("#measure-message", "Sticker found")
    _audit(nurse, "measure", controls=8)  # large, named controls; readable text
    nurse.shot("measure-01-photo")

    nurse.page.locator("#trace-canvas").scroll_into_view_if_needed()
    tracing = _to_page(nurse, phantom.tracing_px[::2])
    _stroke(nurse, tracing)
    first = _live_area(nurse)
    assert abs(first - phantom.area_cm2) / phantom.area_cm2 < 0.05, first

    # A stray stroke, undone: the area is back.
    _stroke(nurse, tracing[:5] + 40)
    assert _live_area(nurse) != pytest.approx(first, abs=1e-3)
    nurse.page.click("#trace-undo")
    assert nurse.page.is_visible("#trace-canvas")
    assert _live_area(nurse) == pytest.approx(first, abs=1e-3)

    # Move one point outwards, then undo it.
    nurse.page.click("#trace-edit")
    nurse.page.locator("#trace-canvas").scroll_into_view_if_needed()
    tracing = _to_page(nurse, phantom.tracing_px[::2])  # the click may have scrolled
    centre = tracing.mean(axis=0)
    start = tracing[0]
    outward = start + (start - centre) / np.linalg.norm(start - centre) * 15
    nurse.page.mouse.move(float(start[0]), float(start[1]))
    nurse.page.mouse.down()
    nurse.page.mouse.move(float(outward[0]), float(outward[1]), steps=4)
    nurse.page.mouse.up()
    assert _live_area(nurse) > first
    nurse.page.click("#trace-undo")
    assert _live_area(nurse) == pytest.approx(first, abs=1e-3)
    nurse.shot("measure-02-traced")

    nurse.page.click("#trace-snap")
    nurse.page.wait_for_selector("#snap-choice:not([hidden])", timeout=30_000)
    nurse.page.click("#snap-accept")
    snapped = _live_area(nurse)
    assert abs(snapped - phantom.area_cm2) / phantom.area_cm2 < 0.05, snapped

    nurse.page.click("#measure-save")
    nurse.page.wait_for_selector("#measure-saved:not([hidden])", timeout=30_000)
    nurse.shot("measure-03-saved")
    shown = float(nurse.page.get_attribute("#measure-saved", "data-area") or 0)
    assert nurse.page.get_attribute("#measure-saved", "data-method") == "marker-homography"

    (capture,) = nurse.captures()
    (stored,) = nurse.api(f"/api/v1/captures/{capture['capture_id']}/measurements")
    assert stored["area_cm2"] == pytest.approx(shown, abs=1e-3)
    assert abs(stored["area_cm2"] - phantom.area_cm2) / phantom.area_cm2 < 0.05
    assert stored["area_cm2"] == pytest.approx(snapped, rel=0.01)  # phone and service agree
    assert stored["phone_area_cm2"] == pytest.approx(snapped, abs=1e-3)
    assert stored["snapped"] is True
    assert stored["body_site"] == "84607009" and stored["laterality"] == "L"

    # The next photo of the same heel: the details screen shows the wound's area trend.
    nurse.page.click("#measure-back")
    nurse.wait_screen("send")
    nurse.page.click("#send-other")
    nurse.search_site("heel", "Skin of heel")
    nurse.page.check('input[name="side"][value="L"]')
    nurse.page.wait_for_selector("#healing:not([hidden])", timeout=30_000)
    figures = nurse.text("#healing .healing-figures")
    assert f"Latest {stored['area_cm2']:.1f} cm²" in figures
    nurse.page.locator("#healing").scroll_into_view_if_needed()
    _audit(nurse, "details with the healing trend")
    nurse.shot("measure-04-trend")
    printable = nurse.page.eval_on_selector("#healing a.healing-print", "a => a.href")
    assert printable and "/timeline/healing?" in printable
    page = nurse.page.context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(printable)
    assert "Wound area over time" in page.inner_text("h1")
    assert page.eval_on_selector("style", "s => getComputedStyle(document.body).margin") != "8px"
    assert errors == []  # the page's own CSP allows its one style block
    page.close()


def test_without_a_sticker_the_reason_is_shown_and_a_ruler_measures_it(
    stack: WebStack, nurse: Phone, tmp_path: Path
) -> None:
    photo = tmp_path / "plain.jpg"
    photo.write_bytes(phone_jpeg(1200, 900, seed=3))
    nurse.launch(stack.launch_url("enc-smith-b"))
    nurse.search_site("heel", "Skin of heel")
    nurse.page.check('input[name="side"][value="R"]')
    nurse.take_photo(photo)
    nurse.send()
    nurse.wait_states("verified")
    nurse.page.click("#send-list .measure-open")
    nurse.wait_screen("measure")
    nurse.wait_text("#measure-message", "No measurement from the sticker")
    assert "no calibration marker" in nurse.text("#measure-message").lower()
    assert nurse.page.is_visible("#ruler-box")
    assert nurse.page.is_disabled("#measure-save")

    def at(x: float, y: float) -> tuple[float, float]:
        """Image px -> where the canvas shows it now (a button click may have scrolled)."""
        box = nurse.page.locator("#trace-canvas").bounding_box()
        assert box is not None
        scale = box["width"] / 1200  # CSS px per image px
        return box["x"] + x * scale, box["y"] + y * scale

    nurse.page.click("#trace-ruler")
    nurse.page.locator("#trace-canvas").scroll_into_view_if_needed()
    nurse.page.mouse.click(*at(300, 800))
    nurse.page.mouse.click(*at(700, 800))  # 400 px ...
    nurse.page.fill("#ruler-mm", "40")  # ... = 40 mm: 10 px per mm
    nurse.page.click("#trace-draw")
    nurse.page.locator("#trace-canvas").scroll_into_view_if_needed()
    square = np.array([[400, 200], [600, 200], [600, 400], [400, 400]], dtype=float)
    _stroke(nurse, np.array([at(x, y) for x, y in square]))
    live = _live_area(nurse)
    assert live == pytest.approx(4.0, rel=0.05)  # 20 x 20 mm
    nurse.page.click("#measure-save")
    nurse.page.wait_for_selector("#measure-saved:not([hidden])", timeout=30_000)
    assert nurse.page.get_attribute("#measure-saved", "data-method") == "ruler-two-point"
    assert "NOT corrected for camera tilt" in nurse.text("#measure-saved")

    (capture,) = nurse.captures()
    (stored,) = nurse.api(f"/api/v1/captures/{capture['capture_id']}/measurements")
    assert stored["area_cm2"] == pytest.approx(live, rel=1e-3)  # the same formula both sides
    assert stored["perspective_corrected"] is False
