// Follow a context's captures as the service pushes them (Server-Sent Events), not by polling.
//
// One EventSource per context (GET /api/v1/captures/events?context_id=...): the stream starts
// with the state of every capture of the context and then sends a capture again whenever it
// changes. The browser reconnects by itself after a network error or when the service ends
// the stream (a fresh snapshot each time). When the stream cannot be had at all (no
// EventSource, or the service refused it: 401, 403, 404, an old service without the route), every
// capture it was following is handed back to the caller's polling instead.
//
// A capture's events can arrive before the page follows it: the stream is already open for an
// earlier photo of the context, and the service encodes, stores and verifies a new one before
// the page has read its upload's answer. The service sends each state once per stream, so such
// an event would be lost and the photo shown "encoded" for good (seen in WebKit). The stream
// keeps the latest event of every capture it is not following, and `follow` hands it on.

export const EVENTS_PATH = "/api/v1/captures/events";

/** @typedef {{capture_id: string, status: string, [k: string]: any}} Capture */

export class CaptureFeed {
  /** @param {(capture: Capture) => Promise<boolean>} onCapture true when the capture is final
   * @param {(id: string) => void} fallBack the capture must be polled instead */
  constructor(onCapture, fallBack) {
    this.onCapture = onCapture;
    this.fallBack = fallBack;
    /** context id -> {source, ids followed, latest event of each capture not followed}
     * @type {Map<string, {source: EventSource, ids: Set<string>, unfollowed: Map<string, Capture>}>} */
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
      stream = { source, ids: new Set(), unfollowed: new Map() };
      this.streams.set(contextId, stream);
      source.addEventListener("capture", (event) => this.#received(contextId, event));
      source.addEventListener("error", () => {
        // CONNECTING: the browser retries by itself; CLOSED: refused for good, so poll.
        if (source.readyState === EventSource.CLOSED) this.#abandon(contextId);
      });
    }
    stream.ids.add(id);
    const arrived = stream.unfollowed.get(id);
    if (arrived) {
      stream.unfollowed.delete(id);
      this.#deliver(contextId, arrived);
    }
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
    if (!stream) return;
    if (!stream.ids.has(capture.capture_id)) {
      stream.unfollowed.set(capture.capture_id, capture); // its page may follow it any moment
      return;
    }
    await this.#deliver(contextId, capture);
  }

  /** @param {string} contextId @param {Capture} capture */
  async #deliver(contextId, capture) {
    const stream = this.streams.get(contextId);
    if (!stream) return;
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
