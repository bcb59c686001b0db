// The measuring screen (issue 16): once a photo is in the archive, "Measure wound" opens it
// here. The service finds the printed marker (GET .../calibration) or says why it cannot; the
// nurse then taps two points on a ruler and types the distance. While tracing, area, length
// and width are computed on the phone (js/trace.js); "Snap to edge" asks the service for a
// refined outline to accept or discard; "Save" sends the outline, and the service measures
// again: its numbers, shown under "Saved", are the ones stored, archived and sent to the chart.

import { t } from "../i18n/en.js";
import { ApiError, getJson, postJson } from "./api.js";
import { $, clear, el, say, showScreen } from "./dom.js";
import { Tracer, measureOutline, rulerCalibration, selfIntersects } from "./trace.js";

/** @typedef {import("./trace.js").Pt} Pt */

const paths = {
  image: (id) => `/api/v1/captures/${encodeURIComponent(id)}/image`,
  calibration: (id) => `/api/v1/captures/${encodeURIComponent(id)}/calibration`,
  snap: (id) => `/api/v1/captures/${encodeURIComponent(id)}/snap`,
  measurements: (id) => `/api/v1/captures/${encodeURIComponent(id)}/measurements`,
};

/** What the screen works on: the photo, its calibration (marker, else ruler), the tracer. */
const state = {
  /** @type {string | null} */
  captureId: null,
  /** @type {number[][] | null} the marker's image -> plane homography */
  marker: null,
  /** @type {[number, number]} */
  size: [0, 0],
  snapped: false,
  /** @type {Tracer | null} */
  tracer: null,
  wired: false,
};

/** One decimal for numbers the nurse reads. @param {number} value */
const fixed = (value, digits = 1) => value.toFixed(digits);

/** A "Measure wound" button on the sending list's row of a verified photo (once).
 * @param {string} captureId @param {string} title the site, for the screen's heading */
export function offerMeasure(captureId, title) {
  const row = document.querySelector(`#send-list li[data-id="${CSS.escape(captureId)}"]`);
  const stack = row?.querySelector(".stack");
  if (!stack || stack.querySelector(".measure-open")) return;
  stack.append(
    el("button", { type: "button", class: "measure-open", "aria-label": `${t("measure.open")}: ${title}`, onclick: () => openMeasure(captureId, title) }, t("measure.open")),
  );
}

/** Open the measuring screen for one archived photo. @param {string} captureId @param {string} title */
export async function openMeasure(captureId, title) {
  wire();
  const tracer = /** @type {Tracer} */ (state.tracer);
  Object.assign(state, { captureId, marker: null, snapped: false });
  $("measure-site").textContent = title;
  say("measure-message", t("measure.loading"));
  $("measure-saved").hidden = true;
  $("ruler-box").hidden = true;
  $("snap-choice").hidden = true;
  setMode("draw");
  showScreen("screen-measure");
  try {
    const blob = await fetchImage(captureId);
    const bitmap = await createImageBitmap(blob);
    state.size = [bitmap.width, bitmap.height];
    tracer.setImage(bitmap);
  } catch (error) {
    say("measure-message", error instanceof ApiError ? error.message : t("measure.no_image"), "error");
    return;
  }
  try {
    const found = await getJson(paths.calibration(captureId));
    state.marker = found.image_to_plane;
    say("measure-message", t("measure.marker_found", { tilt: fixed(found.tilt_deg ?? 0, 0) }), "success");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 422) {
      say("measure-message", error instanceof ApiError ? error.message : String(error), "error");
      return;
    }
    say("measure-message", t("measure.no_marker", { reason: error.detail }), "warning");
    $("ruler-box").hidden = false;
  }
  showLive();
}

async function fetchImage(captureId) {
  let response;
  try {
    response = await fetch(paths.image(captureId), { credentials: "same-origin", cache: "no-store" });
  } catch {
    throw new ApiError(0, "");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, body?.detail || "");
  }
  return response.blob();
}

/** The calibration the live numbers use: the marker's, else the ruler's when complete. */
function calibration() {
  if (state.marker) return state.marker;
  const tracer = /** @type {Tracer} */ (state.tracer);
  const distance = Number(/** @type {HTMLInputElement} */ ($("ruler-mm")).value);
  if (tracer.ruler.length !== 2 || !(distance > 0)) return null;
  return rulerCalibration(tracer.ruler[0], tracer.ruler[1], distance, state.size);
}

/** The ruler as the service wants it, or null. */
function rulerBody() {
  if (state.marker) return null;
  const tracer = /** @type {Tracer} */ (state.tracer);
  const distance = Number(/** @type {HTMLInputElement} */ ($("ruler-mm")).value);
  if (tracer.ruler.length !== 2 || !(distance > 0)) return null;
  return { start: tracer.ruler[0], end: tracer.ruler[1], distance_mm: distance };
}

/** Area, length and width of the outline so far (phone-side), or why there are none. */
function showLive() {
  const tracer = /** @type {Tracer} */ (state.tracer);
  const outline = tracer.outline();
  const matrix = calibration();
  const numbers = matrix ? measureOutline(outline, matrix) : null;
  const live = $("measure-live");
  live.dataset.area = numbers ? numbers.area_cm2.toFixed(3) : "";
  $("live-area").textContent = numbers ? `${fixed(numbers.area_cm2, 2)} cm²` : "–";
  $("live-length").textContent = numbers ? `${fixed(numbers.length_mm / 10, 2)} cm` : "–";
  $("live-width").textContent = numbers ? `${fixed(numbers.width_mm / 10, 2)} cm` : "–";
  const crossing = outline.length > 3 && selfIntersects(outline);
  $("measure-hint").textContent = crossing ? t("measure.crosses") : !matrix ? t("measure.need_calibration") : outline.length < 3 ? t("measure.trace_hint") : "";
  /** @type {HTMLButtonElement} */ ($("measure-save")).disabled = !numbers || crossing;
  /** @type {HTMLButtonElement} */ ($("trace-snap")).disabled = outline.length < 3 || crossing;
}

/** @param {import("./trace.js").Mode} mode */
function setMode(mode) {
  state.tracer?.setMode(mode);
  for (const [id, value] of [["trace-draw", "draw"], ["trace-edit", "edit"], ["trace-ruler", "ruler"]]) {
    $(id).setAttribute("aria-pressed", String(mode === value));
  }
  state.tracer?.draw();
}

async function snap() {
  const tracer = /** @type {Tracer} */ (state.tracer);
  say("measure-message", t("measure.snapping"));
  try {
    const answer = await postJson(paths.snap(/** @type {string} */ (state.captureId)), { outline: tracer.outline() });
    tracer.propose(answer.outline);
    $("snap-choice").hidden = false;
    say("measure-message", t("measure.snap_offer"));
  } catch (error) {
    say("measure-message", error instanceof ApiError ? error.message : String(error), "error");
  }
}

async function save() {
  const tracer = /** @type {Tracer} */ (state.tracer);
  const outline = tracer.outline();
  const live = calibration() ? measureOutline(outline, /** @type {number[][]} */ (calibration())) : null;
  const body = { outline, ruler: rulerBody(), snapped: state.snapped, phone_area_cm2: live ? Math.round(live.area_cm2 * 1000) / 1000 : null };
  say("measure-message", t("measure.saving"));
  try {
    const saved = await postJson(paths.measurements(/** @type {string} */ (state.captureId)), body);
    showSaved(saved);
    say("measure-message", t("measure.saved"), "success");
  } catch (error) {
    say("measure-message", error instanceof ApiError ? error.message : String(error), "error");
  }
}

/** The service's numbers: what is stored. */
function showSaved(saved) {
  const box = $("measure-saved");
  box.dataset.area = String(saved.area_cm2);
  box.dataset.method = saved.method;
  const rows = [
    [t("measure.area"), `${fixed(saved.area_cm2, 2)} cm²`],
    [t("measure.length"), `${fixed(saved.length_mm / 10, 2)} cm`],
    [t("measure.width"), `${fixed(saved.width_mm / 10, 2)} cm`],
    [t("measure.perimeter"), `${fixed(saved.perimeter_mm / 10, 1)} cm`],
    [t("measure.method"), saved.summary],
  ];
  const list = clear($("measure-saved-list"));
  for (const [name, value] of rows) list.append(el("dt", {}, name), el("dd", {}, value));
  box.hidden = false;
}

/** Event handlers, once. */
function wire() {
  if (state.wired) return;
  state.wired = true;
  const tracer = new Tracer(/** @type {HTMLCanvasElement} */ ($("trace-canvas")), () => {
    state.snapped = false;
    showLive();
  });
  state.tracer = tracer;
  $("trace-draw").addEventListener("click", () => setMode("draw"));
  $("trace-edit").addEventListener("click", () => setMode("edit"));
  $("trace-ruler").addEventListener("click", () => setMode("ruler"));
  $("trace-zoom-in").addEventListener("click", () => tracer.zoomBy(1.5));
  $("trace-zoom-out").addEventListener("click", () => tracer.zoomBy(1 / 1.5));
  $("trace-undo").addEventListener("click", () => tracer.undo());
  $("trace-clear").addEventListener("click", () => tracer.clear());
  $("trace-snap").addEventListener("click", () => snap());
  $("snap-accept").addEventListener("click", () => {
    tracer.acceptProposal();
    state.snapped = true;
    $("snap-choice").hidden = true;
    say("measure-message", "");
  });
  $("snap-discard").addEventListener("click", () => {
    tracer.propose(null);
    $("snap-choice").hidden = true;
    say("measure-message", "");
  });
  $("ruler-mm").addEventListener("input", () => showLive());
  $("measure-save").addEventListener("click", () => save());
  $("measure-back").addEventListener("click", () => showScreen("screen-send"));
  window.addEventListener("resize", () => tracer.resize());
}
