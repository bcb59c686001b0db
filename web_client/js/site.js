// Choosing the body site: the front/back map, the search (the service matches meanings and
// synonyms, reads a side word: "left forearm" -> L, and offers no near-duplicates) and this
// session's recent sites. Every choice is shown by the service's one name for its site and side
// (js/sites.js), and the map highlights the chosen site, however it was chosen.
// Recent sites live in memory only: they describe a patient, and go with the page.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";
import { getJson, paths } from "./api.js";
import { draws, renderBodyMap } from "./bodymap.js";
import { REGIONS } from "./regions.js";
import { loadSites, remember } from "./sites.js";

const SEARCH_DELAY_MS = 250;
const RECENT_MAX = 5;

export class SitePicker {
  /** `onPick({code, laterality})` is called with the chosen site. */
  constructor(onPick) {
    this.onPick = onPick;
    this.view = "front";
    /** @type {import("./bodymap.js").SiteChoice | null} */
    this.selected = null;
    /** @type {{code: string, laterality: string | null, label: string}[]} */
    this.recent = [];
    /** @type {number | undefined} */
    this.timer = undefined;
    this.searches = 0; // searches started: an older answer is dropped
    this.naming = null; // the request for the map's names, while it runs or once it succeeded
    $("view-front").addEventListener("click", () => this.setView("front"));
    $("view-back").addEventListener("click", () => this.setView("back"));
    $("site-search").addEventListener("input", () => this.#searchSoon());
    $("site-search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#search();
    });
  }

  setView(view) {
    this.view = view;
    $("view-front").setAttribute("aria-pressed", String(view === "front"));
    $("view-back").setAttribute("aria-pressed", String(view === "back"));
    this.render();
  }

  render() {
    renderBodyMap($("bodymap"), this.view, (pick) => this.#fromMap(pick), this.selected);
    this.#renderRecent();
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
    this.selected = site ? { code: site.code, laterality: site.laterality || null } : null;
    if (!this.selected || draws(this.view, this.selected)) return;
    const other = this.view === "front" ? "back" : "front";
    if (draws(other, this.selected)) this.setView(other);
  }

  #fromMap(pick) {
    this.onPick({ code: pick.code, laterality: pick.laterality });
  }

  /** A chosen site for the recent list: {code, laterality, label} (label: its one name); it
   * takes the place of the entry labelled `replaced` (the same site before its side changed). */
  remember(choice, replaced = null) {
    const others = this.recent.filter((r) => r.label !== choice.label && r.label !== replaced);
    this.recent = [choice, ...others].slice(0, RECENT_MAX);
  }

  /** The session ended: nothing chosen, nothing recent. */
  forget() {
    this.selected = null;
    this.recent = [];
  }

  #renderRecent() {
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
