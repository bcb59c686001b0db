// What a page can leave on the phone besides IndexedDB: Web Storage and Cache Storage.
async () => {
  const caches_ = {};
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    caches_[name] = (await cache.keys()).map((request) => new URL(request.url).pathname);
  }
  return {
    localStorage: Object.keys(localStorage),
    sessionStorage: Object.keys(sessionStorage),
    caches: caches_,
  };
}
