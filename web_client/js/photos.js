// The photos of the current site, from the shutter to the archive: review cards (preview, note,
// view, retake, delete) and the sending list (per-photo state until verified). Previews are
// drawn on canvases in memory; nothing is written anywhere.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";
import { offerTakeBack } from "./takeback.js";

const THUMB_PX = 240;

/** A photo taken and not yet sent (app.js); `blob` is dropped once the vault has sealed it.
 * @typedef {object} Photo
 * @property {string} id the capture id
 * @property {Blob | null} blob
 * @property {string} filename
 * @property {string} kind what its bytes are (js/sniff.js): "jpeg" or "heic"
 * @property {HTMLCanvasElement | null} thumb
 * @property {string} note
 * @property {string} view
 * @property {string} capturedAt ISO date-time
 */

/** A small preview canvas of a photo, or null when this browser cannot decode it (HEIC on
 * most browsers but Safari, or a damaged JPEG).
 * @param {Blob} blob @returns {Promise<HTMLCanvasElement | null>} */
export async function thumbnail(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { resizeWidth: THUMB_PX, resizeQuality: "medium" });
  } catch {
    try {
      bitmap = await createImageBitmap(blob); // older Safari: no resize options
    } catch {
      return null;
    }
  }
  const scale = Math.min(1, THUMB_PX / Math.max(bitmap.width, bitmap.height));
  const canvas = el("canvas", {
    width: Math.round(bitmap.width * scale),
    height: Math.round(bitmap.height * scale),
  });
  /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d")).drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvas;
}

/** Why there is no preview, for the kind the photo's bytes are (js/sniff.js); `brief` for
 * the small square of the sending list. */
function noPreview(photo, brief) {
  if (brief) return t("send.no_preview");
  return t(photo.kind === "heic" ? "camera.heic_preview" : "camera.jpeg_no_preview");
}

/** The preview of `photo` as a fresh node (a canvas can sit in one place only). */
function preview(photo, label, brief = false) {
  if (!photo.thumb) return el("p", { class: "no-preview", role: "img", "aria-label": label }, noPreview(photo, brief));
  const copy = el("canvas", { width: photo.thumb.width, height: photo.thumb.height, role: "img", "aria-label": label });
  /** @type {CanvasRenderingContext2D} */ (copy.getContext("2d")).drawImage(photo.thumb, 0, 0);
  return copy;
}

function field(id, labelKey, input) {
  return el("div", { class: "stack" }, el("label", { for: id }, t(labelKey)), input);
}

/** Review cards for `photos`; `actions.retake(photo)` / `actions.remove(photo)`. */
export function renderReview(photos, actions) {
  const list = clear($("review-list"));
  const views = clear($("views"));
  for (const view of t("review.views")) views.append(el("option", { value: view }));
  photos.forEach((photo, index) => {
    const title = t("review.photo", { n: index + 1 });
    const note = el("textarea", { id: `note-${photo.id}`, maxlength: 2000, rows: 2 });
    note.value = photo.note || "";
    note.addEventListener("input", () => (photo.note = note.value));
    const view = el("input", { id: `view-${photo.id}`, list: "views", maxlength: 64, placeholder: t("review.view_hint") });
    view.value = photo.view || "";
    view.addEventListener("input", () => (photo.view = view.value));
    list.append(
      el(
        "li",
        { class: "card", dataset: { id: photo.id } },
        el("h2", {}, title),
        preview(photo, title),
        field(`note-${photo.id}`, "review.note", note),
        field(`view-${photo.id}`, "review.view", view),
        el(
          "div",
          { class: "row-buttons" },
          el("button", { type: "button", onclick: () => actions.retake(photo) }, t("review.retake")),
          el("button", { type: "button", class: "danger", onclick: () => actions.remove(photo) }, t("review.delete")),
        ),
      ),
    );
  });
  $("review-send").textContent = t("review.send", { count: photos.length });
  /** @type {HTMLButtonElement} */ ($("review-send")).disabled = photos.length === 0;
}

/** The sending list: one row per photo, updated from the uploader's "change" events. A photo
 * that failed for good gets "Retake" and "Remove": `actions.retake(id, site)` and
 * `actions.remove(id)`, where `site` is the site (and side) it was taken of. */
export class SendList {
  constructor(actions) {
    this.actions = actions;
    this.rows = new Map();
  }

  add(photo, site, siteTitle) {
    const state = el("p", { class: "state" }, t("send.state.sealed"));
    const bar = el("progress", { max: 100, value: 0, "aria-label": siteTitle });
    const stack = el("div", { class: "stack" }, el("p", { class: "site" }, siteTitle), state, bar);
    const row = el("li", { class: "card sending", dataset: { id: photo.id, state: "sealed" } }, preview(photo, siteTitle, true), stack);
    this.rows.set(photo.id, { row, stack, state, bar, site, buttons: null });
    $("send-list").prepend(row);
  }

  update({ id, state, percent, seconds, reason, retrying, retryAt }) {
    const entry = this.rows.get(id);
    if (!entry) return;
    entry.row.dataset.state = state;
    let text = t(`send.state.${state}`, { percent: percent ?? 0, seconds: seconds ?? 1, reason: reason || "" });
    // The service says why the photo is not in the archive yet, and when it tries again: the
    // nurse can act on it or pass it on (the photo itself is safe with capture).
    if (retrying) text = t("send.archive_retrying", { reason: retrying.replace(/ \(will retry\)$/, ""), time: clock(retryAt) });
    entry.state.textContent = text;
    const waiting = ["sealed", "offline", "retrying", "consent"].includes(state);
    entry.bar.value = state === "uploading" ? (percent ?? 0) : waiting ? 0 : 100;
    entry.bar.hidden = state === "verified" || state === "failed";
    if (state === "failed" && !entry.buttons) this.#offerActions(id, entry);
    if (state === "verified") offerTakeBack(entry.stack, id, entry.bar.getAttribute("aria-label") || "");
  }

  #offerActions(id, entry) {
    const label = (key) => `${t(key)}: ${entry.bar.getAttribute("aria-label")}`;
    entry.buttons = el(
      "div",
      { class: "row-buttons" },
      el("button", { type: "button", "aria-label": label("send.retake"), onclick: () => this.actions.retake(id, entry.site) }, t("send.retake")),
      el("button", { type: "button", class: "danger", "aria-label": label("send.remove"), onclick: () => this.actions.remove(id) }, t("send.remove")),
    );
    entry.stack.append(entry.buttons);
  }

  /** Take one row off the list (a failed photo removed or retaken). */
  remove(id) {
    this.rows.get(id)?.row.remove();
    this.rows.delete(id);
  }

  clear() {
    this.rows.clear();
    clear($("send-list"));
  }
}

/** "14:02" for an ISO date-time from the service; "soon" when it is missing or past. */
function clock(iso) {
  const when = iso ? new Date(iso) : null;
  if (!when || Number.isNaN(when.getTime()) || when.getTime() <= Date.now()) return t("send.soon");
  return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
