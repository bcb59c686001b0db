// capture, the phone client: patient -> body site -> privacy -> photos -> review -> send.
// The patient banner stays on top of every screen. Photos are only in memory until "send",
// then only encrypted in IndexedDB until the archive has them (js/vault.js).

import { t } from "./i18n/en.js";
import { $, notice, say, showScreen, translate } from "./js/dom.js";
import { ApiError, paths, postJson, setCsrfToken } from "./js/api.js";
import {
  claimWorkitem,
  closeWorkitem as finishWorkitem,
  loadContext,
  loadSession,
  renderBanner,
  renderWorklist,
  scanWristband,
  unclaimWorkitem,
} from "./js/patient.js";
import { SitePicker } from "./js/site.js";
import { describeSite, lesionFields, renderDetails, renderPriors, siteTitle } from "./js/details.js";
import { Camera } from "./js/camera.js";
import { SendList, renderReview, thumbnail } from "./js/photos.js";
import { Vault } from "./js/vault.js";
import { Uploader } from "./js/uploader.js";
import { askConsent } from "./js/consent.js";
import { mayUnblur } from "./js/unblur.js";

/** @typedef {import("./js/details.js").Site} Site */
/** @typedef {import("./js/photos.js").Photo} Photo */
/** The open patient context (ContextOut; `workitem_uid` when claimed from the worklist).
 * @typedef {{context_id: string, workitem_uid?: string, [field: string]: any}} Context */

/** What the page holds: the session, the patient, the chosen site, the photos not yet sent.
 * @type {{session: any, context: Context | null, site: Site | null, photos: Photo[], retaking: number | null}} */
const state = { session: null, context: null, site: null, photos: [], retaking: null };
/** @type {Vault | null} */
let vault = null;
/** @type {Uploader | null} */
let uploader = null;
// What the flow guarantees, for the type checker (a cast, no check at run time): the vault and
// the uploader exist once the session has loaded, before a patient can be opened; a patient is
// open before a site can be chosen; the details, camera, review and send screens have a site.
const theVault = () => /** @type {Vault} */ (vault);
const theUploader = () => /** @type {Uploader} */ (uploader);
const theContext = () => /** @type {Context} */ (state.context);
const theSite = () => /** @type {Site} */ (state.site);
const sendList = new SendList({
  retake: (id, site) => retakeFailed(id, site),
  remove: (id) => removeFailed(id),
});
const picker = new SitePicker((choice) => chooseSite(choice));
const camera = new Camera((photo) => addPhoto(photo));

// --- start ---------------------------------------------------------------------------------

async function sessionTag(session) {
  const basis = session.csrf_token || `${session.iss}|${session.expires_at}|${session.context_id}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(basis));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function openVault(session) {
  const expires = session.expires_at ? Date.parse(session.expires_at) : null;
  vault = await Vault.open(await sessionTag(session), expires);
  uploader = new Uploader(vault);
  uploader.addEventListener("change", (event) => onUploadChange(/** @type {CustomEvent} */ (event).detail));
  uploader.addEventListener("consent-required", (event) => onConsentRequired(/** @type {CustomEvent} */ (event).detail.detail));
  uploader.addEventListener("session-expired", () => onSessionExpired());
  return vault.purgeLeftovers();
}

async function boot() {
  translate();
  document.title = t("app.title");
  watchNetwork();
  registerServiceWorker();
  showScreen("screen-patient");
  let session;
  try {
    session = await loadSession();
  } catch (error) {
    renderBanner(null);
    say("patient-message", startError(error), "error");
    return;
  }
  state.session = session;
  setCsrfToken(session.csrf_token);
  picker.loadNames(); // meanwhile: the map's names are ready when it is shown
  const purged = await openVault(session);
  if (purged) say("site-message", t("patient.leftovers", { count: purged }), "warning");
  if (!session.context_id) return choosePatient();
  try {
    const context = await loadContext(session.context_id);
    openContext({ context_id: session.context_id, ...context }, false);
  } catch (error) {
    renderBanner(null);
    say("patient-message", /** @type {Error} */ (error).message, "error");
  }
}

function startError(error) {
  if (error.status === 401) return t("patient.not_signed_in");
  if (error.status === 0) return t("patient.unreachable");
  return error.message;
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {}); // optional: offline shell
}

function watchNetwork() {
  window.addEventListener("offline", () => say("net-status", t("app.offline"), "warning"));
  window.addEventListener("online", () => {
    // "sending" only while something waits to be sent; a notice of the moment either way
    if (uploader && uploader.unsent() > 0) notice("net-status", t("app.online"), "info");
    else say("net-status", "");
    setTimeout(() => navigator.onLine && say("net-status", ""), 3000);
  });
  if (!navigator.onLine) say("net-status", t("app.offline"), "warning");
  window.addEventListener("beforeunload", (event) => {
    if ((uploader && uploader.unsent() > 0) || state.photos.length > 0) {
      event.preventDefault();
      event.returnValue = t("app.leave_warning");
    }
  });
}

// --- patient -------------------------------------------------------------------------------

function choosePatient() {
  renderBanner(null);
  say("patient-message", t("patient.choose"), "info");
  $("patient-choose").hidden = false;
  renderWorklist(async (item) => {
    try {
      openContext(await claimWorkitem(item.uid), true);
    } catch (error) {
      say("patient-message", /** @type {Error} */ (error).message, "error");
    }
  });
}

$("scan-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    openContext(await scanWristband(/** @type {HTMLInputElement} */ ($("scan-input")).value.trim()), true);
  } catch (error) {
    say("patient-message", /** @type {Error} */ (error).message, "error");
  }
});

/** A patient is open: the banner shows them; a scanned or claimed one is confirmed first. */
function openContext(context, confirm) {
  state.context = context;
  renderBanner(context);
  $("patient-choose").hidden = true;
  say("patient-message", "");
  if (!confirm) return startSite();
  $("patient-confirm").hidden = false;
  showScreen("screen-patient");
}

$("patient-yes").addEventListener("click", () => {
  $("patient-confirm").hidden = true;
  startSite();
});

$("patient-no").addEventListener("click", async () => {
  const wrong = theContext();
  state.context = null;
  $("patient-confirm").hidden = true;
  if (wrong.workitem_uid) await unclaimWorkitem(wrong.context_id).catch(() => {});
  /** @type {HTMLInputElement} */ ($("scan-input")).value = "";
  choosePatient();
});

// --- site and details ----------------------------------------------------------------------

function startSite() {
  camera.stopLive();
  picker.clearSearch();
  picker.select(state.site); // the current site (and side), however it was chosen
  picker.render();
  showScreen("screen-site");
  picker.loadNames();
  picker.loadLesions(theContext().context_id);
}

async function chooseSite(choice) {
  try {
    state.site = await describeSite(choice);
  } catch (error) {
    say("site-message", error instanceof ApiError && error.status === 404 ? t("site.unknown", { code: choice.code }) : /** @type {Error} */ (error).message, "error");
    return;
  }
  rememberSite();
  renderDetails(state.site);
  showScreen("screen-details");
  loadPriors();
}

/** The current site (and side) in the recent sites, by its one name; `replaced`: the name it
 * had before its side was changed. */
function rememberSite(replaced = null) {
  const { code, laterality } = theSite();
  picker.remember({ code, laterality, label: siteTitle(state.site) }, replaced);
}

async function loadPriors() {
  const newest = await renderPriors(theContext().context_id, state.site, {
    canUnblur: mayUnblur(state.session),
  });
  camera.setOverlay(newest ? newest.preview_url : null);
}

for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('input[name="side"]'))) {
  input.addEventListener("change", () => {
    const before = siteTitle(state.site);
    theSite().laterality = input.value;
    rememberSite(before);
    renderDetails(state.site);
    loadPriors();
  });
}
for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('input[name="sensitivity"]'))) {
  input.addEventListener("change", () => (theSite().sensitivity = input.value));
}

$("details-change").addEventListener("click", () => startSite());
$("details-take").addEventListener("click", () => {
  if (theSite().paired && !theSite().laterality) {
    $("side-needed").hidden = false;
    /** @type {HTMLInputElement} */ (document.querySelector('input[name="side"]')).focus();
    return;
  }
  openCamera();
});

// --- camera and review ---------------------------------------------------------------------

function openCamera() {
  $("camera-site").textContent = siteTitle(state.site);
  updateCount();
  showScreen("screen-camera");
}

function updateCount() {
  $("camera-count").textContent = t("camera.count", { count: state.photos.length });
  /** @type {HTMLButtonElement} */ ($("camera-review")).disabled = state.photos.length === 0;
}

async function addPhoto({ blob, filename, kind }) {
  const photo = {
    id: crypto.randomUUID(),
    blob,
    filename,
    kind, // what its bytes are (js/sniff.js): "jpeg" or "heic"
    thumb: await thumbnail(blob),
    note: "",
    view: "",
    capturedAt: new Date().toISOString(),
  };
  if (state.retaking !== null) state.photos.splice(state.retaking, 1, photo);
  else state.photos.push(photo);
  state.retaking = null;
  updateCount();
  if (!camera.stream) openReview(); // from the phone's camera app: straight to review
}

function openReview() {
  camera.stopLive();
  $("review-site").textContent = siteTitle(state.site);
  renderReview(state.photos, {
    retake(photo) {
      state.retaking = state.photos.indexOf(photo);
      openCamera();
    },
    remove(photo) {
      state.photos.splice(state.photos.indexOf(photo), 1);
      openReview();
    },
  });
  showScreen("screen-review");
}

$("camera-review").addEventListener("click", () => openReview());
$("review-more").addEventListener("click", () => openCamera());
$("review-send").addEventListener("click", () => sendAll());

// --- sending -------------------------------------------------------------------------------

async function sendAll() {
  const site = { ...state.site }; // as it is now: a retake of a failed photo goes back to it
  const title = siteTitle(site);
  const photos = state.photos.splice(0);
  showScreen("screen-send");
  say("send-message", "");
  for (const photo of photos) {
    const meta = {
      context_id: theContext().context_id,
      body_site: site.code,
      laterality: site.laterality,
      sensitivity: site.sensitivity,
      categories: site.categories,
      note: photo.note.trim(),
      view: photo.view.trim(),
      captured_at: photo.capturedAt,
      filename: photo.filename,
      ...lesionFields(site),
    };
    await theVault().seal(photo.id, meta, photo.blob);
    photo.blob = null; // from now on only the encrypted copy exists
    sendList.add(photo, site, title);
    theUploader().add(photo.id);
  }
  updateCount();
}

function onUploadChange(change) {
  sendList.update(change);
  sayIfAllDone();
}

function sayIfAllDone() {
  const states = theUploader().states;
  if (states.size && [...states.values()].every((s) => s.state === "verified")) {
    say("send-message", t("send.all_done"), "success");
  }
}

/** A photo that failed for good, off the list: its encrypted copy too, if one is left. */
async function removeFailed(id) {
  await theVault().remove(id);
  theUploader().forget(id);
  sendList.remove(id);
  sayIfAllDone();
}

/** Take a failed photo again: off the list, then the camera for the same site and side. */
async function retakeFailed(id, site) {
  await removeFailed(id);
  state.site = { ...site };
  openCamera();
  loadPriors(); // the overlay of the live camera: the latest photo of that site
}

async function onConsentRequired(detail) {
  if (await askConsent(theContext().context_id, detail)) theUploader().resume();
  else await theUploader().discardQueued(t("consent.declined"));
}

async function onSessionExpired() {
  await theUploader().discardQueued(t("error.session_expired"));
  await theVault().purgeMine();
  say("send-message", t("error.session_expired"), "error");
  say("site-message", t("error.session_expired"), "error");
}

/** A claimed worklist encounter: completed, or given back when no photo was taken
 * (js/patient.js); returns the worklist server's refusal in words, or "". */
async function closeWorkitem(context) {
  const taken = [...theUploader().states.values()].some((s) => s.state !== "failed");
  return finishWorkitem(context, taken);
}

$("send-more").addEventListener("click", () => openCamera());
$("send-other").addEventListener("click", () => startSite());
$("send-finish").addEventListener("click", () => finish());

/** Sign out and leave nothing: the queue, the previews, the session cookie. */
async function finish() {
  if (uploader && uploader.unsent() > 0 && !window.confirm(t("finish.confirm"))) return;
  camera.stopLive();
  if (uploader) {
    await uploader.discardQueued(t("finish.done"));
    uploader.stop(); // photos the service already has go on to the archive without us
  }
  const refused = await closeWorkitem(state.context);
  if (vault) await vault.purgeMine();
  state.photos = [];
  state.site = null;
  picker.forget();
  sendList.clear();
  say("net-status", ""); // "Offline: photos stay on this phone ..." is not true any more
  const signedOut = await postJson(paths.logout, {}).then(
    () => true,
    () => false,
  );
  setCsrfToken(null);
  state.context = null;
  renderBanner(null);
  $("patient-choose").hidden = true;
  showScreen("screen-patient");
  const done = t(signedOut ? "finish.done" : "finish.offline");
  say("patient-message", refused ? `${done} ${refused}` : done, refused || !signedOut ? "warning" : "success");
}

boot();
