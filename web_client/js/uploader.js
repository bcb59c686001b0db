// Send queued photos and follow each one until the archive has it (verified) or it failed.
//
// One upload at a time (a phone's memory and uplink), many status polls. The upload is the
// service's idempotent multipart POST /api/v1/captures with our own capture id, so sending
// again after a lost answer never makes a second photo. No network, 5xx, 408 and 429 are
// retried with capped exponential backoff and jitter, and at once when the browser says it is
// online again; anything else is final and shown with the service's reason.

import { ApiError, describe, detailOf, paths, unsafeHeaders } from "./api.js";

const MAX_BACKOFF_MS = 30_000;
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 3_000;
const UPLOAD_TIMEOUT_MS = 180_000;
/** States in which a queued photo still has to be uploaded. */
const TO_UPLOAD = new Set(["sealed", "offline", "retrying", "uploading", "consent"]);

function xhrUpload(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", paths.captures);
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

function formOf(id, meta, blob) {
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

export class Uploader extends EventTarget {
  constructor(vault) {
    super();
    this.vault = vault;
    this.states = new Map(); // id -> {state, percent, reason, seconds}
    this.paused = null; // "consent" | "session" | null
    this.running = false;
    this.failures = 0;
    this.wake = null;
    window.addEventListener("online", () => this.kick());
  }

  /** Where photo `id` is now ({state, ...}); emits "change". */
  set(id, state, extra = {}) {
    this.states.set(id, { state, ...extra });
    this.dispatchEvent(new CustomEvent("change", { detail: { id, state, ...extra } }));
  }

  /** A photo was sealed into the vault: send it. */
  add(id) {
    this.set(id, "sealed");
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

  /** Photos the service does not have yet: leaving now would lose them. */
  unsent() {
    return [...this.states.values()].filter((s) => TO_UPLOAD.has(s.state)).length;
  }

  /** Forget a photo that is done with (failed or verified): it leaves `states`. */
  forget(id) {
    if (["failed", "verified"].includes(this.states.get(id)?.state)) this.states.delete(id);
  }

  /** Signed out: no more uploads or status polls from this page. */
  stop() {
    this.paused = "stopped";
    this.kick();
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
        const ids = await this.vault.ids();
        const next = ids.find((id) => TO_UPLOAD.has(this.states.get(id)?.state ?? "sealed"));
        if (!next) break;
        if (await this.#send(next)) {
          this.failures = 0;
          continue;
        }
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
    const item = await this.vault.unseal(id);
    if (!item) {
      this.states.delete(id);
      return true;
    }
    this.set(id, "uploading", { percent: 0 });
    let answer;
    try {
      const form = formOf(id, item.meta, item.blob);
      answer = await xhrUpload(form, (p) => this.set(id, "uploading", { percent: Math.floor(p) }));
    } catch {
      return false;
    }
    return this.#handle(id, answer.status, answer.body);
  }

  async #handle(id, status, body) {
    if (status === 202 || status === 200) {
      if (!(await this.#settled(id, body))) this.#poll(id, body.status_url);
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

  /** Give up every photo not yet accepted (no consent, session over): wiped, shown failed. */
  async discardQueued(reason) {
    for (const [id, s] of [...this.states]) {
      if (TO_UPLOAD.has(s.state)) await this.#fail(id, reason);
    }
  }

  #sessionEnded() {
    this.paused = "session";
    this.dispatchEvent(new CustomEvent("session-expired"));
    return true;
  }

  async #fail(id, reason) {
    await this.vault.remove(id); // it will never be sent: nothing stays on the phone
    this.set(id, "failed", { reason });
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
