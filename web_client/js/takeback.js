// Take a sent photo back (issue 18, IHE IOCM): "Wrong patient" or "Bad photo" on a photo the
// archive has. A confirmation names the patient on the banner (the photo is taken back from
// that patient's record), then POST /api/v1/captures/{id}/rejection: the service sends the
// archive a rejection note (KOS), hides the photo from priors and the timeline and marks it
// entered-in-error in the chart. A double tap is one rejection (the service is idempotent).
// A wrong patient's photo is re-filed for the right patient from the right patient's chart
// (the API's .../rejection/refile, docs/iocm.md).

import { t } from "../i18n/en.js";
import { ApiError, postJson } from "./api.js";
import { $, el } from "./dom.js";

/** The rejection route of one capture. @param {string} id */
export const rejectionPath = (id) => `/api/v1/captures/${encodeURIComponent(id)}/rejection`;

/** The reasons the phone offers, as the service names them (CID 7011 behind them). */
const REASONS = /** @type {const} */ (["wrong-patient", "quality"]);

/** Add "Wrong patient" and "Bad photo" to a verified photo's row (`stack`), once.
 * @param {HTMLElement} stack the row's text column @param {string} id the capture id
 * @param {string} siteTitle the site, for the buttons' accessible names */
export function offerTakeBack(stack, id, siteTitle) {
  if (stack.querySelector(".takeback")) return;
  const status = el("p", { class: "takeback-status", role: "status", hidden: true });
  const buttons = REASONS.map((reason) =>
    el(
      "button",
      {
        type: "button",
        class: "danger",
        dataset: { reason },
        "aria-label": `${t(`takeback.${reason}`)}: ${siteTitle}`,
        onclick: () => confirmTakeBack(id, reason, row, status),
      },
      t(`takeback.${reason}`),
    ),
  );
  const row = el("div", { class: "row-buttons takeback" }, buttons);
  stack.append(row, status);
}

/** Ask first, naming the patient on the banner; then take the photo back.
 * @param {string} id @param {string} reason @param {HTMLElement} row @param {HTMLElement} status */
function confirmTakeBack(id, reason, row, status) {
  const patient = [$("banner-name").textContent, $("banner-details").textContent].filter(Boolean).join(" · ");
  const yes = el("button", { type: "button", class: "danger", value: "yes" }, t("takeback.confirm"));
  const no = el("button", { type: "button", value: "no" }, t("takeback.cancel"));
  const dialog = el(
    "dialog",
    { id: "takeback", "aria-labelledby": "takeback-heading" },
    el("h2", { id: "takeback-heading" }, t(`takeback.heading.${reason}`)),
    el("p", { id: "takeback-patient" }, t("takeback.question", { patient })),
    el("p", { class: "hint" }, t(`takeback.explain.${reason}`)),
    el("div", { class: "row-buttons" }, no, yes),
  );
  document.body.append(dialog);
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  no.addEventListener("click", close);
  yes.addEventListener("click", () => {
    close();
    takeBack(id, reason, row, status);
  });
  dialog.showModal();
}

/** @param {string} id @param {string} reason @param {HTMLElement} row @param {HTMLElement} status */
async function takeBack(id, reason, row, status) {
  for (const button of row.querySelectorAll("button")) /** @type {HTMLButtonElement} */ (button).disabled = true;
  status.hidden = false;
  status.textContent = t("takeback.sending");
  try {
    await postJson(rejectionPath(id), { reason });
    row.hidden = true; // kept (hidden): a later "verified" of the row does not offer it again
    status.textContent = t(`takeback.done.${reason}`);
    row.closest("li")?.setAttribute("data-taken-back", reason);
  } catch (error) {
    status.textContent = error instanceof ApiError ? error.message : t("error.network");
    for (const button of row.querySelectorAll("button")) /** @type {HTMLButtonElement} */ (button).disabled = false;
  }
}
