// Choosing the body site: the map (front, back, and close-ups of the face, hands and feet),
// the search (the service matches meanings and synonyms, reads a side word: "left forearm" ->
// L, and offers no near-duplicates), this session's recent sites, and the patient's lesions
// (L1, L2, ...: a pin on the map, "photograph L3 again" in one tap; "Mark a lesion" drops a new
// pin). Every choice is shown by the service's one name for its site and side (js/sites.js),
// and the map highlights the chosen site, however it was chosen.
// Recent sites live in memory only: they describe a patient, and go with the page.

import { t } from "../i18n/en.js";
import { $, clear, el, say } from "./dom.js";
import { getJson, paths, postJson } from "./api.js";
import { draws, regionLabel, renderBodyMap } from "./bodymap.js";
import { REGIONS, VIEWS } from "./regions.js";
import { loadSites, nameOf, remember } from "./sites.js";

const SEARCH_DELAY_MS = 250;
const RECENT_MAX = 5;

/** @typedef {import("./bodymap.js").Lesion} Lesion */

export class SitePicker {
  /** `onPick({code, laterality, lesion?})` is called with the chosen site (and lesion). */
  constructor(onPick) {
    this.onPick = onPick;
    this.view = "front";
    /** @type {(import("./bodymap.js").SiteChoice & {lesion?: string | null}) | null} */
    this.selected = null;
    /** @type {Lesion[]} the patient's lesions */
    this.lesions = [];
    /** @type {string | null} */
    this.contextId = null;
    this.pinning = false;
    /** @type {import("./bodymap.js").MapPick | null} a pin dropped, waiting for "Save" */
    this.dropped = null;
    /** @type {{code: string, laterality: string | null, label: string}[]} */
    this.recent = [];
    /** @type {number | undefined} */
    this.timer = undefined;
    this.searches = 0; // searches started: an older answer is dropped
    this.naming = null; // the request for the map's names, while it runs or once it succeeded
    this.lesionsDrawn = ""; // what the lesion list and the recent sites show now
    this.recentDrawn = "";
    for (const button of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-map-view]"))) {
      button.addEventListener("click", () => this.setView(/** @type {string} */ (button.dataset.mapView)));
    }
    $("pin-toggle").addEventListener("click", () => this.setPinning(!this.pinning));
    $("pin-box").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#savePin();
    });
    $("pin-cancel").addEventListener("click", () => this.setPinning(false));
    $("site-search").addEventListener("input", () => this.#searchSoon());
    $("site-search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#search();
    });
  }

  setView(view) {
    this.view = view;
    for (const button of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-map-view]"))) {
      button.setAttribute("aria-pressed", String(button.dataset.mapView === view));
    }
    this.render();
  }

  /** Pin mode: the next tap on the map drops a pin (a new lesion) instead of choosing. */
  setPinning(on) {
    this.pinning = on;
    this.dropped = null;
    $("pin-toggle").setAttribute("aria-pressed", String(on));
    $("pin-box").hidden = true;
    say("pin-hint", on ? t("lesion.pin_hint") : "");
    this.render();
  }

  render() {
    renderBodyMap($("bodymap"), this.view, (pick) => this.#fromMap(pick), this.selected, {
      lesions: this.lesions,
      onLesion: (lesion) => this.#fromLesion(lesion),
      pinning: this.pinning,
      chosen: this.selected?.lesion ?? null,
    });
    this.#renderRecent();
    this.#renderLesions();
  }

  /** The patient's lesions (pins and "photograph again" buttons); kept on failure. */
  async loadLesions(contextId) {
    if (contextId !== this.contextId) this.lesions = [];
    this.contextId = contextId;
    const map = $("bodymap");
    map.setAttribute("aria-busy", "true"); // its pins may still change (assistive technology waits)
    try {
      this.lesions = await getJson(paths.lesions(contextId));
    } catch (error) {
      say("lesion-message", t("lesion.load_error", { detail: /** @type {Error} */ (error).message }), "error");
      map.removeAttribute("aria-busy");
      return;
    }
    say("lesion-message", "");
    await loadSites(this.lesions.map((l) => l.body_site).filter((c) => c !== null)).catch(() => {});
    this.render();
    map.removeAttribute("aria-busy");
  }

  #renderLesions() {
    // Lists that would read the same are kept, buttons and all (as the map: a redraw between
    // press and release loses the tap).
    const drawn = JSON.stringify(this.lesions.map((l) => [l.tracking_uid, l.label, l.description, l.body_site, l.laterality, l.body_site_name, nameOf(l.body_site ?? "", l.laterality)]));
    if (drawn === this.lesionsDrawn) return;
    this.lesionsDrawn = drawn;
    const list = clear($("lesion-list"));
    $("lesion-box").hidden = this.lesions.length === 0;
    for (const lesion of this.lesions) {
      const site = lesion.body_site ? nameOf(lesion.body_site, lesion.laterality) || lesion.body_site_name : null;
      const text = t("lesion.again", { label: lesion.label, site: site || t("lesion.no_site") });
      const button = el("button", { type: "button", class: "row", onclick: () => this.#fromLesion(lesion) }, text);
      button.dataset.lesion = lesion.tracking_uid;
      list.append(el("li", {}, button, lesion.description ? el("p", { class: "hint" }, lesion.description) : null));
    }
  }

  #fromLesion(lesion) {
    if (!lesion.body_site) {
      say("lesion-message", t("lesion.no_site_error", { label: lesion.label }), "error");
      return;
    }
    this.onPick({ code: lesion.body_site, laterality: lesion.laterality, lesion });
  }

  /** A pin was dropped on a region: name the spot, then "Save L<n>" records the lesion. */
  #drop(pick) {
    this.dropped = pick;
    const region = REGIONS.find((r) => r.key === pick.key && r.view === pick.view);
    $("pin-site").textContent = region ? regionLabel(region, pick.laterality, pick.view) : "";
    /** @type {HTMLInputElement} */ ($("pin-description")).value = "";
    $("pin-box").hidden = false;
    say("pin-message", "");
    $("pin-description").focus();
  }

  async #savePin() {
    const pick = this.dropped;
    if (!pick || !this.contextId) return;
    const description = /** @type {HTMLInputElement} */ ($("pin-description")).value.trim();
    let lesion;
    try {
      lesion = await postJson(paths.lesions(this.contextId), {
        view: pick.view,
        x: pick.x,
        y: pick.y,
        body_site: pick.code,
        laterality: pick.laterality,
        description: description || null,
      });
    } catch (error) {
      say("pin-message", /** @type {Error} */ (error).message, "error");
      return;
    }
    this.lesions = [...this.lesions.filter((l) => l.tracking_uid !== lesion.tracking_uid), lesion];
    this.setPinning(false);
    this.#fromLesion(lesion);
  }

  /** The map's names from the service, in one request (one at a time); the map is drawn
   * again with them. On failure the map keeps its own words until the next try. */
  async loadNames() {
    this.naming ??= loadSites(REGIONS.map((region) => region.code)).then(
      () => true,
      () => false,
    );
    const named = await this.naming;
    this.naming = named ? this.naming : null;
    if (named) this.render();
  }

  /** The chosen site ({code, laterality}, or null): the one region highlighted, in the view
   * that draws it; none when the map does not draw it. */
  select(site) {
    const lesion = site?.lesion?.tracking_uid ?? null;
    this.selected = site ? { code: site.code, laterality: site.laterality || null, lesion } : null;
    const pinned = this.lesions.find((l) => l.tracking_uid === lesion);
    if (pinned?.view && pinned.view !== this.view) return this.setView(pinned.view);
    if (!this.selected || draws(this.view, this.selected)) return;
    const other = Object.keys(VIEWS).find((view) => draws(view, /** @type {any} */ (this.selected)));
    if (other) this.setView(other);
  }

  #fromMap(pick) {
    if (this.pinning) return this.#drop(pick);
    this.onPick({ code: pick.code, laterality: pick.laterality });
  }

  /** A chosen site for the recent list: {code, laterality, label} (label: its one name); it
   * takes the place of the entry labelled `replaced` (the same site before its side changed). */
  remember(choice, replaced = null) {
    const others = this.recent.filter((r) => r.label !== choice.label && r.label !== replaced);
    this.recent = [choice, ...others].slice(0, RECENT_MAX);
  }

  /** The session ended: nothing chosen, nothing recent, no lesions. */
  forget() {
    this.selected = null;
    this.recent = [];
    this.lesions = [];
    this.contextId = null;
  }

  #renderRecent() {
    const drawn = JSON.stringify(this.recent);
    if (drawn === this.recentDrawn) return;
    this.recentDrawn = drawn;
    const list = clear($("recent-sites"));
    $("recent-sites-box").hidden = this.recent.length === 0;
    for (const choice of this.recent) {
      list.append(el("li", {}, el("button", { type: "button", onclick: () => this.onPick(choice) }, choice.label)));
    }
  }

  #searchSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.#search(), SEARCH_DELAY_MS);
  }

  async #search() {
    clearTimeout(this.timer);
    const q = /** @type {HTMLInputElement} */ ($("site-search")).value.trim();
    const asked = ++this.searches; // only the latest search fills the list (no doubles)
    if (!q) return clear($("site-results"));
    let matches;
    try {
      matches = await getJson(paths.searchSites(q));
    } catch (error) {
      if (asked !== this.searches) return;
      clear($("site-results")).append(el("li", { class: "hint" }, t("site.search_error", { detail: /** @type {Error} */ (error).message })));
      return;
    }
    if (asked !== this.searches || /** @type {HTMLInputElement} */ ($("site-search")).value.trim() !== q) return; // typed on meanwhile
    const list = clear($("site-results"));
    if (matches.length === 0) list.append(el("li", { class: "hint" }, t("site.search_none", { q })));
    for (const match of matches) {
      remember(match.site);
      const side = match.laterality && match.laterality !== "U" ? match.laterality : null;
      const choice = { code: match.site.code, laterality: side };
      list.append(el("li", {}, el("button", { type: "button", class: "row", onclick: () => this.onPick(choice) }, match.name)));
    }
  }

  clearSearch() {
    clearTimeout(this.timer);
    this.searches += 1; // an answer still on its way is not shown
    /** @type {HTMLInputElement} */ ($("site-search")).value = "";
    clear($("site-results"));
  }
}
