// The queue key: kept by the service for this user and phone, handed to their session only.
//
// Why (issue 20): photos waiting on the phone must outlive the page, yet the phone alone must
// open nothing. The service keeps one random key per user (EHR iss + fhirUser) and phone
// (`/api/v1/queue/keys`, capture_api/encounters/queue_custody.py) and gives it only to a
// signed-in session of that same user; the page imports it as a non-extractable AES-KW key,
// in memory, and with it unwraps the device key that encrypts the photos (js/vault.js). After
// a reload, a restart or a later sign-in of the same user, the same key opens the same queue;
// another user's sign-in is refused the key (403) and their photos stay sealed; a key the
// service destroyed (404: released, or unused past the retention limit) leaves photos no one
// can open: they are deleted and the user told.
//
// Integration mode (no EHR, no user) has no such key: the page makes its own in memory, as
// before issue 20, so a reload loses the queue (its leftovers are purged at the next start).
// No DOM here: the service worker opens the queue with this module too.

import { Damaged, Vault, holdPageLock } from "./vault.js";

export const queuePaths = {
  session: "/api/v1/session",
  keys: "/api/v1/queue/keys",
  key: (/** @type {string} */ kid) => `/api/v1/queue/keys/${encodeURIComponent(kid)}`,
  handoffs: "/api/v1/queue/handoffs",
  reports: "/api/v1/queue/reports",
  captures: "/api/v1/captures",
  capture: (/** @type {string} */ id) => `/api/v1/captures/${encodeURIComponent(id)}`,
};

/** Used until the service has said its retention limit (CAPTURE_QUEUE_RETENTION_HOURS). */
export const DEFAULT_RETENTION_HOURS = 72;
const HOUR_MS = 3_600_000;

/** The tag a record carries for the sign-in that may send it: a hash, never the token.
 * @param {{csrf_token?: string, iss?: string, expires_at?: string, context_id?: string}} session */
export async function sessionTag(session) {
  const basis = session.csrf_token || `${session.iss}|${session.expires_at}|${session.context_id}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(basis));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A same-origin request that never throws: {status, body}; status 0 when there is no network.
 * @param {string} path @param {RequestInit} [init] @returns {Promise<{status: number, body: any}>} */
export async function call(path, init = {}) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", cache: "no-store", ...init });
  } catch {
    return { status: 0, body: null };
  }
  const body = await response.json().catch(() => null);
  return { status: response.status, body };
}

/** The service's key as a non-extractable AES-KW key; the raw bytes are wiped at once.
 * @param {string} base64url */
async function importQueueKey(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
  try {
    return await crypto.subtle.importKey("raw", bytes, "AES-KW", false, ["wrapKey", "unwrapKey"]);
  } finally {
    bytes.fill(0);
  }
}

/** What opening the queue found: photos deleted unsent (and why), and photos left alone.
 * @typedef {object} Opened
 * @property {import("./vault.js").QueueRecord[]} expired past the retention limit
 * @property {import("./vault.js").QueueRecord[]} unreadable their key is gone for good
 * @property {import("./vault.js").QueueRecord[]} damaged their wrapped key failed its check
 * @property {number} leftovers of a page-only custody whose page is gone (integration mode)
 * @property {number} others another user's, left sealed for them */

/** @returns {Opened} */
function nothingFound() {
  return { expired: [], unreadable: [], damaged: [], leftovers: 0, others: 0 };
}

export class Custody {
  /**
   * @param {Vault} vault
   * @param {{integration?: boolean, headers: () => Record<string, string>}} options
   *   `headers`: what an unsafe request needs (the session's X-CSRF-Token)
   */
  constructor(vault, { integration = false, headers }) {
    this.vault = vault;
    this.integration = integration;
    this.headers = headers;
    /** The custody new photos are sealed under. @type {string | null} */
    this.current = null;
    this.retentionMs = DEFAULT_RETENTION_HOURS * HOUR_MS;
    /** Whether the service keeps the key (false: the page's memory only, a reload loses it). */
    this.durable = false;
    /** Custodies whose key the service could not be asked for (no network, the service
     * down): their photos are neither offered nor purged, and `retry` asks again. */
    this.unanswered = new Set();
    /** Whether `current` is a page-only key only because the service could not make one:
     * `retry` asks again and moves its photos under the service's key. */
    this.stopgap = false;
  }

  /** Whether something waits for the service (`retry`). */
  get pending() {
    return this.unanswered.size > 0 || this.stopgap;
  }

  /** Open what this user's keys open, purge what can never be sent, make a key if none. */
  async start() {
    const found = nothingFound();
    found.expired = await this.vault.purgeExpired();
    await this.report("retention", found.expired);
    for (const kid of await this.vault.deadLocalCustodies()) {
      found.leftovers += (await this.vault.dropCustody(kid)).length;
    }
    const records = await this.vault.records();
    const mine = [];
    for (const entry of await this.vault.custodies()) {
      if (entry.local || this.integration) continue;
      if ((await this.#settle(entry.kid, records, found)) === "mine") mine.push(entry);
    }
    mine.sort((a, b) => b.created - a.created);
    this.current = mine.length ? mine[0].kid : null;
    this.durable = this.current !== null;
    if (!this.current) await this.#create();
    return found;
  }

  /** Ask the service again for what `start` could not get: the keys of custodies it did not
   * answer for, and a key of its own in place of a stopgap page-only one (whose photos then
   * move under it: they outlive the page from now on). Returns the custodies opened now
   * (their photos are this user's: resent or offered) and what else was found.
   * @returns {Promise<{opened: string[], found: Opened}>} */
  async retry() {
    const found = nothingFound();
    const opened = [];
    const records = await this.vault.records();
    for (const kid of [...this.unanswered]) {
      if ((await this.#settle(kid, records, found)) === "mine") opened.push(kid);
    }
    if (this.stopgap) await this.#replaceStopgap();
    return { opened, found };
  }

  /** Open one custody held on the phone; what cannot ever be opened goes (and is reported).
   * @param {string} kid @param {import("./vault.js").QueueRecord[]} records @param {Opened} found */
  async #settle(kid, records, found) {
    const outcome = await this.open(kid);
    if (outcome === "unavailable") this.unanswered.add(kid);
    else this.unanswered.delete(kid);
    if (outcome === "theirs") found.others += records.filter((r) => r.kid === kid).length;
    else if (outcome === "gone" || outcome === "damaged") {
      const lost = await this.vault.dropCustody(kid);
      found[outcome === "gone" ? "unreadable" : "damaged"].push(...lost);
      await this.report(outcome === "gone" ? "unreadable" : "damaged", lost);
    }
    return outcome;
  }

  /** Ask for a custody's key and open it: "mine", "theirs" (another user's), "gone", "damaged"
   * or "unavailable" (no network, the service down: tried again later).
   * @param {string} kid */
  async open(kid) {
    const answer = await call(queuePaths.key(kid), { headers: { Accept: "application/json" } });
    if (answer.status === 403) return "theirs";
    if (answer.status === 404) return "gone";
    if (answer.status !== 200) return "unavailable";
    this.retentionMs = answer.body.retention_hours * HOUR_MS;
    try {
      await this.vault.unlock(kid, await importQueueKey(answer.body.key));
    } catch (error) {
      if (error instanceof Damaged) return "damaged";
      throw error;
    }
    return "mine";
  }

  /** A new custody: the service's key for this user, else (integration mode, no fhirUser, the
   * service unreachable) one that lives in this page's memory only. */
  async #create() {
    if (!this.integration) {
      const answer = await this.#ask();
      if (answer.status === 201) {
        await this.vault.addCustody(answer.body.key_id);
        await this.open(answer.body.key_id);
        this.current = answer.body.key_id;
        this.durable = true;
        return;
      }
      this.stopgap = transient(answer.status); // a refusal (no fhirUser) stays page-only
    }
    const kid = `local-${crypto.randomUUID()}`;
    const key = await crypto.subtle.generateKey({ name: "AES-KW", length: 256 }, false, ["wrapKey", "unwrapKey"]);
    await this.vault.addCustody(kid, true);
    holdPageLock(kid);
    await this.vault.unlock(kid, key);
    this.current = kid;
    this.durable = false;
  }

  /** A new key of the service for this user and phone. */
  async #ask() {
    return call(queuePaths.keys, { method: "POST", headers: { Accept: "application/json", ...this.headers() } });
  }

  /** The service makes its key now: the stopgap custody's photos (and the device key they
   * are sealed with) move under it, and new photos are sealed under it. */
  async #replaceStopgap() {
    const answer = await this.#ask();
    if (answer.status !== 201) {
      this.stopgap = transient(answer.status);
      return;
    }
    const kid = answer.body.key_id;
    await this.vault.addCustody(kid);
    if ((await this.open(kid)) !== "mine") {
      await this.vault.dropCustody(kid); // asked for again at the next retry
      return;
    }
    await this.vault.adopt(/** @type {string} */ (this.current), kid);
    this.current = kid;
    this.durable = true;
    this.stopgap = false;
  }

  /** Note photos deleted unsent, per custody, for the service's audit trail (`flush`).
   * @param {string} reason retention | discarded | damaged | unreadable
   * @param {import("./vault.js").QueueRecord[]} records */
  async report(reason, records) {
    /** @type {Map<string, import("./vault.js").QueueRecord[]>} */
    const byKid = new Map();
    for (const r of records) byKid.set(r.kid, [...(byKid.get(r.kid) ?? []), r]);
    for (const [kid, list] of byKid) {
      const contexts = [...new Set(list.map((r) => r.context).filter(Boolean))];
      await this.vault.addReport({ kid, reason, count: list.length, contexts, at: Date.now() });
    }
  }

  /** Tell the service what was deleted unsent (when online and signed in); kept until then. */
  async flush() {
    for (const report of await this.vault.reports()) {
      const body = { key_id: report.kid, reason: report.reason, count: report.count, context_ids: report.contexts.slice(0, 100) };
      const answer = await call(queuePaths.reports, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", ...this.headers() },
        body: JSON.stringify(body),
      });
      if (answer.status === 401 || transient(answer.status)) return; // no network or no session: the next start tells it
      if (report.id !== undefined) await this.vault.removeReport(report.id); // told (or never can be)
    }
  }

  /** Signed out: custodies of this user with no photo left go, at the service too; photos
   * still waiting keep theirs (offered at the next sign-in). Every key leaves memory. */
  async release() {
    const records = await this.vault.records();
    for (const entry of await this.vault.custodies()) {
      if (records.some((r) => r.kid === entry.kid)) continue; // photos wait: kept
      if (!entry.local && !this.vault.unlocked(entry.kid)) continue; // another user's
      if (!entry.local) {
        await call(queuePaths.key(entry.kid), { method: "DELETE", headers: { Accept: "application/json", ...this.headers() } });
      }
      await this.vault.dropCustody(entry.kid); // no key material of it is left on the phone
    }
    this.vault.lock();
    this.current = null;
    this.unanswered.clear(); // nothing is asked for again for a signed-out user
    this.stopgap = false;
  }
}

/** An answer worth asking again for: no network, a timeout, too many requests, the service down.
 * @param {number} status */
function transient(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}
