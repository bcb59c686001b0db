// capture, the phone client: patient -> body site -> privacy -> photos -> review -> send.
// The patient banner stays on top of every screen. Photos are only in memory until "send",
// then only encrypted in IndexedDB until the archive has them (js/vault.js), openable only
// with the key the service hands to this user's session (js/custody.js): they survive a
// reload, a closed tab or a restart, and are offered again at the user's next sign-in.

import { t } from "./i18n/en.js";
import { $, notice, say, showScreen, translate } from "./js/dom.js";
import { ApiError, paths, postJson, setCsrfToken, unsafeHeaders } from "./js/api.js";
import {
  claimWorkitem,
  closeWorkitem as finishWorkitem,
  displayName,
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
import { Custody, queuePaths, sessionTag } from "./js/custody.js";
import { EarlierOffer } from "./js/earlier.js";
import { Uploader, askForBackgroundDelivery } from "./js/uploader.js";
import { askConsent } from "./js/consent.js";
import { mayUnblur } from "./js/unblur.js";
import { offerRefile } from "./js/refile.js";
import { offerMeasure } from "./js/measure.js";

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
/** @type {Custody | null} */
let custody = null;
// What the flow guarantees, for the type checker (a cast, no check at run time): the vault and
// the uploader exist once the session has loaded, before a patient can be opened; a patient is
// open before a site can be chosen; the details, camera, review and send screens have a site.
const theVault = () => /** @type {Vault} */ (vault);
const theUploader = () => /** @type {Uploader} */ (uploader);
const theCustody = () => /** @type {Custody} */ (custody);
const theContext = () => /** @type {Context} */ (state.context);
const theSite = () => /** @type {Site} */ (state.site);
const sendList = new SendList({
  retake: (id, site) => retakeFailed(id, site),
  remove: (id) => removeFailed(id),
});
const picker = new SitePicker((choice) => chooseSite(choice));
const camera = new Camera((photo) => addPhoto(photo));
const earlier = new EarlierOffer({ send: (group) => sendEarlier(group), discard: (group) => discardEarlier(group) });
/** The earlier sign-in's photos being sent now: context id -> its group.
 * @type {Map<string, import("./js/earlier.js").EarlierGroup>} */
const handedOver = new Map();

// --- start ---------------------------------------------------------------------------------

async function boot() {
  translate();
  document.title = t("app.title");
  watchNetwork();
  registerServiceWorker();
  $("queue-offer-close").addEventListener("click", () => earlier.hide());
  showScreen("screen-patient");
  await purgeExpired();
  await start();
}

/** What the queue has to say before anything else (photos purged past the retention limit). */
const queueNotices = [];

/** Photos past the retention limit go at once, even offline and signed out: the phone's own
 * clock decides; the service's audit trail is told once the phone is online and signed in. */
async function purgeExpired() {
  const opened = (vault ??= await Vault.open());
  const expired = await opened.purgeExpired();
  if (!expired.length) return;
  await new Custody(opened, { headers: unsafeHeaders }).report("retention", expired);
  const hours = Math.round((expired[0].purge_after - expired[0].created) / 3_600_000);
  queueNotices.push(t("queue.expired", { count: expired.length, hours }));
}

/** Sign-in, the queue, the patient; again when the network returns if capture was unreachable
 * (e.g. a reload while offline: the shell comes from the service worker's cache). */
async function start() {
  let session;
  try {
    session = await loadSession();
  } catch (error) {
    renderBanner(null);
    say("patient-message", [startError(error), ...queueNotices].join(" "), "error");
    if (/** @type {ApiError} */ (error).status === 0) window.addEventListener("online", () => start(), { once: true });
    return;
  }
  say("patient-message", "");
  state.session = session;
  setCsrfToken(session.csrf_token);
  picker.loadNames(); // meanwhile: the map's names are ready when it is shown
  const restored = await openQueue(session);
  if (!session.context_id) return choosePatient();
  try {
    const context = await loadContext(session.context_id);
    openContext({ context_id: session.context_id, ...context }, false);
  } catch (error) {
    renderBanner(null);
    say("patient-message", /** @type {Error} */ (error).message, "error");
    return;
  }
  if (restored) {
    showScreen("screen-send"); // where the nurse was: the photos go on their way
    say("send-message", t("queue.restored", { count: restored }), "info");
  }
}

/** Open the queue with this user's key: purge what can never be sent (and say so), resend
 * this sign-in's photos, offer the earlier sign-ins' ones. Returns how many were resent. */
async function openQueue(session) {
  const tag = await sessionTag(session);
  const opened = (vault ??= await Vault.open());
  custody = new Custody(opened, { integration: !!session.integration, headers: unsafeHeaders });
  const found = await custody.start();
  uploader = new Uploader(opened, tag);
  uploader.addEventListener("change", (event) => onUploadChange(/** @type {CustomEvent} */ (event).detail));
  uploader.addEventListener("consent-required", (event) => onConsentRequired(/** @type {CustomEvent} */ (event).detail.detail));
  uploader.addEventListener("session-expired", () => onSessionExpired());
  uploader.addEventListener("damaged", (event) => onDamaged(/** @type {CustomEvent} */ (event).detail.record));
  const restored = await takeUp(tag, found, () => true, queueNotices.splice(0));
  custody.flush();
  if (custody.pending) askAgain(custody, tag);
  return restored;
}

/** This user's photos under the custodies `which` names, just opened: what was purged is
 * said, this sign-in's photos go back on the sending list, earlier sign-ins' ones are offered.
 * @param {string} tag @param {import("./js/custody.js").Opened} found
 * @param {(kid: string) => boolean} which @param {string[]} [messages] said with the rest */
async function takeUp(tag, found, which, messages = []) {
  const opened = theVault();
  const hours = Math.round(theCustody().retentionMs / 3_600_000);
  if (found.expired.length) messages.push(t("queue.expired", { count: found.expired.length, hours }));
  if (found.unreadable.length) messages.push(t("queue.unreadable", { count: found.unreadable.length }));
  if (found.leftovers) messages.push(t("patient.leftovers", { count: found.leftovers }));
  if (found.others) messages.push(t("queue.others", { count: found.others }));

  // This user's photos: the metadata says what and whom; a record failing its tag goes.
  const mine = [];
  const damaged = [];
  for (const record of await opened.records()) {
    if (!opened.unlocked(record.kid) || !which(record.kid)) continue;
    try {
      mine.push({ record, meta: await opened.meta(record) });
    } catch {
      damaged.push(record);
    }
  }
  const lost = [...found.damaged, ...damaged];
  if (lost.length) messages.push(t("queue.damaged", { count: lost.length }));
  if (damaged.length) {
    await theCustody().report("damaged", damaged);
    for (const record of damaged) await opened.remove(record.id);
  }
  if (messages.length) say("site-message", messages.join(" "), "warning");

  const now = mine.filter((m) => m.record.session === tag);
  for (const { record, meta } of now) await restore(record.id, meta);
  offerEarlier(mine.filter((m) => m.record.session !== tag));
  return now.length;
}

/** Ask the service again for what opening the queue could not get (a key it did not answer
 * for, a key of its own in place of a page-only stopgap): soon, then less often, and at once
 * when the network comes back; until it answers or this custody is signed out.
 * @param {Custody} owner @param {string} tag @param {number} [delay] ms */
function askAgain(owner, tag, delay = 2000) {
  const again = async () => {
    clearTimeout(timer);
    window.removeEventListener("online", again);
    if (custody !== owner || !owner.pending) return;
    try {
      const { opened, found } = await owner.retry();
      if (custody !== owner) return;
      await takeUp(tag, found, (kid) => opened.includes(kid));
      owner.flush();
    } finally {
      if (custody === owner && owner.pending) askAgain(owner, tag, Math.min(delay * 2, 60_000));
    }
  };
  const timer = setTimeout(again, delay);
  window.addEventListener("online", again);
}

/** A photo of this sign-in found in the queue after a reload: back on the sending list. */
async function restore(id, meta) {
  const item = await theVault().unseal(id).catch(() => null);
  const thumb = item ? await thumbnail(item.blob) : null;
  const site = meta.site || { code: meta.body_site, laterality: meta.laterality };
  sendList.add({ id, thumb, kind: meta.kind || "jpeg" }, site, meta.site_title || "");
  theUploader().add(id);
}

/** The earlier sign-ins' photos of this user, per patient, offered to send or delete. */
function offerEarlier(found) {
  /** @type {Map<string, import("./js/earlier.js").EarlierGroup>} */
  const groups = new Map();
  for (const { record, meta } of found) {
    /** @type {import("./js/earlier.js").EarlierGroup} */
    const group = groups.get(meta.context_id) ?? { context: meta.context_id, patient: meta.patient, ids: [], taken: record.created };
    group.ids.push(record.id);
    groups.set(meta.context_id, group);
  }
  earlier.add([...groups.values()]);
}

/** "Send to NAME's record": the service hands this sign-in that patient's earlier context
 * (only if this user opened it), then the photos go there like any others. */
async function sendEarlier(group) {
  const name = group.patient.name;
  earlier.status(group, "sending", t("queue.offer_asking", { name }));
  let context;
  try {
    context = await postJson(queuePaths.handoffs, { context_id: group.context });
  } catch (error) {
    if (error instanceof ApiError && !error.transient) {
      earlier.status(group, "refused", t("queue.offer_refused", { detail: error.detail, name }));
    } else {
      earlier.again(group, t("queue.offer_unreachable"));
    }
    return;
  }
  if (context.patient?.id !== group.patient.mrn) {
    // The context is not the patient these photos name: never sent there.
    earlier.status(group, "refused", t("queue.offer_wrong_patient", { name }));
    return;
  }
  handedOver.set(group.context, group);
  await theVault().update(group.ids, { session: theUploader().session });
  earlier.status(group, "sending", t("queue.offer_sending", { done: 0, count: group.ids.length, name }));
  for (const id of group.ids) theUploader().add(id);
}

/** "Yes, delete them": gone from the phone, and the service's audit trail told. */
async function discardEarlier(group) {
  const records = [];
  for (const id of group.ids) {
    const record = await theVault().get(id);
    if (record) records.push(record);
    await theVault().remove(id);
  }
  await theCustody().report("discarded", records);
  theCustody().flush();
  earlier.status(group, "deleted", t("queue.offer_deleted", { count: group.ids.length, name: group.patient.name }));
}

function startError(error) {
  if (error.status === 401) return t("patient.not_signed_in");
  if (error.status === 0) return t("patient.unreachable");
  return error.message;
}

function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  // A module worker: it imports the queue's own modules for background delivery (sw.js).
  navigator.serviceWorker.register("/sw.js", { scope: "/", type: "module" }).catch(() => {}); // optional
  navigator.serviceWorker.addEventListener("message", (event) => {
    const { type, id, state: where } = event.data || {};
    if (type === "capture-queue" && uploader) uploader.external(id, where);
  });
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
  // Photos sealed under the service's key survive the page; only photos not yet sent to the
  // queue (the review screen) or sealed under a page-only key (integration mode) would be lost.
  window.addEventListener("beforeunload", (event) => {
    const queueLost = uploader && uploader.unsent() > 0 && !custody?.durable;
    if (queueLost || state.photos.length > 0) {
      event.preventDefault();
      event.returnValue = t("app.leave_warning");
    }
  });
  // Leaving with photos still waiting: the browser may send them in the background.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && uploader && uploader.unsent() > 0) askForBackgroundDelivery();
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
  offerRefile(theContext().context_id); // a wrong patient's photo taken back: file it here?
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
  if (newest === undefined) return; // a later site's (or side's) answer sets the overlay
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
  const context = theContext();
  const patient = { name: displayName(context.patient), mrn: context.patient.id, birth_date: context.patient.birth_date };
  showScreen("screen-send");
  say("send-message", "");
  for (const photo of photos) {
    const meta = {
      context_id: context.context_id,
      body_site: site.code,
      laterality: site.laterality,
      sensitivity: site.sensitivity,
      categories: site.categories,
      note: photo.note.trim(),
      view: photo.view.trim(),
      captured_at: photo.capturedAt,
      filename: photo.filename,
      ...lesionFields(site),
      kind: photo.kind,
      site,
      site_title: title,
      patient, // to name them if they have to wait for the next sign-in
    };
    const where = {
      kid: /** @type {string} */ (theCustody().current),
      session: theUploader().session,
      context: context.context_id,
      retentionMs: theCustody().retentionMs,
    };
    await theVault().seal(photo.id, meta, /** @type {Blob} */ (photo.blob), where);
    photo.blob = null; // from now on only the encrypted copy exists
    sendList.add(photo, site, title);
    theUploader().add(photo.id);
  }
  updateCount();
}

function onUploadChange(change) {
  sendList.update(change);
  if (change.state === "verified") offerMeasure(change.id, sendList.rows.get(change.id)?.bar.getAttribute("aria-label") || "");
  followEarlier(change);
  sayIfAllDone();
}

/** An earlier sign-in's photo moved on: the offer panel says how many are in the archive. */
function followEarlier({ id }) {
  const group = earlier.groupOf(id);
  if (!group || !handedOver.has(group.context)) return;
  const states = group.ids.map((i) => theUploader().states.get(i)?.state);
  const name = group.patient.name;
  const done = states.filter((s) => s === "verified").length;
  const failed = group.ids.filter((i) => theUploader().states.get(i)?.state === "failed");
  if (done === group.ids.length) {
    earlier.status(group, "verified", t("queue.offer_done", { count: done, name }));
  } else if (failed.length && done + failed.length === group.ids.length) {
    const reason = theUploader().states.get(failed[0])?.reason || "";
    earlier.status(group, "failed", t("queue.offer_failed", { failed: failed.length, count: group.ids.length, name, reason }));
  } else {
    earlier.status(group, "sending", t("queue.offer_sending", { done, count: group.ids.length, name }));
  }
}

function sayIfAllDone() {
  const states = [...theUploader().states.entries()].filter(([id]) => sendList.rows.has(id)).map(([, s]) => s);
  if (states.length && states.every((s) => s.state === "verified")) {
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
  if (await askConsent(theContext().context_id, detail)) return theUploader().resume();
  const records = await recordsOf(await theUploader().discardQueued(t("consent.declined")));
  await theCustody().report("discarded", records);
  theCustody().flush();
}

/** The queue records of these ids, read before they go. @param {string[]} ids */
async function recordsOf(ids) {
  const records = [];
  for (const id of ids) {
    const record = await theVault().get(id);
    if (record) records.push(record);
  }
  return records;
}

/** The session ended: the photos stay sealed for the next sign-in (photos taken from now on
 * too); with none waiting, the keys leave memory at once. */
async function onSessionExpired() {
  const waiting = theUploader().unsent();
  if (!waiting) theVault().lock();
  const text = waiting ? t("queue.kept", { count: waiting, hours: Math.round(theCustody().retentionMs / 3_600_000) }) : "";
  say("send-message", [t("error.session_expired"), text].join(" ").trim(), "error");
  say("site-message", t("error.session_expired"), "error");
}

/** A queued photo failed its integrity check while being sent: deleted, reported.
 * @param {import("./js/vault.js").QueueRecord | undefined} record */
async function onDamaged(record) {
  say("send-message", t("queue.damaged", { count: 1 }), "error");
  if (record) await theCustody().report("damaged", [record]);
  theCustody().flush();
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

/** Sign out. Photos not sent yet stay sealed for this user's next sign-in (asked first);
 * with none left, this user's queue key goes too (here and at the service): nothing is left. */
async function finish() {
  const waiting = uploader ? uploader.unsent() : 0;
  const hours = custody ? Math.round(custody.retentionMs / 3_600_000) : 0;
  const durable = !!custody?.durable;
  if (waiting > 0 && !window.confirm(t(durable ? "finish.confirm_keep" : "finish.confirm", { count: waiting, hours }))) return;
  camera.stopLive();
  if (uploader) {
    if (!durable) await uploader.discardQueued(t("finish.done"));
    uploader.stop(); // photos the service already has go on to the archive without us
  }
  const refused = await closeWorkitem(state.context);
  if (custody) await custody.release(); // keys of an empty queue go; all leave memory
  state.photos = [];
  state.site = null;
  picker.forget();
  sendList.clear();
  earlier.hide();
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
  const kept = durable && waiting > 0;
  const done = kept ? t("finish.kept", { count: waiting, hours }) : t(signedOut ? "finish.done" : "finish.offline");
  say("patient-message", refused ? `${done} ${refused}` : done, refused || !signedOut ? "warning" : "success");
}

boot();
