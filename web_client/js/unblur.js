// Break-the-glass: a user with the sensitive-viewer role sees one blurred earlier photo clearly,
// after typing why. The reason goes in the body of a POST to the photo's `unblur_url` (never in
// a URL); the service checks the role and the reason (at least 10 characters: its rule, its
// message) and records the view in the audit trail. The clear JPEG lives only as a Blob in
// memory behind an object URL, revoked as soon as it is hidden or the screen changes. Once it
// is shown, the reason form closes (emptied): a second view of it is a new request, with a new
// reason.

import { t } from "../i18n/en.js";
import { $, say } from "./dom.js";
import { postForBlob } from "./api.js";

const ROLE = "sensitive-viewer";
const SIZE = 1024;

/** @type {{url: string, date: string} | null} */
let chosen = null; // {url, date} of the photo asked for
/** @type {string | null} */
let objectUrl = null;

/** Whether this session may ask for clear photos (the service checks again on every request). */
export function mayUnblur(session) {
  return Array.isArray(session?.roles) && session.roles.includes(ROLE);
}

const reasonInput = () => /** @type {HTMLTextAreaElement} */ ($("unblur-reason"));

function forgetImage() {
  const image = $("unblur-image");
  image.removeAttribute("src");
  image.hidden = true;
  $("unblur-hide").hidden = true;
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = null;
}

/** Hide the panel and drop the clear image (and its object URL); the form is ready again. */
export function closeUnblur() {
  forgetImage();
  chosen = null;
  reasonInput().value = "";
  $("unblur-form").hidden = false;
  say("unblur-message", "");
  $("unblur-box").hidden = true;
}

/** Open the reason panel for one blurred prior (`item.unblur_url`, shown as `date`). */
export function openUnblur(item, date) {
  closeUnblur();
  chosen = { url: item.unblur_url, date };
  $("unblur-photo").textContent = t("priors.item", { date });
  $("unblur-box").hidden = false;
  $("unblur-reason").focus();
}

async function submit(event) {
  event.preventDefault();
  if (!chosen) return;
  const asked = chosen;
  forgetImage();
  say("unblur-message", t("unblur.loading"), "info");
  let blob;
  try {
    blob = await postForBlob(asked.url, { reason: reasonInput().value, size: SIZE });
  } catch (error) {
    if (chosen === asked) say("unblur-message", /** @type {Error} */ (error).message, "error");
    return;
  }
  if (chosen !== asked) return; // closed or another photo chosen meanwhile: never shown
  objectUrl = URL.createObjectURL(blob);
  const image = /** @type {HTMLImageElement} */ ($("unblur-image"));
  image.alt = t("unblur.image", { date: asked.date });
  image.src = objectUrl;
  image.hidden = false;
  reasonInput().value = "";
  $("unblur-form").hidden = true; // done: the reason was recorded with this view
  $("unblur-hide").hidden = false;
  $("unblur-hide").focus(); // the submit button that had the focus is gone
  say("unblur-message", t("unblur.shown"), "success");
}

$("unblur-form").addEventListener("submit", submit);
$("unblur-cancel").addEventListener("click", () => closeUnblur());
$("unblur-hide").addEventListener("click", () => closeUnblur());
document.addEventListener("screenchange", (event) => {
  if (/** @type {CustomEvent<{id: string}>} */ (event).detail.id !== "screen-details") closeUnblur();
});
