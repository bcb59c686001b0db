"""The printable sticker: rendered back by independent renderers, the marker is found at the
documented physical size (resvg for the SVG, PDFium for the PDF)."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pypdfium2
import pytest
import resvg_py
from PIL import Image

from capture_api.measure import detect_marker, sticker_pdf, sticker_svg
from capture_api.measure.sticker import main, sticker_layout

DPI = 300
PX_PER_MM = DPI / 25.4


def _svg_pixels(marker_id: int) -> np.ndarray:
    png = resvg_py.svg_to_bytes(svg_string=sticker_svg(marker_id), dpi=DPI)
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("L"))


def _pdf_pages(data: bytes) -> list[tuple[tuple[float, float], np.ndarray]]:
    """Each page's size in mm and its greyscale rendering at DPI."""
    document = pypdfium2.PdfDocument(data)
    pages = []
    for page in document:
        width, height = page.get_size()  # PDF points
        image = page.render(scale=DPI / 72).to_pil().convert("L")
        pages.append(((width * 25.4 / 72, height * 25.4 / 72), np.asarray(image)))
    return pages


@pytest.mark.parametrize("marker_id", [20, 30, 40])
def test_svg_renders_with_the_marker_at_its_printed_size(marker_id: int) -> None:
    svg = sticker_svg(marker_id)
    root = ET.fromstring(svg)
    layout = sticker_layout(marker_id)
    assert (
        root.get("width") == f"{layout.width:g}mm" and root.get("height") == f"{layout.height:g}mm"
    )
    pixels = _svg_pixels(marker_id)
    assert pixels.shape == (round(layout.height * PX_PER_MM), round(layout.width * PX_PER_MM))
    marker = detect_marker(np.ascontiguousarray(pixels))
    assert marker.spec.marker_id == marker_id
    assert marker.side_px == pytest.approx(marker_id * PX_PER_MM, rel=0.002)
    top_left, top_right = marker.corners[0], marker.corners[1]
    assert abs(top_left[1] - top_right[1]) < 0.5, "the marker's top faces the head arrow"
    assert top_left[1] < pixels.shape[0] / 2


def test_svg_ruler_ticks_are_one_millimetre_apart() -> None:
    pixels = _svg_pixels(30)
    layout = sticker_layout(30)
    row = round((layout.height - 11.0 + 0.5 + 0.8) * PX_PER_MM)  # through the 1 mm ticks
    dark = pixels[row] < 128
    starts = np.flatnonzero(dark[1:] & ~dark[:-1]) + 1
    ends = np.flatnonzero(~dark[1:] & dark[:-1]) + 1
    centres = (starts[: len(ends)] + ends[: len(starts)]) / 2
    assert len(centres) == layout.ruler_mm + 1
    spacing = np.diff(centres) / PX_PER_MM
    assert np.all(np.abs(spacing - 1.0) < 0.1), spacing  # each within a pixel at 300 dpi
    assert (centres[-1] - centres[0]) / PX_PER_MM == pytest.approx(layout.ruler_mm, abs=0.1)


def test_single_sticker_pdf_has_the_sticker_size_and_the_marker_size() -> None:
    ((width, height), pixels) = _pdf_pages(sticker_pdf(30, page="sticker"))[0]
    layout = sticker_layout(30)
    assert width == pytest.approx(layout.width, abs=0.01)
    assert height == pytest.approx(layout.height, abs=0.01)
    marker = detect_marker(np.ascontiguousarray(pixels))
    assert marker.side_px == pytest.approx(
        30 * PX_PER_MM, rel=0.005
    )  # PDFium snaps fills to pixels


@pytest.mark.parametrize(("page", "size"), [("A4", (210.0, 297.0)), ("letter", (215.9, 279.4))])
def test_sheet_pdf_is_the_paper_size_with_a_100_mm_check_bar(
    page: str, size: tuple[float, float]
) -> None:
    ((width, height), pixels) = _pdf_pages(sticker_pdf(30, page=page))[0]  # type: ignore[arg-type]
    assert (width, height) == pytest.approx(size, abs=0.01)
    marker = detect_marker(np.ascontiguousarray(pixels))
    assert marker.side_px == pytest.approx(30 * PX_PER_MM, rel=0.005)
    bar_row = round(21 * PX_PER_MM)  # _PAGE_MARGIN_MM + 9
    dark = np.flatnonzero(pixels[bar_row - 2 : bar_row + 3].min(axis=0) < 128)
    # end ticks 0.3 mm wide, centred on 0 and 100 mm: the ink spans 100.3 mm
    assert (dark.max() - dark.min() + 1) / PX_PER_MM == pytest.approx(100.3, abs=0.15)


def test_command_line_writes_both(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    assert main(["20", "--svg", str(folder / "s.svg"), "--pdf", str(folder / "s.pdf")]) == 0
    assert re.search(r'width="\d+(\.\d+)?mm"', (folder / "s.svg").read_text())
    assert (folder / "s.pdf").read_bytes().startswith(b"%PDF")
