// Draw the front or back body map as inline SVG (built here from js/regions.js, so there is
// no second copy of the geometry) and report taps as {code, laterality, key, view}.

import { t } from "../i18n/en.js";
import { HEIGHT, MIDLINE, REGIONS, WIDTH, mirror, sideOf } from "./regions.js";
import { nameOf } from "./sites.js";

const SVG = "http://www.w3.org/2000/svg";

/** A coded site and its side ("L", "R", "B" or null), as the map highlights and reports it.
 * @typedef {{code: string, laterality: string | null}} SiteChoice */

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function shapeNode(shape) {
  if (shape.ellipse) {
    const [cx, cy, rx, ry] = shape.ellipse;
    return svg("ellipse", { cx, cy, rx, ry });
  }
  return svg("polygon", { points: shape.poly.map((p) => p.join(",")).join(" ") });
}

function centreX(shape) {
  if (shape.ellipse) return shape.ellipse[0];
  const xs = shape.poly.map(([x]) => x);
  return (Math.min(...xs) + Math.max(...xs)) / 2;
}

/** Every tappable shape of one view: {region, shape, laterality}. */
export function shapesOf(view) {
  const out = [];
  for (const region of REGIONS.filter((r) => r.view === view)) {
    if (!region.paired) {
      out.push({ region, shape: region.shape, laterality: null });
      continue;
    }
    for (const shape of [region.shape, mirror(region.shape)]) {
      out.push({ region, shape, laterality: sideOf(view, centreX(shape) < MIDLINE) });
    }
  }
  return out;
}

/** Whether `view` draws the site `{code, laterality}` (to show the view that has it). */
export function draws(view, site) {
  return shapesOf(view).some((s) => s.region.code === site.code && s.laterality === site.laterality);
}

/** A region's name: the service's display name of its code and side (the same words as the
 * search, review and sending screens); the map's own words only until the service answered. */
export function regionLabel(region, laterality, view) {
  const name = nameOf(region.code, laterality);
  if (name) return name;
  return t("region.label", {
    side: laterality ? t(`side.prefix.${laterality}`) : "",
    name: t(`region.${region.key}`),
    view: t(view === "front" ? "site.view_front" : "site.view_back"),
  });
}

/** Replace `container`'s content with the map of `view`; `onPick` gets the tapped region.
 * `selected` ({code, laterality}: the chosen site) is highlighted where it is drawn.
 * @param {HTMLElement} container
 * @param {string} view
 * @param {(pick: SiteChoice & {key: string, view: string}) => void} onPick
 * @param {SiteChoice | null} [selected] */
export function renderBodyMap(container, view, onPick, selected = null) {
  const root = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: "bodymap",
    role: "group",
    "aria-label": `${t("site.map_label")} (${t(view === "front" ? "site.front" : "site.back")})`,
  });
  // Which side is which, written on the map: the commonest wrong-side error is a mirror.
  const viewerLeft = sideOf(view, true);
  const viewerRight = sideOf(view, false);
  root.append(sideLabel(true, t(`side.${viewerLeft}`)), sideLabel(false, t(`side.${viewerRight}`)));
  let named = true; // every label is the service's name (tests wait for data-named)
  for (const { region, shape, laterality } of shapesOf(view)) {
    named &&= nameOf(region.code, laterality) !== null;
    const node = shapeNode(shape);
    const pick = { code: region.code, laterality, key: region.key, view };
    node.setAttribute("class", "region");
    node.setAttribute("role", "button");
    node.setAttribute("tabindex", "0");
    node.setAttribute("aria-label", regionLabel(region, laterality, view));
    node.dataset.code = region.code;
    node.dataset.region = region.key;
    node.dataset.side = laterality || "";
    if (selected && selected.code === region.code && selected.laterality === laterality) {
      node.classList.add("selected");
      node.setAttribute("aria-pressed", "true");
    }
    node.addEventListener("click", () => onPick(pick));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        onPick(pick);
      }
    });
    root.append(node);
  }
  container.replaceChildren(root);
  container.dataset.named = String(named);
}

function sideLabel(onViewerLeft, text) {
  const node = svg("text", {
    x: onViewerLeft ? 4 : WIDTH - 4,
    y: 16,
    class: "side-label",
    "text-anchor": onViewerLeft ? "start" : "end",
    "aria-hidden": "true",
  });
  node.textContent = text;
  return node;
}
