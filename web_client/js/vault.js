// Photos waiting to upload: only in IndexedDB, only encrypted, only for this page session.
//
// Why this design (issue 5, "no residue"): a shared or personal phone must keep nothing
// readable. The AES-GCM key is generated non-extractable and lives only in this page's memory,
// so whatever is on disk is ciphertext that nobody, including a later page of this very app,
// can decrypt. Photo bytes and their metadata (site, note) are both encrypted; the record id is
// the additional authenticated data, so a ciphertext cannot be moved to another record.
// Consequence: a reload loses the key, so on start every record of a page that is gone
// (its Web Lock is no longer held) or of an expired session is deleted, and the user told.

const DB_NAME = "capture-queue";
const STORE = "photos";
const LOCK_PREFIX = "capture-page:";

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDb() {
  const req = indexedDB.open(DB_NAME, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id" });
  return request(req);
}

async function withStore(db, mode, fn) {
  const transaction = db.transaction(STORE, mode);
  const done = new Promise((resolve, reject) => {
    transaction.oncomplete = resolve;
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
  const result = await fn(transaction.objectStore(STORE));
  await done;
  return result;
}

/** Hold a Web Lock for as long as this page lives: other pages can see we are alive. */
function holdPageLock(page) {
  if (!navigator.locks) return;
  navigator.locks.request(LOCK_PREFIX + page, () => new Promise(() => {}));
}

/** Pages of this app that are alive now (null when the browser has no Web Locks). */
async function livePages() {
  if (!navigator.locks) return null;
  const { held = [] } = await navigator.locks.query();
  const names = held.map((l) => l.name ?? "");
  return new Set(names.filter((n) => n.startsWith(LOCK_PREFIX)).map((n) => n.slice(LOCK_PREFIX.length)));
}

const encoder = new TextEncoder();

export class Vault {
  /**
   * @param {IDBDatabase} db
   * @param {CryptoKey} key
   * @param {string} page
   * @param {string} session
   * @param {number | null} expires
   */
  constructor(db, key, page, session, expires) {
    this.db = db;
    this.key = key;
    this.page = page;
    this.session = session;
    this.expires = expires;
  }

  /** A vault for this page session; `session` tags records (a hash, never the token).
   * @param {string} session
   * @param {number | null} expiresAt */
  static async open(session, expiresAt) {
    const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
      "encrypt",
      "decrypt",
    ]);
    const page = crypto.randomUUID();
    holdPageLock(page);
    return new Vault(await openDb(), key, page, session, expiresAt);
  }

  async #encrypt(id, bytes) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const params = { name: "AES-GCM", iv, additionalData: encoder.encode(id) };
    return { iv, data: await crypto.subtle.encrypt(params, this.key, bytes) };
  }

  async #decrypt(id, sealed) {
    const params = { name: "AES-GCM", iv: sealed.iv, additionalData: encoder.encode(id) };
    return crypto.subtle.decrypt(params, this.key, sealed.data);
  }

  /** Encrypt a photo and its metadata into the queue. */
  async seal(id, meta, blob) {
    const photo = await this.#encrypt(id, await blob.arrayBuffer());
    const info = await this.#encrypt(id, encoder.encode(JSON.stringify({ ...meta, type: blob.type })));
    const record = {
      id,
      page: this.page,
      session: this.session,
      expires: this.expires,
      created: Date.now(),
      photo,
      info,
    };
    await withStore(this.db, "readwrite", (store) => request(store.put(record)));
  }

  /** The decrypted photo and metadata, or null when it is not (or no longer) queued. */
  async unseal(id) {
    const record = await withStore(this.db, "readonly", (store) => request(store.get(id)));
    if (!record || record.page !== this.page) return null;
    const meta = JSON.parse(new TextDecoder().decode(await this.#decrypt(id, record.info)));
    const bytes = await this.#decrypt(id, record.photo);
    return { meta, blob: new Blob([bytes], { type: meta.type || "image/jpeg" }) };
  }

  async remove(id) {
    await withStore(this.db, "readwrite", (store) => request(store.delete(id)));
  }

  /** Ids queued by this page, oldest first. */
  async ids() {
    const all = await withStore(this.db, "readonly", (store) => request(store.getAll()));
    return all
      .filter((r) => r.page === this.page)
      .sort((a, b) => a.created - b.created)
      .map((r) => r.id);
  }

  /** Delete what no living page can decrypt, and expired sessions' records; returns how many. */
  async purgeLeftovers() {
    const live = await livePages();
    const now = Date.now();
    return withStore(this.db, "readwrite", async (store) => {
      const all = await request(store.getAll());
      const dead = all.filter(
        (r) =>
          r.page !== this.page && (!live || !live.has(r.page) || (r.expires && r.expires < now)),
      );
      for (const r of dead) store.delete(r.id);
      return dead.length;
    });
  }

  /** Delete everything this page queued (sign-out, expired session). */
  async purgeMine() {
    for (const id of await this.ids()) await this.remove(id);
  }
}
