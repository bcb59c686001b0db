// The photos of the current site, from the shutter to the archive: review cards (preview, note,
// view, retake, delete) and the sending list (per-photo state until verified). Previews are
// drawn on canvases in memory; nothing is written anywhere.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";

const THUMB_PX = 240;

/** A small preview canvas of a photo, or null when this browser cannot decode it (HEIC). */
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
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvas;
}

/** The preview of `photo` as a fresh node (a canvas can sit in one place only). */
function preview(photo, label) {
  if (!photo.thumb) return el("p", { class: "no-preview", role: "img", "aria-label": label }, t("camera.heic_preview"));
  const copy = el("canvas", { width: photo.thumb.width, height: photo.thumb.height, role: "img", "aria-label": label });
  copy.getContext("2d").drawImage(photo.thumb, 0, 0);
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
  $("review-send").disabled = photos.length === 0;
}

/** The sending list: one row per photo, updated from the uploader's "change" events. */
export class SendList {
  constructor() {
    this.rows = new Map();
  }

  add(photo, siteTitle) {
    const state = el("p", { class: "state" }, t("send.state.sealed"));
    const bar = el("progress", { max: 100, value: 0, "aria-label": siteTitle });
    const row = el(
      "li",
      { class: "card sending", dataset: { id: photo.id, state: "sealed" } },
      preview(photo, siteTitle),
      el("div", { class: "stack" }, el("p", { class: "site" }, siteTitle), state, bar),
    );
    this.rows.set(photo.id, { row, state, bar });
    $("send-list").prepend(row);
  }

  update({ id, state, percent, seconds, reason, retrying }) {
    const entry = this.rows.get(id);
    if (!entry) return;
    entry.row.dataset.state = state;
    let text = t(`send.state.${state}`, { percent: percent ?? 0, seconds: seconds ?? 1, reason: reason || "" });
    if (retrying && state === "encoded") text = t("send.archive_retrying"); // details: for IT
    entry.state.textContent = text;
    const waiting = ["sealed", "offline", "retrying", "consent"].includes(state);
    entry.bar.value = state === "uploading" ? (percent ?? 0) : waiting ? 0 : 100;
    entry.bar.hidden = state === "verified" || state === "failed";
  }

  clear() {
    this.rows.clear();
    clear($("send-list"));
  }
}
