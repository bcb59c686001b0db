// Send queued photos and follow each one until the archive has it (verified) or it failed.
//
// One upload at a time (a phone's memory and uplink; the service worker's background delivery
// takes the same Web Lock, js/delivery.js). Each photo's state afterwards is pushed by the
// service (js/feed.js, Server-Sent Events); where that is not available, its status is polled. The upload is the service's
// idempotent multipart POST /api/v1/captures with our own capture id, so sending again after
// a lost answer never makes a second photo. No network, 5xx, 408 and 429 are retried with
// capped exponential backoff and jitter, and at once when the browser says it is online
// again; anything else is final and shown with the service's reason. A session that ends
// (401) keeps the photos, encrypted: the next sign-in of the same user offers them (issue 20).

import { t } from "../i18n/en.js";
import { ApiError, describe, detailOf, unsafeHeaders } from "./api.js";
import { queuePaths } from "./custody.js";
import { SYNC_TAG, formOf, withSendLock } from "./delivery.js";
import { CaptureFeed } from "./feed.js";
import { Damaged, Vault } from "./vault.js";

const MAX_BACKOFF_MS = 30_000;
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 3_000;
const UPLOAD_TIMEOUT_MS = 180_000;
/** States in which a queued photo still has to be uploaded. */
const TO_UPLOAD = new Set(["sealed", "offline", "retrying", "uploading", "consent"]);
/** States of a photo still on the phone, not yet with the service. */
const WAITING = new Set([...TO_UPLOAD, "signin"]);

/** @param {FormData} form @param {(percent: number) => void} onProgress
 * @returns {Promise<{status: number, body: any}>} */
function xhrUpload(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", queuePaths.captures);
    xhr.responseType = "json";
    xhr.timeout = UPLOAD_TIMEOUT_MS;
    for (const [name, value] of Object.entries(unsafeHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress((100 * e.loaded) / e.total);
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.response });
    xhr.onerror = () => reject(new ApiError(0, ""));
    xhr.ontimeout = () => reject(new ApiError(0, ""));
    xhr.send(form);
  });
}

/** Ask the browser to send the queue when the network is back, even with this page closed
 * (Background Sync: Chromium); elsewhere nothing happens and the page sends on its next start. */
export async function askForBackgroundDelivery() {
  if (!("serviceWorker" in navigator)) return;
  const registration = await navigator.serviceWorker.getRegistration().catch(() => undefined);
  const sync = /** @type {{register(tag: string): Promise<void>} | undefined} */ (
    /** @type {any} */ (registration)?.sync
  );
  await sync?.register(SYNC_TAG).catch(() => {});
}

export class Uploader extends EventTarget {
  /** @param {Vault} vault @param {string} session the tag of this sign-in (what it may send) */
  constructor(vault, session) {
    super();
    this.vault = vault;
    this.session = session;
    /** id -> {state, percent, reason, seconds} @type {Map<string, {state: string, [k: string]: any}>} */
    this.states = new Map();
    this.paused = null; // "consent" | "session" | "stopped" | null
    this.running = false;
    this.failures = 0;
    /** @type {(() => void) | null} */
    this.wake = null;
    /** Pushed states; a capture it cannot follow is polled (`#poll`). */
    this.feed = new CaptureFeed(
      (capture) => this.#settled(capture.capture_id, capture),
      (id) => this.#poll(id, queuePaths.capture(id)),
    );
    window.addEventListener("online", () => this.kick());
  }

  /** Where photo `id` is now ({state, ...}); emits "change". */
  set(id, state, extra = {}) {
    this.states.set(id, { state, ...extra });
    this.dispatchEvent(new CustomEvent("change", { detail: { id, state, ...extra } }));
  }

  /** A photo was sealed into the vault (or found there after a reload): send it. */
  add(id) {
    this.set(id, this.paused === "session" ? "signin" : "sealed");
    this.kick();
  }

  resume() {
    this.paused = null;
    this.kick();
  }

  kick() {
    if (this.wake) this.wake();
    if (!this.running) this.#run();
  }

  /** Photos the service does not have yet (still only on this phone). */
  unsent() {
    return [...this.states.values()].filter((s) => WAITING.has(s.state)).length;
  }

  /** Forget a photo that is done with (failed or verified): it leaves `states`. */
  forget(id) {
    if (["failed", "verified"].includes(this.states.get(id)?.state ?? "")) this.states.delete(id);
  }

  /** Signed out: no more uploads or status polls from this page. */
  stop() {
    this.paused = "stopped";
    this.feed.close();
    this.kick();
  }

  /** What the service worker did with a photo while this page was open (a message). */
  external(id, state) {
    if (!this.states.has(id)) return;
    if (state === "verified") this.set(id, "verified");
    else if (state === "received" && TO_UPLOAD.has(this.states.get(id)?.state ?? "")) this.set(id, "received");
  }

  #sleep(ms) {
    return /** @type {Promise<void>} */ (new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    })).finally(() => {
      this.wake = null;
    });
  }

  async #run() {
    this.running = true;
    try {
      while (!this.paused) {
        const ids = await this.vault.sendable(this.session);
        const next = ids.find((id) => TO_UPLOAD.has(this.states.get(id)?.state ?? "sealed"));
        if (!next) break;
        if (await this.#send(next)) {
          this.failures = 0;
          continue;
        }
        askForBackgroundDelivery(); // if this page goes, the browser can still send it
        await this.#backoff(next);
      }
    } finally {
      this.running = false;
    }
  }

  async #backoff(id) {
    this.failures += 1;
    if (!navigator.onLine) {
      this.set(id, "offline");
      await this.#sleep(MAX_BACKOFF_MS); // the "online" event wakes us at once
      return;
    }
    const ceiling = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1));
    const ms = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.set(id, "retrying", { seconds: Math.ceil(ms / 1000) });
    await this.#sleep(ms);
  }

  /** Upload one photo; true when done with it (accepted or final), false to retry later. */
  async #send(id) {
    /** @type {{status: number, body: any} | null | "follow" | "gone" | "damaged"} */
    const answer = await withSendLock(async () => {
      const record = await this.vault.get(id);
      if (!record) return "gone"; // sent by the service worker meanwhile, or removed
      if (record.accepted) return "follow"; // the service has it: never uploaded twice
      let item;
      try {
        item = await this.vault.unseal(id);
      } catch (error) {
        if (error instanceof Damaged) return "damaged";
        throw error;
      }
      if (!item) return "gone";
      this.set(id, "uploading", { percent: 0 });
      try {
        const form = formOf(id, item.meta, item.blob);
        const sent = await xhrUpload(form, (p) => this.set(id, "uploading", { percent: Math.floor(p) }));
        if (sent.status === 202 || sent.status === 200) await this.vault.update([id], { accepted: true });
        return sent;
      } catch {
        return null;
      }
    });
    if (answer === null) return false;
    if (answer === "gone" || answer === "follow") {
      this.set(id, "received"); // the service has it (or it left the phone): follow it
      this.#poll(id, queuePaths.capture(id));
      return true;
    }
    if (answer === "damaged") {
      // Refused by its authentication tag: deleted, never sent as a damaged photo.
      const record = await this.vault.get(id);
      await this.#fail(id, t("queue.damaged_one"));
      this.dispatchEvent(new CustomEvent("damaged", { detail: { record } }));
      return true;
    }
    return this.#handle(id, answer.status, answer.body);
  }

  async #handle(id, status, body) {
    if (status === 202 || status === 200) {
      if (!(await this.#settled(id, body))) this.#follow(id, body);
      return true;
    }
    const detail = detailOf(body);
    if (status === 401) return this.#sessionEnded();
    if (status === 428) {
      this.paused = "consent";
      this.set(id, "consent");
      this.dispatchEvent(new CustomEvent("consent-required", { detail: { detail } }));
      return true;
    }
    if (new ApiError(status, detail).transient) return false;
    await this.#fail(id, describe(status, detail));
    return true;
  }

  /** Give up every photo not yet accepted (no consent): wiped, shown failed; returns their ids.
   * @param {string} reason @returns {Promise<string[]>} */
  async discardQueued(reason) {
    const ids = [];
    for (const [id, s] of [...this.states]) {
      if (!WAITING.has(s.state)) continue;
      ids.push(id);
      await this.#fail(id, reason);
    }
    return ids;
  }

  /** The session is over: the photos stay sealed on the phone for the next sign-in. */
  #sessionEnded() {
    this.paused = "session";
    for (const [id, s] of [...this.states]) {
      if (TO_UPLOAD.has(s.state)) this.set(id, "signin");
    }
    this.dispatchEvent(new CustomEvent("session-expired"));
    return true;
  }

  async #fail(id, reason) {
    await this.vault.remove(id); // it will never be sent: nothing stays on the phone
    this.set(id, "failed", { reason });
  }

  /** Follow an accepted capture: pushed by the service where it can, else polled.
   * @param {string} id @param {{status_url: string, context_id?: string}} capture */
  #follow(id, capture) {
    if (CaptureFeed.supported && capture.context_id) this.feed.follow(id, capture.context_id);
    else this.#poll(id, capture.status_url);
  }

  /** Follow the capture's status URL until verified (then wipe it) or failed. */
  async #poll(id, url) {
    let wait = POLL_FIRST_MS;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.paused === "stopped") return;
      wait = Math.min(POLL_MAX_MS, wait * 1.5);
      let response;
      try {
        response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      } catch {
        continue; // offline for a moment: the photo is safe on the server already
      }
      const body = await response.json().catch(() => ({}));
      if (response.status === 401) return this.#sessionEnded();
      if (!response.ok) {
        if (response.status >= 500) continue;
        if (response.status === 404 && !(await this.vault.get(id))) {
          this.states.delete(id); // never reached the service and is gone from the phone
          return;
        }
        return this.#fail(id, describe(response.status, detailOf(body)));
      }
      if (await this.#settled(id, body)) return;
    }
  }

  /** Show the capture's state; true when it is final (verified: wiped; failed: wiped). */
  async #settled(id, capture) {
    if (capture.status === "verified") {
      await this.vault.remove(id); // wiped as soon as the archive shows it
      this.set(id, "verified");
      return true;
    }
    if (capture.status === "failed") {
      await this.#fail(id, capture.reason || "");
      return true;
    }
    this.set(id, capture.status, { retrying: capture.retrying, retryAt: capture.retry_at });
    return false;
  }
}
