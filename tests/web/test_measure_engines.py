"""Measuring a wound in both engines: Chromium (Android's) and WebKit (Safari's, so most
clinicians' iPhones), written once against ``PhoneDriver`` (tests/web/phone.py).

The tracing is drawn with ``PointerEvent``s dispatched on the canvas from the page (the same
events a finger gives; WebKitGTK under Selenium has no touch input), at the screen positions of
a phantom's tracing (tests/measure/phantom.py: known area). The phone's live area and the
area the service stores must both match the phantom's truth, in each engine: canvas drawing,
``createImageBitmap``, private class fields and the API calls all run in Safari's engine too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.measure.phantom import Phantom, render_phantom
from tests.web.phone import PhoneDriver
from tests.web.stack import WebStack

SIZE = (1600, 1200)

_TRACE = """async (points) => {
  const canvas = document.getElementById("trace-canvas");
  canvas.scrollIntoView({block: "center"});
  const rect = canvas.getBoundingClientRect();
  const scale = rect.width / points.size[0];
  const fire = (type, [x, y]) => canvas.dispatchEvent(new PointerEvent(type, {
    bubbles: true, cancelable: true, pointerId: 7, pointerType: "touch", isPrimary: true,
    clientX: rect.left + x * scale, clientY: rect.top + y * scale,
  }));
  const path = points.outline;
  fire("pointerdown", path[0]);
  for (const point of path.slice(1)) fire("pointermove", point);
  fire("pointerup", path[path.length - 1]);
  return Number(document.getElementById("measure-live").dataset.area || 0);
}"""


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return render_phantom(23, tilt_deg=12.0, area_cm2=18.0, kind="ellipse", size=SIZE)


def test_a_traced_wound_is_measured_in_both_engines(
    stack: WebStack, phone: PhoneDriver, phantom: Phantom, tmp_path: Path
) -> None:
    photo = tmp_path / "wound.jpg"
    photo.write_bytes(phantom.jpeg)
    phone.launch(stack.launch_url("enc-smith-a"))
    phone.search_site("heel", "Skin of heel")
    phone.click('input[name="side"][value="R"]')
    phone.take_photo(photo)
    phone.send()
    phone.wait_states("verified")
    phone.click("#send-list .measure-open")
    phone.wait_screen("measure")
    phone.wait_text("#measure-message", "Sticker found")

    outline = phantom.tracing_px[::2].round(2).tolist()
    live = float(phone.evaluate(_TRACE, {"outline": outline, "size": list(SIZE)}))
    assert abs(live - phantom.area_cm2) / phantom.area_cm2 < 0.05, live
    phone.shot(f"measure-engines-traced-{type(phone).__name__}")

    phone.click("#measure-save")
    phone.wait_text("#measure-message", "Saved. These numbers go")
    captures = [c for c in phone.captures() if c["status"] == "verified"]
    (stored,) = phone.api(f"/api/v1/captures/{captures[-1]['capture_id']}/measurements")
    assert abs(stored["area_cm2"] - phantom.area_cm2) / phantom.area_cm2 < 0.05
    assert stored["area_cm2"] == pytest.approx(live, rel=0.01)  # phone and service agree
    assert stored["method"] == "marker-homography"
