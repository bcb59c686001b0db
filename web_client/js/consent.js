// The consent step: shown only when the service answers an upload with 428 (the deployment
// requires recorded consent first). It records consent with POST /api/v1/contexts/{id}/consent;
// the queued photos then go on. With written consent, an optional photo of the signed form is
// first stored as an ordinary capture of the same context with the view "consent form" (the
// service never holds that one back for consent), and its capture id goes with the consent.

import { t } from "../i18n/en.js";
import { $, say } from "./dom.js";
import { ApiError, getJson, paths, postForm, postJson } from "./api.js";

/** The view that marks a capture as the scanned consent form (the service's CONSENT_FORM_VIEW). */
export const CONSENT_FORM_VIEW = "consent form";
const POLL_MS = 250;
const POLL_LIMIT = 240; // about a minute

/** @param {HTMLFormElement} form @param {string} name @returns {string | undefined} */
function chosen(form, name) {
  return /** @type {HTMLInputElement | null} */ (form.querySelector(`input[name="${name}"]:checked`))?.value;
}

/** Store the form's photo; resolves with its capture id once the service has encoded it (the
 * consent may point only at a photo that was not refused). The file stays in memory only. */
async function storeFormPhoto(contextId, file) {
  const captureId = crypto.randomUUID();
  const data = new FormData();
  data.append("photo", file, file.name || "consent-form.jpg");
  data.append("capture_id", captureId);
  data.append("context_id", contextId);
  data.append("view", CONSENT_FORM_VIEW);
  data.append("captured_at", new Date().toISOString());
  let capture = await postForm(paths.captures, data);
  for (let i = 0; !capture.sop_instance_uid; i += 1) {
    if (capture.status === "failed") throw new ApiError(422, capture.reason || "");
    if (i >= POLL_LIMIT) throw new ApiError(408, "");
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    capture = await getJson(capture.status_url);
  }
  return captureId;
}

/** Ask for consent; resolves true once it is recorded, false when the user declines. */
export function askConsent(contextId, detail) {
  const dialog = /** @type {HTMLDialogElement} */ ($("consent"));
  const form = /** @type {HTMLFormElement} */ ($("consent-form"));
  $("consent-detail").textContent = detail || "";
  say("consent-message", "");
  const photo = /** @type {HTMLInputElement} */ ($("consent-photo"));
  photo.value = "";
  /** @type {{file: File, id: string} | null} */
  let stored = null; // {file, id}: a form photo already stored is not sent twice
  const syncName = () => {
    $("consenter-name-box").hidden = chosen(form, "consenter") === "patient";
    $("consent-photo-box").hidden = chosen(form, "method") !== "written";
    const file = photo.files?.[0];
    say("consent-photo-name", file ? t("consent.form_ready", { name: file.name }) : "");
    say("consent-message", "");
  };
  syncName();
  form.addEventListener("input", syncName);
  return new Promise((resolve) => {
    const finish = (recorded) => {
      form.removeEventListener("input", syncName);
      form.removeEventListener("submit", submit);
      photo.value = "";
      $("consent-cancel").removeEventListener("click", cancel);
      dialog.close();
      resolve(recorded);
    };
    const cancel = () => finish(false);
    async function submit(event) {
      event.preventDefault();
      const consenter = chosen(form, "consenter");
      const name = /** @type {HTMLInputElement} */ ($("consenter-name")).value.trim();
      if (!(/** @type {HTMLInputElement} */ ($("consent-agree")).checked)) return say("consent-message", t("consent.needs_agree"), "error");
      if (consenter !== "patient" && !name) return say("consent-message", t("consent.needs_name"), "error");
      /** @type {{consenter?: string, method?: string, consenter_name?: string, form_capture_id?: string}} */
      const body = { consenter, method: chosen(form, "method") };
      if (consenter !== "patient") body.consenter_name = name;
      const file = body.method === "written" ? photo.files?.[0] : null;
      if (file) {
        if (stored?.file !== file) {
          say("consent-message", t("consent.form_sending"), "info");
          try {
            stored = { file, id: await storeFormPhoto(contextId, file) };
          } catch (error) {
            return say("consent-message", t("consent.form_failed", { detail: /** @type {Error} */ (error).message }), "error");
          }
        }
        body.form_capture_id = stored.id;
      }
      try {
        await postJson(paths.consent(contextId), body);
      } catch (error) {
        return say("consent-message", /** @type {Error} */ (error).message, "error");
      }
      finish(true);
    }
    form.addEventListener("submit", submit);
    $("consent-cancel").addEventListener("click", cancel);
    dialog.showModal();
  });
}
