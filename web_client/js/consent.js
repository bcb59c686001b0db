// The consent step: shown only when the service answers an upload with 428 (the deployment
// requires recorded consent first). It records consent with POST /api/v1/contexts/{id}/consent;
// the queued photos then go on.

import { t } from "../i18n/en.js";
import { $, say } from "./dom.js";
import { paths, postJson } from "./api.js";

function chosen(form, name) {
  return form.querySelector(`input[name="${name}"]:checked`)?.value;
}

/** Ask for consent; resolves true once it is recorded, false when the user declines. */
export function askConsent(contextId, detail) {
  const dialog = $("consent");
  const form = $("consent-form");
  $("consent-detail").textContent = detail || "";
  say("consent-message", "");
  const syncName = () => {
    $("consenter-name-box").hidden = chosen(form, "consenter") === "patient";
    say("consent-message", "");
  };
  syncName();
  form.addEventListener("input", syncName);
  return new Promise((resolve) => {
    const finish = (recorded) => {
      form.removeEventListener("input", syncName);
      form.removeEventListener("submit", submit);
      $("consent-cancel").removeEventListener("click", cancel);
      dialog.close();
      resolve(recorded);
    };
    const cancel = () => finish(false);
    async function submit(event) {
      event.preventDefault();
      const consenter = chosen(form, "consenter");
      const name = $("consenter-name").value.trim();
      if (!$("consent-agree").checked) return say("consent-message", t("consent.needs_agree"), "error");
      if (consenter !== "patient" && !name) return say("consent-message", t("consent.needs_name"), "error");
      const body = { consenter, method: chosen(form, "method") };
      if (consenter !== "patient") body.consenter_name = name;
      try {
        await postJson(paths.consent(contextId), body);
      } catch (error) {
        return say("consent-message", error.message, "error");
      }
      finish(true);
    }
    form.addEventListener("submit", submit);
    $("consent-cancel").addEventListener("click", cancel);
    dialog.showModal();
  });
}
