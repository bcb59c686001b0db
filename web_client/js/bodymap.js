// Draw one view of the body map as inline SVG (built here from js/regions.js, so there is no
// second copy of the geometry), report taps as {code, laterality, key, view}, and show the
// patient's lesions as numbered pins where they were dropped. In pin mode a tap drops a pin:
// it is reported with its place on the view (x, y from 0 to 1) and the region under it.

import { t } from "../i18n/en.js";
import { DECOR, MIDLINE, MIRROR, REGIONS, VIEWS, WIDTH, sideOf } from "./regions.js";
import { nameOf } from "./sites.js";

const SVG = "http://www.w3.org/2000/svg";
/** How long a press is a long-press (the region's name is shown, nothing is picked). */
const LONG_PRESS_MS = 550;

/** A coded site and its side ("L", "R", "B" or null), as the map highlights and reports it.
 * @typedef {{code: string, laterality: string | null}} SiteChoice */
/** A lesion of the patient, as GET /api/v1/contexts/{id}/lesions lists it.
 * @typedef {{tracking_uid: string, label: string, description: string | null, view: string | null, x: number | null, y: number | null, body_site: string | null, laterality: string | null, body_site_name: string | null}} Lesion */
/** What a tap reports: the region (site and side) and, in pin mode, where on the view.
 * @typedef {SiteChoice & {key: string, view: string, x?: number, y?: number}} MapPick */

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

/** Every tappable shape of one view: {region, shape, laterality, mirrored}. */
export function shapesOf(view) {
  const out = [];
  for (const region of REGIONS.filter((r) => r.view === view)) {
    if (!region.paired) {
      out.push({ region, shape: region.shape, laterality: null, mirrored: false });
      continue;
    }
    // drawn on the viewer's left, then mirrored to the viewer's right
    out.push({ region, shape: region.shape, laterality: sideOf(view, true), mirrored: false });
    out.push({ region, shape: region.shape, laterality: sideOf(view, false), mirrored: true });
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
    view: t(`site.view.${view}`),
  });
}

/** What each map container's latest render asked a tap to do (a map kept as it was still
 * calls the picker of the latest render). @type {WeakMap<HTMLElement, {onPick: (pick: MapPick) => void, onLesion: (lesion: Lesion) => void}>} */
const handlers = new WeakMap();
/** What each container shows now (the inputs of its last drawing). @type {WeakMap<HTMLElement, string>} */
const drawnWith = new WeakMap();

/** Replace `container`'s content with the map of `view`; a map that would look the same is
 * kept as it is, nodes and all. Why: a redraw replaces the node under a finger that is pressing
 * it, and a press and release on two different nodes is no click, so the tap is lost. The
 * patient's lesions arrive while the nurse taps the map (every time the site screen opens),
 * and they are most often the ones already drawn.
 * @param {HTMLElement} container
 * @param {string} view
 * @param {(pick: MapPick) => void} onPick a region tapped (in pin mode: with x, y)
 * @param {SiteChoice | null} [selected] the chosen site, highlighted where it is drawn
 * @param {{lesions?: Lesion[], onLesion?: (lesion: Lesion) => void, pinning?: boolean, chosen?: string | null}} [options]
 *   the patient's lesions (pins on their own view), what a pin's tap does, pin mode, the
 *   lesion chosen (highlighted) */
export function renderBodyMap(container, view, onPick, selected = null, options = {}) {
  const { lesions = [], onLesion = () => {}, pinning = false, chosen = null } = options;
  handlers.set(container, { onPick, onLesion });
  const shapes = shapesOf(view).map((s) => ({ ...s, label: regionLabel(s.region, s.laterality, view) }));
  const pins = lesions.filter((l) => l.view === view && l.x !== null && l.y !== null);
  const inputs = JSON.stringify([
    view,
    pinning,
    chosen,
    selected ? [selected.code, selected.laterality] : null,
    shapes.map((s) => s.label),
    pins,
  ]);
  if (drawnWith.get(container) === inputs && container.firstElementChild) return;
  const tapped = (/** @type {MapPick} */ pick) => /** @type {any} */ (handlers.get(container)).onPick(pick);
  const height = VIEWS[view].height;
  const root = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    class: pinning ? "bodymap pinning" : "bodymap",
    role: "group",
    "aria-label": `${t(pinning ? "site.pin_map_label" : "site.map_label")} (${t(`site.view.${view}`)})`,
  });
  root.dataset.view = view;
  // Which side is which, written on the map: the commonest wrong-side error is a mirror.
  root.append(sideLabel(true, t(`side.${sideOf(view, true)}`)), sideLabel(false, t(`side.${sideOf(view, false)}`)));
  let named = true; // every label is the service's name (tests wait for data-named)
  for (const { region, shape, laterality, mirrored, label } of shapes) {
    named &&= nameOf(region.code, laterality) !== null;
    const node = svg("path", { d: shape.d, class: "region", role: "button", tabindex: "0", "aria-label": label });
    if (mirrored) node.setAttribute("transform", MIRROR);
    const title = svg("title");
    title.textContent = label; // the name on hover (a mouse) and for assistive technology
    node.append(title);
    node.dataset.code = region.code;
    node.dataset.region = region.key;
    node.dataset.side = laterality || "";
    if (selected && selected.code === region.code && selected.laterality === laterality) {
      node.classList.add("selected");
      node.setAttribute("aria-pressed", "true");
    }
    const pick = { code: region.code, laterality, key: region.key, view };
    node.addEventListener("click", (event) => {
      if (node.dataset.longPressed) return void delete node.dataset.longPressed;
      tapped(pinning ? { ...pick, ...where(root, event, height) } : pick);
    });
    node.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      tapped(pinning ? { ...pick, ...centreOf(node, root, height) } : pick);
    });
    showNameOnLongPress(node, container, label);
    root.append(node);
  }
  for (const decor of DECOR[view] || []) {
    for (const mirrored of decor.paired ? [false, true] : [false]) {
      const node = svg("path", { d: decor.d, class: `decor ${decor.kind}`, "aria-hidden": "true" });
      if (mirrored) node.setAttribute("transform", MIRROR);
      root.append(node);
    }
  }
  for (const lesion of pins) {
    const tap = () => /** @type {any} */ (handlers.get(container)).onLesion(lesion);
    root.append(pinNode(lesion, height, lesion.tracking_uid === chosen, tap));
  }
  container.replaceChildren(root);
  drawnWith.set(container, inputs);
  container.dataset.named = String(named);
  container.dataset.view = view;
}

/** Where the pointer is on the view, 0..1 from its top left. */
function where(root, event, height) {
  const matrix = root.getScreenCTM();
  if (!matrix) return { x: 0.5, y: 0.5 };
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
  return { x: clamp(point.x / WIDTH), y: clamp(point.y / height) };
}

/** The middle of a region (a pin dropped from the keyboard). */
function centreOf(node, root, height) {
  const box = node.getBoundingClientRect();
  return where(root, { clientX: box.x + box.width / 2, clientY: box.y + box.height / 2 }, height);
}

const clamp = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;

/** A lesion's pin: a numbered marker, tapped to photograph that lesion again. */
function pinNode(lesion, height, chosen, onTap) {
  const x = /** @type {number} */ (lesion.x) * WIDTH;
  const y = /** @type {number} */ (lesion.y) * height;
  const label = t("lesion.pin_label", {
    label: lesion.label,
    site: lesion.body_site_name || "",
    description: lesion.description || "",
  }).replace(/[ ,:]+$/, "");
  const group = svg("g", { class: chosen ? "pin chosen" : "pin", role: "button", tabindex: "0", "aria-label": label });
  group.dataset.lesion = lesion.tracking_uid;
  group.dataset.label = lesion.label;
  const title = svg("title");
  title.textContent = label;
  group.append(title, svg("circle", { cx: x, cy: y, r: 12 }));
  const text = svg("text", { x, y: y + 4, "text-anchor": "middle", "aria-hidden": "true" });
  text.textContent = lesion.label;
  group.append(text);
  group.addEventListener("click", (event) => {
    event.stopPropagation();
    onTap();
  });
  group.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onTap();
    }
  });
  return group;
}

/** Long-press (touch) or hover shows the region's name in the map's caption; a long-press
 * only shows it (the click that follows is not a pick). */
function showNameOnLongPress(node, container, label) {
  let timer;
  const caption = () => /** @type {HTMLElement | null} */ (container.parentElement?.querySelector(".map-caption") ?? null);
  const show = () => {
    const box = caption();
    if (box) box.textContent = label;
  };
  node.addEventListener("pointerenter", show);
  node.addEventListener("focus", show);
  node.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "touch") return;
    timer = setTimeout(() => {
      show();
      node.dataset.longPressed = "true";
    }, LONG_PRESS_MS);
  });
  for (const end of ["pointerup", "pointercancel", "pointerleave"]) node.addEventListener(end, () => clearTimeout(timer));
  node.addEventListener("contextmenu", (event) => event.preventDefault()); // no menu on long-press
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

export { MIDLINE };
