// Every IndexedDB database of the page: name -> store -> records; binary values (the
// encrypted photos) are summarised as {bytes, head} so a test can see what is stored.
async () => {
  const summary = (value) => {
    if (ArrayBuffer.isView(value)) {
      value = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    } else if (value instanceof ArrayBuffer) {
      value = new Uint8Array(value);
    } else if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, summary(v)]));
    } else {
      return value;
    }
    const head = [...value.slice(0, 4)].map((x) => x.toString(16).padStart(2, "0")).join("");
    return { bytes: value.length, head };
  };
  const request = (r) => new Promise((ok, ko) => {
    r.onsuccess = () => ok(r.result);
    r.onerror = () => ko(r.error);
  });
  const out = {};
  for (const { name } of await indexedDB.databases()) {
    const db = await request(indexedDB.open(name));
    out[name] = {};
    for (const store of db.objectStoreNames) {
      const rows = await request(db.transaction(store).objectStore(store).getAll());
      out[name][store] = rows.map(summary);
    }
    db.close();
  }
  return out;
}
