// Follow a context's captures as the service pushes them (Server-Sent Events), not by polling.
//
// One EventSource per context (GET /api/v1/captures/events?context_id=...): the stream starts
// with the state of every capture of the context and then sends a capture again whenever it
// changes. The browser reconnects by itself after a network error or when the service ends
// the stream (a fresh snapshot each time). When the stream cannot be had at all (no
// EventSource, or the service refused it: 401, 403, 404, an old service without the route), every
// capture it was following is handed back to the caller's polling instead.

export const EVENTS_PATH = "/api/v1/captures/events";

/** @typedef {{capture_id: string, status: string, [k: string]: any}} Capture */

export class CaptureFeed {
  /** @param {(capture: Capture) => Promise<boolean>} onCapture true when the capture is final
   * @param {(id: string) => void} fallBack the capture must be polled instead */
  constructor(onCapture, fallBack) {
    this.onCapture = onCapture;
    this.fallBack = fallBack;
    /** context id -> {source, ids} @type {Map<string, {source: EventSource, ids: Set<string>}>} */
    this.streams = new Map();
  }

  /** Whether pushed updates can be tried in this browser. */
  static get supported() {
    return typeof EventSource === "function";
  }

  /** Follow capture `id` of context `contextId` until it is final. */
  follow(id, contextId) {
    let stream = this.streams.get(contextId);
    if (!stream) {
      const url = `${EVENTS_PATH}?context_id=${encodeURIComponent(contextId)}`;
      const source = new EventSource(url);
      stream = { source, ids: new Set() };
      this.streams.set(contextId, stream);
      source.addEventListener("capture", (event) => this.#received(contextId, event));
      source.addEventListener("error", () => {
        // CONNECTING: the browser retries by itself; CLOSED: refused for good, so poll.
        if (source.readyState === EventSource.CLOSED) this.#abandon(contextId);
      });
    }
    stream.ids.add(id);
  }

  /** Stop every stream (signed out); nothing is handed back. */
  close() {
    for (const { source } of this.streams.values()) source.close();
    this.streams.clear();
  }

  /** @param {string} contextId @param {Event} event */
  async #received(contextId, event) {
    const stream = this.streams.get(contextId);
    /** @type {Capture} */
    let capture;
    try {
      capture = JSON.parse(/** @type {MessageEvent} */ (event).data);
    } catch {
      return;
    }
    if (!stream?.ids.has(capture.capture_id)) return;
    if (await this.onCapture(capture)) {
      stream.ids.delete(capture.capture_id);
      if (stream.ids.size === 0) {
        stream.source.close();
        this.streams.delete(contextId);
      }
    }
  }

  /** @param {string} contextId */
  #abandon(contextId) {
    const stream = this.streams.get(contextId);
    if (!stream) return;
    stream.source.close();
    this.streams.delete(contextId);
    for (const id of stream.ids) this.fallBack(id);
  }
}
