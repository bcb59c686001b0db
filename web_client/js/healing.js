// The healing trend of the chosen site on the details screen (issue 16): the wound's area at
// each measured photo as a small chart, the reduction since the first measurement and over the
// last 4 weeks, and a warning when the 4-week reduction is below the published threshold for
// the wound type (the service decides; the phone only shows). Drawn as inline SVG: no script
// or style from anywhere else, as the page's CSP wants.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const HEIGHT = 140;
const PAD = { left: 36, right: 10, top: 10, bottom: 24 };

/** An SVG element with attributes. @param {string} tag @param {Record<string, string | number>} attrs */
function svg(tag, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text) node.textContent = text;
  return node;
}

/** "−45 %" (a reduction shown as the change it is), or "–" when unknown. @param {number | null} pct */
const change = (pct) => (pct === null || pct === undefined ? "–" : `${pct > 0 ? "−" : "+"}${Math.abs(pct).toFixed(0)} %`);

/** Show the site's trend from the timeline answer's `healing` (null: none); `printable` is
 * the URL of its printable page. @param {any} healing @param {string | null} [printable] */
export function renderHealing(healing, printable = null) {
  const box = clear($("healing"));
  const points = healing?.points || [];
  box.hidden = points.length === 0;
  if (!points.length) return;
  const last = points[points.length - 1];
  box.append(
    el("h2", {}, t("healing.heading")),
    el(
      "p",
      { class: "healing-figures", dataset: { reduction4w: String(healing.reduction_4_weeks_pct ?? "") } },
      points.length === 1
        ? t("healing.first", { area: last.area_cm2.toFixed(1) })
        : t("healing.figures", {
            area: last.area_cm2.toFixed(1),
            first: change(healing.reduction_since_first_pct),
            weeks: change(healing.reduction_4_weeks_pct),
          }),
    ),
  );
  if (points.length > 1) box.append(chart(points));
  if (printable) {
    box.append(el("a", { href: printable, target: "_blank", rel: "noopener", class: "healing-print" }, t("healing.print")));
  }
  if (healing.not_on_track) {
    box.append(
      el("p", { class: "warning healing-flag", role: "status" }, t("healing.flag", { threshold: healing.threshold_pct, source: healing.threshold_source })),
    );
  }
}

/** Area (cm2) over time. @param {{measured_at: string, area_cm2: number}[]} points */
function chart(points) {
  const times = points.map((p) => new Date(p.measured_at).getTime());
  const areas = points.map((p) => p.area_cm2);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const top = Math.max(...areas) * 1.1 || 1;
  const x = (time) => PAD.left + ((time - t0) / (t1 - t0 || 1)) * (WIDTH - PAD.left - PAD.right);
  const y = (area) => HEIGHT - PAD.bottom - (area / top) * (HEIGHT - PAD.top - PAD.bottom);
  const label = t("healing.chart", { count: points.length });
  const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": label, class: "healing-chart" });
  root.append(svg("line", { x1: PAD.left, y1: y(0), x2: WIDTH - PAD.right, y2: y(0), class: "axis" }));
  root.append(svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: y(0), class: "axis" }));
  root.append(svg("text", { x: 2, y: PAD.top + 8, class: "tick" }, `${top.toFixed(0)} cm²`));
  root.append(svg("text", { x: 2, y: y(0), class: "tick" }, "0"));
  const day = (time) => new Date(time).toISOString().slice(0, 10);
  root.append(svg("text", { x: PAD.left, y: HEIGHT - 6, class: "tick" }, day(t0)));
  root.append(svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, class: "tick", "text-anchor": "end" }, day(t1)));
  const line = times.map((time, i) => `${x(time).toFixed(1)},${y(areas[i]).toFixed(1)}`).join(" ");
  root.append(svg("polyline", { points: line, class: "trend" }));
  times.forEach((time, i) => root.append(svg("circle", { cx: x(time).toFixed(1), cy: y(areas[i]).toFixed(1), r: 3, class: "point" })));
  return root;
}
