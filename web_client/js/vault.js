// Photos waiting to upload: only in IndexedDB, only encrypted, readable only with the service.
//
// Why this design (issues 5 and 20): a photo that could not be sent must survive a reload, a
// discarded tab or a dead battery (a wound photo cannot be taken again once the patient has
// gone), and a lost phone must still keep nothing readable. So:
//
// - each photo and its metadata (site, note, patient) are AES-GCM ciphertext under a *device
//   key*; the record id and the context id it was taken for are the additional authenticated
//   data, so a ciphertext cannot be moved to another record or another patient's context, and
//   a tampered or truncated record fails its authentication tag
//   (`Damaged`): it is reported and deleted, never sent as a damaged photo;
// - the device key is made here when the first photo is queued and is stored only *wrapped*
//   (AES-KW, RFC 3394) by a *queue key* that the service keeps for this user and phone and
//   hands only to that user's signed-in session (js/custody.js); the queue key and the
//   unwrapped device key live in memory only, non-extractable;
// - when the last photo of a custody leaves the queue, its wrapped device key is deleted too:
//   an empty queue leaves no key material on the phone.
//
// Each record is two rows of the same id: its ciphertexts (`sealed`: read only to send it) and,
// apart so that listing and bookkeeping never load megabytes, what it keeps in clear (`photos`):
// only what the phone needs without the key: their id, custody (`kid`),
// the session tag of the sign-in that may send them (a hash, never a token), the id of the
// context they were taken for (an opaque id: the service answers it only to its own user),
// when they were made, when they must be purged, and whether the service has them already.
// No DOM here: the service worker uses this module too (background delivery, sw.js).

const DB_NAME = "capture-queue";
const DB_VERSION = 2;
const PHOTOS = "photos";
const SEALED = "sealed";
const CUSTODY = "custody";
const REPORTS = "reports";
const LOCK_PREFIX = "capture-page:";

/** A queued photo: what is kept in clear (store `photos`).
 * @typedef {object} QueueRecord
 * @property {string} id the capture id
 * @property {string} kid the custody (queue key id) it is sealed under
 * @property {string} session the tag of the sign-in that may send it
 * @property {string} context the context id it was taken for
 * @property {number} created ms since the epoch
 * @property {number} purge_after ms since the epoch: deleted unsent after this
 * @property {boolean} accepted the service answered 202: follow it, do not upload again */

/** Its two sealed parts (store `sealed`, same id).
 * @typedef {{id: string, photo: Sealed, info: Sealed}} SealedRecord
 * @typedef {{iv: Uint8Array, data: ArrayBuffer}} Sealed */

/** A custody: a queue key's id, and the device key it wraps while photos wait.
 * @typedef {{kid: string, wrapped: ArrayBuffer | null, local: boolean, created: number}} CustodyEntry */

/** What the phone deleted unsent, to be told to the service (js/custody.js).
 * @typedef {{id?: number, kid: string, reason: string, count: number, contexts: string[], at: number}} PurgeReport */

/** A record whose authentication tag (or its wrapped key's) does not verify. */
export class Damaged extends Error {
  /** @param {string} id */
  constructor(id) {
    super(`queued record ${id} failed its integrity check`);
    this.id = id;
  }
}

/** @template T @param {IDBRequest<T>} req @returns {Promise<T>} */
function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** @returns {Promise<IDBDatabase>} */
function openDb() {
  const req = indexedDB.open(DB_NAME, DB_VERSION);
  req.onupgradeneeded = (event) => {
    const db = req.result;
    // Version 1 kept a key in the page's memory only: its records can never be opened.
    if (event.oldVersion < 2 && db.objectStoreNames.contains(PHOTOS)) db.deleteObjectStore(PHOTOS);
    db.createObjectStore(PHOTOS, { keyPath: "id" });
    db.createObjectStore(SEALED, { keyPath: "id" });
    db.createObjectStore(CUSTODY, { keyPath: "kid" });
    db.createObjectStore(REPORTS, { keyPath: "id", autoIncrement: true });
  };
  return request(req);
}

/**
 * Run `fn` over the named stores in one transaction; resolves once it has committed.
 * @template T
 * @param {IDBDatabase} db @param {string[]} names @param {IDBTransactionMode} mode
 * @param {(stores: Record<string, IDBObjectStore>) => Promise<T> | T} fn
 * @returns {Promise<T>} */
async function inStores(db, names, mode, fn) {
  const transaction = db.transaction(names, mode);
  const done = new Promise((resolve, reject) => {
    transaction.oncomplete = resolve;
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
  /** @type {Record<string, IDBObjectStore>} */
  const stores = {};
  for (const name of names) stores[name] = transaction.objectStore(name);
  const result = await fn(stores);
  await done;
  return result;
}

/** Hold a Web Lock for as long as this page lives: other pages see that a page-only custody
 * (integration mode) is still alive. @param {string} kid */
export function holdPageLock(kid) {
  if (!navigator.locks) return;
  navigator.locks.request(LOCK_PREFIX + kid, () => new Promise(() => {}));
}

/** Page-only custodies whose page is alive now (null when the browser has no Web Locks). */
async function livePages() {
  if (!navigator.locks) return null;
  const { held = [] } = await navigator.locks.query();
  const names = held.map((l) => l.name ?? "");
  return new Set(names.filter((n) => n.startsWith(LOCK_PREFIX)).map((n) => n.slice(LOCK_PREFIX.length)));
}

const encoder = new TextEncoder();

/** What the authentication tag covers besides the ciphertext: the record's id and its context.
 * @param {string} id @param {string} context */
const aadOf = (id, context) => `${id}\n${context}`;
const GCM = { name: "AES-GCM", length: 256 };

export class Vault {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
    /** Unlocked custodies: kid -> the queue key (AES-KW) and, while photos wait, the device key.
     * @type {Map<string, {wrap: CryptoKey, device: CryptoKey | null, making: Promise<CryptoKey> | null}>} */
    this.keys = new Map();
    /** Custodies whose photos moved under another (`adopt`): from -> to. @type {Map<string, string>} */
    this.moved = new Map();
  }

  static async open() {
    return new Vault(await openDb());
  }

  // --- custody ----------------------------------------------------------------------------------

  /** @returns {Promise<CustodyEntry[]>} */
  async custodies() {
    return inStores(this.db, [CUSTODY], "readonly", (s) => request(s[CUSTODY].getAll()));
  }

  /** A custody this phone now holds (no device key yet: made with the first photo).
   * @param {string} kid @param {boolean} [local] a page-only key (integration mode) */
  async addCustody(kid, local = false) {
    const entry = { kid, wrapped: null, local, created: Date.now() };
    await inStores(this.db, [CUSTODY], "readwrite", (s) => request(s[CUSTODY].put(entry)));
  }

  /** Open a custody with its queue key: the device key it wraps is unwrapped, non-extractable.
   * Throws `Damaged` when the wrapped key fails AES-KW's integrity check.
   * @param {string} kid @param {CryptoKey} wrap */
  async unlock(kid, wrap) {
    const entry = await inStores(this.db, [CUSTODY], "readonly", (s) => request(s[CUSTODY].get(kid)));
    let device = null;
    if (entry?.wrapped) {
      try {
        device = await crypto.subtle.unwrapKey("raw", entry.wrapped, wrap, "AES-KW", GCM, false, ["encrypt", "decrypt"]);
      } catch {
        throw new Damaged(kid);
      }
    }
    this.keys.set(kid, { wrap, device, making: null });
  }

  /** @param {string} kid */
  unlocked(kid) {
    return this.keys.has(kid);
  }

  /** Forget every key in memory (signed out, session over). */
  lock() {
    this.keys.clear();
  }

  /** The custody's device key, made and stored wrapped when its queue was empty.
   * @param {string} kid @returns {Promise<CryptoKey>} */
  async #deviceKey(kid) {
    const held = this.keys.get(kid);
    if (!held) throw new Error(`custody ${kid} is locked`);
    if (held.device) return held.device;
    held.making ??= (async () => {
      const fresh = await crypto.subtle.generateKey(GCM, true, ["encrypt", "decrypt"]);
      const wrapped = await crypto.subtle.wrapKey("raw", fresh, held.wrap, "AES-KW");
      await inStores(this.db, [CUSTODY], "readwrite", async (s) => {
        const entry = await request(s[CUSTODY].get(kid));
        if (entry) s[CUSTODY].put({ ...entry, wrapped });
      });
      // Used from now on only as a non-extractable key; the extractable one is dropped.
      return crypto.subtle.unwrapKey("raw", wrapped, held.wrap, "AES-KW", GCM, false, ["encrypt", "decrypt"]);
    })();
    held.device = await held.making;
    held.making = null;
    return held.device;
  }

  /** Move every photo of a custody under another, unlocked one that has none: a page-only
   * stopgap (made while the service could not make its key) hands its photos to the service's
   * key, so they outlive the page from now on. Nothing is encrypted again: the records' AAD
   * names the record and the context, not the custody, so the device key stays; it is only
   * wrapped again, by the new queue key. A photo sealed meanwhile lands under `to` as well.
   * @param {string} from @param {string} to */
  async adopt(from, to) {
    const old = this.keys.get(from);
    const held = this.keys.get(to);
    if (!old || !held) throw new Error(`custody ${old ? to : from} is locked`);
    const device = old.device ?? (old.making ? await old.making : null);
    // From here to `moved` no await: a seal that starts now uses `to` with this same key.
    this.moved.set(from, to);
    held.device = device;
    this.keys.set(from, held); // records not yet moved still open, with the same key
    let wrapped = null;
    const entry = device ? await inStores(this.db, [CUSTODY], "readonly", (s) => request(s[CUSTODY].get(from))) : null;
    if (entry?.wrapped) {
      // (none: its last photo left meanwhile.) Extractable only for this one wrap, in
      // memory; the key in use stays non-extractable.
      const movable = await crypto.subtle.unwrapKey("raw", entry.wrapped, old.wrap, "AES-KW", GCM, true, ["encrypt", "decrypt"]);
      wrapped = await crypto.subtle.wrapKey("raw", movable, held.wrap, "AES-KW");
    } else {
      held.device = null; // no photo to move: the next one makes (and stores) a key of `to`
    }
    await inStores(this.db, [PHOTOS, CUSTODY], "readwrite", async (s) => {
      const all = /** @type {QueueRecord[]} */ (await request(s[PHOTOS].getAll()));
      for (const r of all) if (r.kid === from) s[PHOTOS].put({ ...r, kid: to });
      const target = await request(s[CUSTODY].get(to));
      const any = all.some((r) => r.kid === from || r.kid === to);
      if (target) s[CUSTODY].put({ ...target, wrapped: any ? wrapped : null });
      s[CUSTODY].delete(from);
    });
    this.keys.delete(from);
  }

  /** Delete a custody, its wrapped key and every record sealed under it; returns them.
   * @param {string} kid @returns {Promise<QueueRecord[]>} */
  async dropCustody(kid) {
    this.keys.delete(kid);
    return inStores(this.db, [PHOTOS, SEALED, CUSTODY], "readwrite", async (s) => {
      const all = /** @type {QueueRecord[]} */ (await request(s[PHOTOS].getAll()));
      const gone = all.filter((r) => r.kid === kid);
      for (const r of gone) {
        s[PHOTOS].delete(r.id);
        s[SEALED].delete(r.id);
      }
      s[CUSTODY].delete(kid);
      return gone;
    });
  }

  /** Page-only custodies (integration mode) whose page is gone: their key died with it.
   * @returns {Promise<string[]>} */
  async deadLocalCustodies() {
    const live = await livePages();
    const entries = await this.custodies();
    return entries.filter((e) => e.local && !this.keys.has(e.kid) && (!live || !live.has(e.kid))).map((e) => e.kid);
  }

  // --- records ----------------------------------------------------------------------------------

  /** @param {CryptoKey} key @param {string} aad @param {BufferSource} bytes */
  async #encrypt(key, aad, bytes) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const params = { name: "AES-GCM", iv, additionalData: encoder.encode(aad) };
    return { iv, data: await crypto.subtle.encrypt(params, key, bytes) };
  }

  /** @param {CryptoKey} key @param {QueueRecord} record @param {Sealed | undefined} sealed */
  async #decrypt(key, record, sealed) {
    try {
      const params = { name: "AES-GCM", iv: sealed?.iv, additionalData: encoder.encode(aadOf(record.id, record.context)) };
      return await crypto.subtle.decrypt(/** @type {AesGcmParams} */ (params), key, /** @type {Sealed} */ (sealed).data);
    } catch {
      throw new Damaged(record.id);
    }
  }

  /** Encrypt a photo and its metadata into the queue.
   * @param {string} id @param {Record<string, any>} meta @param {Blob} blob
   * @param {{kid: string, session: string, context: string, retentionMs: number}} where */
  async seal(id, meta, blob, { kid, session, context, retentionMs }) {
    const key = await this.#deviceKey(this.moved.get(kid) ?? kid);
    const aad = aadOf(id, context);
    const photo = await this.#encrypt(key, aad, await blob.arrayBuffer());
    const info = await this.#encrypt(key, aad, encoder.encode(JSON.stringify({ ...meta, type: blob.type })));
    const created = Date.now();
    /** @type {QueueRecord} */
    const record = { id, kid, session, context, created, purge_after: created + retentionMs, accepted: false };
    record.kid = this.moved.get(kid) ?? kid; // adopted while this one was sealed: the same key
    await inStores(this.db, [PHOTOS, SEALED], "readwrite", (s) => {
      s[SEALED].put({ id, photo, info });
      s[PHOTOS].put(record);
    });
  }

  /** @param {string} id @returns {Promise<SealedRecord | undefined>} */
  async #sealed(id) {
    return inStores(this.db, [SEALED], "readonly", (s) => request(s[SEALED].get(id)));
  }

  /** @param {string} id @returns {Promise<QueueRecord | undefined>} */
  async get(id) {
    return inStores(this.db, [PHOTOS], "readonly", (s) => request(s[PHOTOS].get(id)));
  }

  /** Every queued record (what is in clear), oldest first. @returns {Promise<QueueRecord[]>} */
  async records() {
    const all = /** @type {QueueRecord[]} */ (await inStores(this.db, [PHOTOS], "readonly", (s) => request(s[PHOTOS].getAll())));
    return all.sort((a, b) => a.created - b.created);
  }

  /** Ids this sign-in may send now (its session tag, its custody unlocked), oldest first.
   * @param {string} session */
  async sendable(session) {
    return (await this.records()).filter((r) => r.session === session && this.keys.has(r.kid)).map((r) => r.id);
  }

  /** The decrypted metadata; throws `Damaged` when its tag does not verify.
   * @param {QueueRecord} record @returns {Promise<Record<string, any>>} */
  async meta(record) {
    return this.#meta(record, await this.#sealed(record.id));
  }

  /** @param {QueueRecord} record @param {SealedRecord | undefined} sealed */
  async #meta(record, sealed) {
    const key = await this.#openKey(record);
    const text = new TextDecoder().decode(await this.#decrypt(key, record, sealed?.info));
    let meta;
    try {
      meta = JSON.parse(text);
    } catch {
      throw new Damaged(record.id); // authentic but not ours: never sent
    }
    if (meta.context_id !== record.context) throw new Damaged(record.id);
    return meta;
  }

  /** The decrypted photo and metadata, or null when it is not (or no longer) queued or its
   * custody is not open here; throws `Damaged` when a tag does not verify.
   * @param {string} id */
  async unseal(id) {
    const record = await this.get(id);
    if (!record || !this.keys.has(record.kid)) return null;
    const sealed = await this.#sealed(id); // read once: megabytes
    const meta = await this.#meta(record, sealed);
    const bytes = await this.#decrypt(await this.#openKey(record), record, sealed?.photo);
    return { record, meta, blob: new Blob([bytes], { type: meta.type || "image/jpeg" }) };
  }

  /** @param {QueueRecord} record */
  async #openKey(record) {
    const held = this.keys.get(record.kid);
    if (!held) throw new Error(`custody ${record.kid} is locked`);
    if (!held.device) throw new Damaged(record.id); // a record without its wrapped key
    return held.device;
  }

  /** Change clear fields of records (a later sign-in takes them over; the service has one).
   * @param {string[]} ids @param {Partial<QueueRecord>} changes */
  async update(ids, changes) {
    await inStores(this.db, [PHOTOS], "readwrite", async (s) => {
      for (const id of ids) {
        const record = await request(s[PHOTOS].get(id));
        if (record) s[PHOTOS].put({ ...record, ...changes });
      }
    });
  }

  /** Delete a record; the last one of its custody takes the wrapped device key with it.
   * @param {string} id */
  async remove(id) {
    const emptied = await inStores(this.db, [PHOTOS, SEALED, CUSTODY], "readwrite", async (s) => {
      const record = /** @type {QueueRecord | undefined} */ (await request(s[PHOTOS].get(id)));
      s[SEALED].delete(id);
      if (!record) return null;
      s[PHOTOS].delete(id);
      const all = /** @type {QueueRecord[]} */ (await request(s[PHOTOS].getAll()));
      if (all.some((r) => r.kid === record.kid && r.id !== id)) return null;
      const entry = await request(s[CUSTODY].get(record.kid));
      if (entry) s[CUSTODY].put({ ...entry, wrapped: null });
      return record.kid;
    });
    const held = emptied ? this.keys.get(emptied) : null;
    if (held) held.device = null; // nothing is sealed under it any more: it is gone
  }

  /** Delete records past their retention limit, whoever they belong to; returns them.
   * @param {number} now @returns {Promise<QueueRecord[]>} */
  async purgeExpired(now = Date.now()) {
    const expired = (await this.records()).filter((r) => r.purge_after < now);
    for (const r of expired) await this.remove(r.id);
    return expired;
  }

  // --- reports for the service ------------------------------------------------------------------

  /** @param {PurgeReport} report */
  async addReport(report) {
    await inStores(this.db, [REPORTS], "readwrite", (s) => request(s[REPORTS].add(report)));
  }

  /** @returns {Promise<PurgeReport[]>} */
  async reports() {
    return inStores(this.db, [REPORTS], "readonly", (s) => request(s[REPORTS].getAll()));
  }

  /** @param {number} id */
  async removeReport(id) {
    await inStores(this.db, [REPORTS], "readwrite", (s) => request(s[REPORTS].delete(id)));
  }
}
