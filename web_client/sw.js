// The service worker: makes the app shell (this list, nothing else) load without a network.
// It never touches /api/, /launch or /logout, so no photo, patient data or session answer can
// ever land in Cache Storage. Shell files are fetched from the network first (an update is
// seen at once) and taken from the cache only when offline. Bump VERSION when the list changes:
// the new worker deletes every other cache of ours.

const VERSION = "capture-shell-v3";

const SHELL = [
  "/",
  "/app/app.css",
  "/app/app.js",
  "/app/i18n/en.js",
  "/app/js/api.js",
  "/app/js/bodymap.js",
  "/app/js/camera.js",
  "/app/js/consent.js",
  "/app/js/details.js",
  "/app/js/dom.js",
  "/app/js/patient.js",
  "/app/js/photos.js",
  "/app/js/regions.js",
  "/app/js/site.js",
  "/app/js/sites.js",
  "/app/js/sniff.js",
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
