// File a wrong patient's photo for the right patient (issue 18, after js/takeback.js).
//
// Once the right patient is open (EHR launch, wristband, worklist: never typed), the site
// screen asks GET /api/v1/contexts/{id}/refilable for the photos this user took back as
// another patient's; each is offered as "File it for NAME" with a confirmation naming the
// patient on the banner. POST .../rejection/refile issues it again for this patient (new
// UIDs, the same JPEG bitstream); it then goes to the archive and the chart like any photo.
// Nothing of the other patient is shown: only the site and the times.

import { t } from "../i18n/en.js";
import { ApiError, getJson, postJson } from "./api.js";
import { $, el } from "./dom.js";

/** @param {string} contextId */
const refilablePath = (contextId) => `/api/v1/contexts/${encodeURIComponent(contextId)}/refilable`;

/** Offer this user's taken-back photos for the open patient (nothing when there are none).
 * @param {string} contextId the open patient's context */
export async function offerRefile(contextId) {
  $("refile-offer")?.remove();
  /** @type {any[]} */
  let photos;
  try {
    photos = await getJson(refilablePath(contextId));
  } catch {
    return; // an offer, not a step: the photos are safe, it comes back on the next screen
  }
  if (!photos.length) return;
  const name = $("banner-name").textContent || "";
  const cards = photos.map((photo) => card(photo, contextId, name));
  const section = el(
    "section",
    { id: "refile-offer", "aria-labelledby": "refile-heading" },
    el("h2", { id: "refile-heading" }, t("refile.heading")),
    el("p", { class: "hint" }, t("refile.explain")),
    el("ul", { class: "cards" }, cards),
  );
  $("screen-site").querySelector("h1")?.after(section);
}

/** @param {any} photo @param {string} contextId @param {string} name */
function card(photo, contextId, name) {
  const when = new Date(photo.captured_at || photo.rejected_at);
  const what = t("refile.photo", {
    site: photo.site_name || t("refile.no_site"),
    time: when.toLocaleString([], { dateStyle: "short", timeStyle: "short" }),
  });
  const status = el("p", { class: "refile-status", role: "status" });
  const button = el(
    "button",
    { type: "button", class: "primary", onclick: () => confirmRefile(photo, contextId, button, status) },
    t("refile.button", { name }),
  );
  return el("li", { class: "card", dataset: { capture: photo.capture_id } }, el("div", { class: "stack" }, el("p", {}, what), button, status));
}

/** @param {any} photo @param {string} contextId @param {HTMLButtonElement} button @param {HTMLElement} status */
function confirmRefile(photo, contextId, button, status) {
  const patient = [$("banner-name").textContent, $("banner-details").textContent].filter(Boolean).join(" · ");
  const yes = el("button", { type: "button", class: "primary" }, t("refile.confirm"));
  const no = el("button", { type: "button" }, t("refile.cancel"));
  const dialog = el(
    "dialog",
    { id: "refile-confirm", "aria-labelledby": "refile-confirm-heading" },
    el("h2", { id: "refile-confirm-heading" }, t("refile.confirm_heading")),
    el("p", { id: "refile-patient" }, t("refile.question", { patient })),
    el("div", { class: "row-buttons" }, no, yes),
  );
  document.body.append(dialog);
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  no.addEventListener("click", close);
  yes.addEventListener("click", async () => {
    close();
    button.disabled = true;
    status.textContent = t("refile.sending");
    try {
      await postJson(photo.refile_url, { context_id: contextId });
      button.hidden = true;
      status.textContent = t("refile.done", { name: $("banner-name").textContent || "" });
    } catch (error) {
      button.disabled = false;
      status.textContent = error instanceof ApiError ? error.message : t("error.network");
    }
  });
  dialog.showModal();
}
