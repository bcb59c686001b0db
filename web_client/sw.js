// The service worker: makes the app shell (this list, nothing else) load without a network,
// and sends the photo queue in the background when the browser offers it.
// It never touches /api/, /launch or /logout requests of the page, so no photo, patient data or
// session answer can ever land in Cache Storage. Shell files are fetched from the network first
// (an update is seen at once) and taken from the cache only when offline. Bump VERSION when the
// list changes: the new worker deletes every other cache of ours.
//
// Background delivery (issue 20): a module worker (registered with type "module", app.js), it
// imports the queue's own modules. On a Background Sync event (Chromium fires it when the
// network is back, also with every page of capture closed) it sends the photos the signed-in
// session may send, with the session cookie: the session's CSRF token and the user's queue key
// come from the service (js/delivery.js). With a page of capture visible, the page sends them
// itself. No session: nothing is sent, the next sign-in offers them. Photos are decrypted
// in memory only, and wiped from the queue once the archive has them.

// @ts-expect-error: served at /app/js/ (app.py), kept in web_client/js/: typed just below
import * as served from "./app/js/delivery.js";

/** The queue's delivery module (tsconfig.sw.json checks it under worker globals too). */
const delivery = /** @type {typeof import("./js/delivery.js")} */ (served);

const VERSION = "capture-shell-v9";

const SHELL = [
  "/",
  "/app/app.css",
  "/app/app.js",
  "/app/i18n/en.js",
  "/app/js/api.js",
  "/app/js/bodymap.js",
  "/app/js/camera.js",
  "/app/js/consent.js",
  "/app/js/custody.js",
  "/app/js/delivery.js",
  "/app/js/details.js",
  "/app/js/dom.js",
  "/app/js/earlier.js",
  "/app/js/feed.js",
  "/app/js/healing.js",
  "/app/js/measure.js",
  "/app/js/patient.js",
  "/app/js/photos.js",
  "/app/js/refile.js",
  "/app/js/regions.js",
  "/app/js/site.js",
  "/app/js/sites.js",
  "/app/js/sniff.js",
  "/app/js/takeback.js",
  "/app/js/trace.js",
  "/app/js/unblur.js",
  "/app/js/uploader.js",
  "/app/js/vault.js",
  "/app/manifest.webmanifest",
  "/app/icons/icon.svg",
  "/app/icons/icon-192.png",
  "/app/icons/icon-512.png",
  "/app/icons/apple-touch-icon.png",
];
const SHELL_PATHS = new Set(SHELL);
/** This script's global scope, with the type it has in a service worker (for the type check). */
const worker = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

worker.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL)).then(() => worker.skipWaiting()));
});

worker.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
      .then(() => worker.clients.claim()),
  );
});

/** @param {Request} request @param {string} path */
async function networkFirst(request, path) {
  const cache = await caches.open(VERSION);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(path, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(path);
    if (cached) return cached;
    throw error;
  }
}

worker.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== worker.location.origin) return;
  if (url.search || !SHELL_PATHS.has(url.pathname)) return; // the network, untouched
  event.respondWith(networkFirst(event.request, url.pathname));
});

/** A Background Sync event (not in TypeScript's worker types yet).
 * @typedef {ExtendableEvent & {tag: string, lastChance?: boolean}} SyncEvent */

worker.addEventListener("sync", (event) => {
  const sync = /** @type {SyncEvent} */ (/** @type {unknown} */ (event));
  if (sync.tag === delivery.SYNC_TAG) sync.waitUntil(sendQueue());
});

/** Send the queue unless a page of capture is on screen (it sends it itself). */
async function sendQueue() {
  const windows = /** @type {readonly WindowClient[]} */ (await worker.clients.matchAll({ type: "window" }));
  const pages = windows.filter((page) => new URL(page.url).pathname === "/"); // capture's page
  if (pages.some((page) => page.visibilityState === "visible")) return;
  const vault = await delivery.Vault.open();
  await delivery.deliverInBackground(vault, (id, state) => {
    for (const page of pages) page.postMessage({ type: "capture-queue", id, state });
  });
}
