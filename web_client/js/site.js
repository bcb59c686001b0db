// Choosing the body site: the front/back map, the search (the service matches meanings and
// synonyms, and reads a side word: "left forearm" -> L) and this session's recent sites.
// Recent sites live in memory only: they describe a patient, and go with the page.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";
import { getJson, paths } from "./api.js";
import { regionLabel, renderBodyMap } from "./bodymap.js";

const SEARCH_DELAY_MS = 250;
const RECENT_MAX = 5;

export class SitePicker {
  /** `onPick({code, laterality, label})` is called with the chosen site. */
  constructor(onPick) {
    this.onPick = onPick;
    this.view = "front";
    this.selected = null;
    this.recent = [];
    this.timer = null;
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

  #fromMap(pick) {
    this.selected = pick;
    this.onPick({
      code: pick.code,
      laterality: pick.laterality,
      label: regionLabel(pick.key, pick.laterality, pick.view),
    });
  }

  remember(choice) {
    this.recent = [choice, ...this.recent.filter((r) => r.label !== choice.label)].slice(0, RECENT_MAX);
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
    const q = $("site-search").value.trim();
    const list = clear($("site-results"));
    if (!q) return;
    let matches;
    try {
      matches = await getJson(paths.searchSites(q));
    } catch (error) {
      list.append(el("li", { class: "hint" }, t("site.search_error", { detail: error.message })));
      return;
    }
    if ($("site-search").value.trim() !== q) return; // the user typed on meanwhile
    if (matches.length === 0) list.append(el("li", { class: "hint" }, t("site.search_none", { q })));
    for (const match of matches) {
      const side = match.laterality && match.laterality !== "U" ? match.laterality : null;
      const label = side ? `${match.site.meaning} (${t(`side.${side}`)})` : match.site.meaning;
      const choice = { code: match.site.code, laterality: side, label };
      list.append(el("li", {}, el("button", { type: "button", class: "row", onclick: () => this.onPick(choice) }, label)));
    }
  }

  clearSearch() {
    $("site-search").value = "";
    clear($("site-results"));
  }
}
