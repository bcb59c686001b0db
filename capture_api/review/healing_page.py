"""The healing trend of one wound as a printable page: the area chart, the figures, the table.

For the patient's notes or a case review: self-contained HTML (one hashed inline style block,
the chart as inline SVG drawn here, no script, no external resource, every value escaped),
served with a Content-Security-Policy that allows nothing else. It names the patient (it is a
page about one patient, opened from that patient's context) but carries no image.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
from collections.abc import Sequence

from capture_api.measure import HealingPoint
from capture_api.review.healing import SiteHealing

__all__ = ["HEALING_CSP", "healing_html"]

STYLE = """
body { font: 11pt/1.4 system-ui, sans-serif; margin: 1.5em; color: #000; }
h1 { font-size: 15pt; margin: 0 0 .3em; }
p.meta { margin: 0 0 1em; color: #333; }
p.flag { border: 2px solid #a00; padding: .4em .6em; font-weight: bold; }
svg { width: 100%; max-width: 40em; height: auto; }
svg .axis { stroke: #555; stroke-width: 1; }
svg .trend { fill: none; stroke: #0b3d91; stroke-width: 2; }
svg .point { fill: #0b3d91; }
svg text { font-size: 11px; fill: #333; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { border: 1px solid #888; padding: .25em .45em; }
th { background: #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
footer { margin-top: 1em; font-size: 9pt; color: #333; }
@media print { @page { size: A4; margin: 12mm; } body { margin: 0; } }
""".strip()

_STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HEALING_CSP = (
    f"default-src 'none'; style-src '{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_W, _H = 600, 240
_PAD = (50, 15, 15, 30)  # left, right, top, bottom


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "not known" if value is None else f"{value:.0f} %"


def healing_html(
    healing: SiteHealing, *, site: str, patient: str, now: dt.datetime | None = None
) -> str:
    """The page for one site's wound (``site``: its display name; ``patient``: a label)."""
    trend = healing.trend
    generated = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    title = f"Wound area over time: {site}"
    flag = (
        f'<p class="flag">The area fell by less than {trend.threshold_pct:.0f} % in 4 weeks '
        f"({_e(trend.wound_type.source)}): such wounds often do not heal without a change of "
        "treatment.</p>"
        if trend.not_on_track
        else ""
    )
    rows = "".join(
        f"<tr><td>{_e(m.measured_at.date().isoformat())}</td>"
        f'<td class="n">{m.area_cm2:.2f}</td><td class="n">{m.length_mm / 10:.2f}</td>'
        f'<td class="n">{m.width_mm / 10:.2f}</td><td>{_e(m.method)}</td></tr>'
        for m in healing.measurements
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{_e(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{_e(title)}</h1>",
            f'<p class="meta">{_e(patient)} · generated {_e(generated)}</p>',
            f"<p>Area reduction since the first measurement: "
            f"{_pct(trend.reduction_since_first_pct)}; over the last 4 weeks: "
            f"{_pct(trend.reduction_4_weeks_pct)} (threshold for "
            f"{_e(trend.wound_type.value)}: {trend.threshold_pct:.0f} %; negative: the wound "
            "grew).</p>",
            flag,
            _chart(trend.points),
            "<table><thead><tr><th>Photo taken</th><th>Area (cm²)</th><th>Length (cm)</th>"
            f"<th>Width (cm)</th><th>Calibration</th></tr></thead><tbody>{rows}</tbody></table>",
            "<footer><p>Areas measured by capture from the nurse's tracing and the printed "
            "calibration marker (or a ruler, not corrected for camera tilt). Planar area: "
            "curved surfaces are under-estimated; depth is not measured.</p></footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _chart(points: Sequence[HealingPoint]) -> str:
    if len(points) < 2:
        return ""
    left, right, top, bottom = _PAD
    t0, t1 = points[0].at.timestamp(), points[-1].at.timestamp()
    peak = max(p.area_cm2 for p in points) * 1.1 or 1.0

    def x(p: HealingPoint) -> float:
        return left + (p.at.timestamp() - t0) / ((t1 - t0) or 1) * (_W - left - right)

    def y(area: float) -> float:
        return _H - bottom - area / peak * (_H - top - bottom)

    line = " ".join(f"{x(p):.1f},{y(p.area_cm2):.1f}" for p in points)
    dots = "".join(
        f'<circle class="point" cx="{x(p):.1f}" cy="{y(p.area_cm2):.1f}" r="3.5"/>' for p in points
    )
    first, last = points[0].at.date().isoformat(), points[-1].at.date().isoformat()
    return (
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="Wound area in cm2 over time">'
        f'<line class="axis" x1="{left}" y1="{y(0):.1f}" x2="{_W - right}" y2="{y(0):.1f}"/>'
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{y(0):.1f}"/>'
        f'<text x="4" y="{top + 10}">{peak:.0f} cm²</text><text x="4" y="{y(0):.1f}">0</text>'
        f'<text x="{left}" y="{_H - 8}">{first}</text>'
        f'<text x="{_W - right}" y="{_H - 8}" text-anchor="end">{last}</text>'
        f'<polyline class="trend" points="{line}"/>{dots}</svg>'
    )
