// Sending a queued photo, shared by the page (js/uploader.js) and the service worker (sw.js).
//
// One photo at a time, whoever sends it: both hold the Web Lock `capture-queue-send` while they
// upload, and re-read the record under it, so a photo the other one has sent (or is following)
// is never uploaded again. (The service would keep one anyway: the capture id makes a second
// upload the same capture; the lock saves the phone's uplink.)
//
// Background delivery (Background Sync, where the browser has it: Chromium): the page asks for
// a sync when a photo waits; the browser fires it when the network is back, also with the
// page closed, and the service worker sends what the signed-in session may send: it asks the
// service for the session (its CSRF token) and for the queue key (js/custody.js), both with
// the session cookie. Without a session nothing is sent: the next sign-in offers the photos.
// Where there is no Background Sync (Safari), the page sends them when it is opened again.

import { Custody, call, queuePaths, sessionTag } from "./custody.js";
import { Damaged, Vault } from "./vault.js";

export { Vault }; // for the service worker, which imports this module only

export const SYNC_TAG = "capture-queue";
const SEND_LOCK = "capture-queue-send";
const FOLLOW_MS = 120_000;

/** The multipart form of `POST /api/v1/captures` for a queued photo.
 * @param {string} id @param {Record<string, any>} meta @param {Blob} blob */
export function formOf(id, meta, blob) {
  const form = new FormData();
  form.append("photo", blob, meta.filename || "photo.jpg");
  form.append("capture_id", id);
  form.append("context_id", meta.context_id);
  form.append("sensitivity", meta.sensitivity || "normal");
  form.append("captured_at", meta.captured_at);
  for (const name of ["body_site", "laterality", "note", "view", "lesion", "dermoscopic", "polarization", "contact"]) {
    if (meta[name]) form.append(name, meta[name]);
  }
  for (const category of meta.categories || []) form.append("categories", category);
  return form;
}

/** Run `fn` holding the queue's send lock (without Web Locks: at once).
 * @template T @param {() => Promise<T>} fn @returns {Promise<T>} */
export function withSendLock(fn) {
  return navigator.locks ? navigator.locks.request(SEND_LOCK, fn) : fn();
}

/** What became of one photo in the background. @typedef {"verified" | "accepted" | "retry" |
 * "signed-out" | "left"} Outcome */

/**
 * Send every photo the signed-in session may send and follow each until verified (then it
 * is wiped). Throws when the network is gone, so the browser fires the sync again later.
 * @param {Vault} vault
 * @param {(id: string, state: string) => void} notify tells open pages (none, usually)
 */
export async function deliverInBackground(vault, notify) {
  const signedIn = await call(queuePaths.session, { headers: { Accept: "application/json" } });
  if (signedIn.status === 0 || signedIn.status >= 500) throw new Error("offline"); // the browser fires the sync again later
  if (signedIn.status !== 200) return; // no session: the next sign-in offers them
  const tag = await sessionTag(signedIn.body);
  const headers = () => ({ "X-CSRF-Token": signedIn.body.csrf_token });
  const custody = new Custody(vault, { headers });
  const mine = (await vault.records()).filter((r) => r.session === tag);
  for (const kid of new Set(mine.map((r) => r.kid))) {
    if (!vault.unlocked(kid)) await custody.open(kid);
  }
  let retry = false;
  for (const { id } of mine) {
    const outcome = await withSendLock(() => sendOne(vault, id, headers));
    if (outcome === "signed-out") return;
    if (outcome === "retry") retry = true;
    if (outcome === "accepted") {
      notify(id, "received");
      const final = await follow(vault, id, Date.now() + FOLLOW_MS);
      if (final === "verified") notify(id, "verified");
      else retry = true;
    }
  }
  vault.lock();
  if (retry) throw new Error("pending"); // some are still on their way: again later
}

/** Upload one queued photo (under the send lock).
 * @param {Vault} vault @param {string} id @param {() => Record<string, string>} headers
 * @returns {Promise<Outcome>} */
async function sendOne(vault, id, headers) {
  const record = await vault.get(id);
  if (!record) return "left"; // the page sent it meanwhile
  if (record.accepted) return "accepted";
  let item;
  try {
    item = await vault.unseal(id);
  } catch (error) {
    if (error instanceof Damaged) return "left"; // the page reports it and deletes it
    throw error;
  }
  if (!item) return "left";
  const form = formOf(id, item.meta, item.blob);
  const answer = await call(queuePaths.captures, { method: "POST", headers: { Accept: "application/json", ...headers() }, body: form });
  if (answer.status === 202 || answer.status === 200) {
    await vault.update([id], { accepted: true });
    return "accepted";
  }
  if (answer.status === 401) return "signed-out";
  const transient = answer.status === 0 || answer.status === 408 || answer.status === 429 || answer.status >= 500;
  return transient ? "retry" : "left"; // refused for good: the page shows why, with Retake
}

/** Poll the capture until the archive has it (then wipe the photo) or until `deadline`.
 * @param {Vault} vault @param {string} id @param {number} deadline */
async function follow(vault, id, deadline) {
  let wait = 250;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(3000, wait * 1.5);
    const answer = await call(queuePaths.capture(id), { headers: { Accept: "application/json" } });
    if (answer.status === 200 && answer.body.status === "verified") {
      await vault.remove(id); // wiped as soon as the archive shows it
      return "verified";
    }
    if (answer.status === 200 && answer.body.status === "failed") return "failed"; // the page says why
    if (answer.status === 401 || answer.status === 403 || answer.status === 404) return "left";
  }
  return "pending";
}
