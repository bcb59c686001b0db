"""The printable calibration sticker, as SVG and PDF, drawn from one layout in millimetres.

A sticker (for marker id 30, 45 x 65 mm)::

    +---------------------------+
    |        ^ HEAD             |   arrow: place it pointing to the patient's head
    |   +-------------------+   |
    |   |  quiet zone       |   |
    |   |   +-----------+   |   |
    |   |   |  ArUco    |   |   |   marker: 30 mm, DICT_4X4_50 id 30 (id = side in mm)
    |   |   |  id 30    |   |   |
    |   |   +-----------+   |   |
    |   +-------------------+   |
    |  |''''|''''|''''|''''|'  |   millimetre scale, 0..41 mm
    |  marker 30 mm - 100 %     |
    +---------------------------+

The marker's top edge (row 0 of ``cv2.aruco.generateImageMarker``) faces the head arrow, so
plane ``+y`` in ``calibration`` is "towards the head". The quiet zone is 1.5 cells wide
(``marker`` reads one cell of it back). SVG user units are millimetres and the root element
declares ``width``/``height`` in ``mm``; the PDF is drawn with fpdf2 in millimetres, so both
print at exactly the documented size at 100 % ("actual size", no fit-to-page).

Independent of the rest of capture (no settings, no database): ``python -m
capture_api.measure.sticker 30 --pdf sticker.pdf`` writes one.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

from fpdf import FPDF

from capture_api.measure.marker import CELLS, MarkerSpec, marker_cells, marker_spec

__all__ = ["StickerLayout", "sticker_layout", "sticker_pdf", "sticker_svg"]

_HEADER_MM = 9.0
_FOOTER_MM = 11.0
_QUIET_CELLS = 1.5
_GREY = 0.6
_PT_PER_MM = 72 / 25.4
_PAGES: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "letter": (215.9, 279.4)}
_PAGE_MARGIN_MM = 12.0
_GAP_MM = 4.0


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    width: float


@dataclass(frozen=True)
class Polygon:
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # baseline
    size: float  # cap-to-descender height in mm (font size)
    text: str
    anchor: Literal["start", "middle"] = "start"


Shape = Rect | Line | Polygon | Text


@dataclass(frozen=True)
class StickerLayout:
    """Everything printed on one sticker, in millimetres from its top-left corner (black ink)."""

    spec: MarkerSpec
    width: float
    height: float
    marker_origin: tuple[float, float]  # top-left corner of the marker
    shapes: tuple[Shape, ...]
    ruler_mm: int


def sticker_layout(marker_id: int = 30) -> StickerLayout:
    """The layout of the sticker for one of the marker ids (20, 30 or 40 mm)."""
    spec = marker_spec(marker_id)
    quiet = _QUIET_CELLS * spec.cell_mm
    width = spec.side_mm + 2 * quiet
    height = _HEADER_MM + spec.side_mm + 2 * quiet + _FOOTER_MM
    origin = (quiet, _HEADER_MM + quiet)
    ruler = math.floor(width - 4)
    shapes: list[Shape] = [
        *_head_arrow(width),
        *_marker(spec, origin),
        *_ruler(ruler, 2.0, _HEADER_MM + spec.side_mm + 2 * quiet + 0.5),
        Text(
            width / 2,
            height - 1.2,
            1.9,
            f"marker {spec.side_mm:g} mm - print at 100 %",
            "middle",
        ),
    ]
    return StickerLayout(spec, width, height, origin, tuple(shapes), ruler)


def _head_arrow(width: float) -> list[Shape]:
    centre = width / 2 - 4
    return [
        Polygon(((centre, 1.2), (centre - 2.2, 4.6), (centre + 2.2, 4.6))),
        Rect(centre - 0.6, 4.6, 1.2, 3.0),
        Text(centre + 3.2, 6.4, 3.0, "HEAD"),
    ]


def _marker(spec: MarkerSpec, origin: tuple[float, float]) -> list[Shape]:
    """One rectangle per horizontal run of black cells (the SVG joins them into one path)."""
    cells = marker_cells(spec.marker_id)
    size = spec.cell_mm
    shapes: list[Shape] = []
    for row in range(CELLS):
        col = 0
        while col < CELLS:
            if not cells[row, col]:
                col += 1
                continue
            start = col
            while col < CELLS and cells[row, col]:
                col += 1
            x, y = origin[0] + start * size, origin[1] + row * size
            shapes.append(Rect(x, y, (col - start) * size, size))
    return shapes


def _ruler(length: int, x0: float, y0: float) -> list[Shape]:
    shapes: list[Shape] = [Line(x0, y0, x0 + length, y0, 0.15)]
    for mm in range(length + 1):
        tall = 3.5 if mm % 10 == 0 else 2.5 if mm % 5 == 0 else 1.5
        shapes.append(Line(x0 + mm, y0, x0 + mm, y0 + tall, 0.15))
        if mm % 10 == 0:
            shapes.append(Text(x0 + mm, y0 + 6.0, 2.0, str(mm), "middle"))
    return shapes


# --- SVG --------------------------------------------------------------------------------------


def sticker_svg(marker_id: int = 30) -> str:
    """One sticker as a standalone SVG document, ``width``/``height`` in millimetres."""
    layout = sticker_layout(marker_id)
    w, h = layout.width, layout.height
    rects = [shape for shape in layout.shapes if isinstance(shape, Rect)]
    others = [shape for shape in layout.shapes if not isinstance(shape, Rect)]
    body = "\n".join([_svg_path(rects), *(_svg_shape(shape) for shape in others)])
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:g}mm" height="{h:g}mm" '
        f'viewBox="0 0 {w:g} {h:g}">\n'
        f"<title>capture wound-measurement sticker, marker {layout.spec.side_mm:g} mm</title>\n"
        f'<rect x="0" y="0" width="{w:g}" height="{h:g}" fill="#ffffff"/>\n'
        f'<rect x="0.1" y="0.1" width="{w - 0.2:g}" height="{h - 0.2:g}" rx="2" fill="none" '
        f'stroke="#999999" stroke-width="0.2"/>\n'
        f'<g fill="#000000" stroke="none" font-family="sans-serif">\n{body}\n</g>\n'
        "</svg>\n"
    )


def _svg_path(rects: list[Rect]) -> str:
    """All filled rectangles as one path: one coverage pass, so no seams between cells."""
    parts = [f"M{r.x:.4f} {r.y:.4f}h{r.w:.4f}v{r.h:.4f}h{-r.w:.4f}z" for r in rects]
    return f'<path d="{"".join(parts)}"/>'


def _svg_shape(shape: Shape) -> str:
    if isinstance(shape, Rect):
        return _svg_path([shape])
    if isinstance(shape, Line):
        return (
            f'<line x1="{shape.x1:.4f}" y1="{shape.y1:.4f}" x2="{shape.x2:.4f}" '
            f'y2="{shape.y2:.4f}" stroke="#000000" stroke-width="{shape.width:g}"/>'
        )
    if isinstance(shape, Polygon):
        points = " ".join(f"{x:.4f},{y:.4f}" for x, y in shape.points)
        return f'<polygon points="{points}"/>'
    anchor = f' text-anchor="{shape.anchor}"' if shape.anchor != "start" else ""
    return (
        f'<text x="{shape.x:.4f}" y="{shape.y:.4f}" font-size="{shape.size:g}"{anchor}>'
        f"{escape(shape.text)}</text>"
    )


# --- PDF --------------------------------------------------------------------------------------


def sticker_pdf(marker_id: int = 30, *, page: Literal["sticker", "A4", "letter"] = "A4") -> bytes:
    """A PDF of the sticker: one sticker-sized page, or an A4/letter sheet of them.

    The sheet carries a 100 mm check bar: if it does not measure 100 mm on paper, the
    printer scaled the page and the stickers must not be used.
    """
    layout = sticker_layout(marker_id)
    if page == "sticker":
        pdf = _new_pdf((layout.width, layout.height))
        _pdf_sticker(pdf, layout, 0.0, 0.0)
    else:
        pdf = _new_pdf(_PAGES[page])
        _pdf_sheet(pdf, layout, _PAGES[page])
    return bytes(pdf.output())


def _new_pdf(size: tuple[float, float]) -> FPDF:
    pdf = FPDF(unit="mm", format=size)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_creator("capture")
    pdf.set_title("capture wound-measurement calibration sticker")
    pdf.add_page()
    return pdf


def _pdf_sheet(pdf: FPDF, layout: StickerLayout, size: tuple[float, float]) -> None:
    top = _PAGE_MARGIN_MM + 16
    _pdf_text(pdf, Text(_PAGE_MARGIN_MM, _PAGE_MARGIN_MM, 3.5, _SHEET_TITLE), 0.0, 0.0)
    _pdf_text(pdf, Text(_PAGE_MARGIN_MM, _PAGE_MARGIN_MM + 5, 2.6, _SHEET_HINT), 0.0, 0.0)
    bar_y = _PAGE_MARGIN_MM + 9
    pdf.set_line_width(0.3)
    pdf.line(_PAGE_MARGIN_MM, bar_y, _PAGE_MARGIN_MM + 100, bar_y)
    for x in (_PAGE_MARGIN_MM, _PAGE_MARGIN_MM + 100):
        pdf.line(x, bar_y - 1.5, x, bar_y + 1.5)
    columns = int((size[0] - 2 * _PAGE_MARGIN_MM + _GAP_MM) // (layout.width + _GAP_MM))
    rows = int((size[1] - top - _PAGE_MARGIN_MM + _GAP_MM) // (layout.height + _GAP_MM))
    left = (size[0] - columns * (layout.width + _GAP_MM) + _GAP_MM) / 2
    for row in range(rows):
        for col in range(columns):
            x = left + col * (layout.width + _GAP_MM)
            y = top + row * (layout.height + _GAP_MM)
            _pdf_sticker(pdf, layout, x, y)


_SHEET_TITLE = "capture wound-measurement stickers"
_SHEET_HINT = "Print at 100 % (actual size). The bar below must measure exactly 100 mm."


def _pdf_sticker(pdf: FPDF, layout: StickerLayout, x0: float, y0: float) -> None:
    pdf.set_draw_color(int(255 * _GREY))
    pdf.set_line_width(0.2)
    pdf.rect(x0 + 0.1, y0 + 0.1, layout.width - 0.2, layout.height - 0.2, round_corners=True)
    pdf.set_draw_color(0)
    pdf.set_fill_color(0)
    for shape in layout.shapes:
        if isinstance(shape, Rect):
            pdf.rect(x0 + shape.x, y0 + shape.y, shape.w, shape.h, style="F")
        elif isinstance(shape, Line):
            pdf.set_line_width(shape.width)
            pdf.line(x0 + shape.x1, y0 + shape.y1, x0 + shape.x2, y0 + shape.y2)
        elif isinstance(shape, Polygon):
            pdf.polygon([(x0 + x, y0 + y) for x, y in shape.points], style="F")
        else:
            _pdf_text(pdf, shape, x0, y0)


def _pdf_text(pdf: FPDF, text: Text, x0: float, y0: float) -> None:
    pdf.set_font("Helvetica", size=text.size * _PT_PER_MM)
    x = x0 + text.x
    if text.anchor == "middle":
        x -= pdf.get_string_width(text.text) / 2
    pdf.text(x, y0 + text.y, text.text)


# --- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the wound-measurement sticker.")
    parser.add_argument("marker_id", type=int, nargs="?", default=30, help="20, 30 or 40")
    parser.add_argument("--svg", type=Path, help="write one sticker as SVG here")
    parser.add_argument("--pdf", type=Path, help="write a PDF here")
    parser.add_argument("--page", choices=["sticker", "A4", "letter"], default="A4")
    args = parser.parse_args(argv)
    if not (args.svg or args.pdf):
        sys.stdout.write(sticker_svg(args.marker_id))
    if args.svg:
        args.svg.write_text(sticker_svg(args.marker_id), encoding="utf-8")
    if args.pdf:
        args.pdf.write_bytes(sticker_pdf(args.marker_id, page=args.page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
