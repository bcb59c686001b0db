// Photos of an earlier sign-in of the same user, still waiting on this phone (issue 20).
//
// After a sign-out, an expired session or a dead battery, the next launch by the same user
// (for any patient) lists them per patient, named, and offers two things: send them to that
// patient's record (the service checks that this user opened that context, then lets this
// sign-in upload there and nowhere else), or delete them, after a second tap. Nothing is
// sent without the user saying so; the panel stays above every screen until each patient's
// photos are sent or deleted. The names come from the photos' own encrypted metadata, read
// with this user's key only; the service's answer names the patient again before sending.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";

/** One earlier patient's photos waiting on the phone.
 * @typedef {object} EarlierGroup
 * @property {string} context the context id they were taken for
 * @property {{name: string, mrn: string, birth_date?: string}} patient from their metadata
 * @property {string[]} ids
 * @property {number} taken when the first was taken (ms) */

/** @typedef {{send(group: EarlierGroup): void, discard(group: EarlierGroup): void}} Actions */

export class EarlierOffer {
  /** @param {Actions} actions */
  constructor(actions) {
    this.actions = actions;
    /** @type {Map<string, {group: EarlierGroup, row: HTMLLIElement}>} */
    this.rows = new Map();
  }

  /** List the groups, each with "Send to ..." and "Delete them", below those listed already
   * (a custody the service answered for only later). A patient listed already and not yet
   * sent or deleted gets the new photos in the same offer; otherwise they are offered anew.
   * @param {EarlierGroup[]} groups */
  add(groups) {
    const list = $("queue-offer-list");
    for (const group of groups) {
      const listed = this.rows.get(group.context);
      if (listed && ["offered", "confirm"].includes(listed.row.dataset.state ?? "")) {
        listed.group.ids.push(...group.ids);
        this.#offer(listed.group);
        continue;
      }
      const row = listed?.row ?? el("li", { class: "card", dataset: { context: group.context } });
      this.rows.set(group.context, { group, row });
      if (!listed) list.append(row);
      this.#offer(group);
    }
    if (this.rows.size) $("queue-offer").hidden = false;
  }

  /** Offer the group again, after `note` (e.g. capture was unreachable).
   * @param {EarlierGroup} group @param {string} note */
  again(group, note) {
    this.#offer(group, note);
  }

  /** @param {EarlierGroup} group @param {string} [note] */
  #offer(group, note = "") {
    const { name } = group.patient;
    const text = t("queue.offer", { count: group.ids.length, name, details: details(group.patient), time: when(group.taken) });
    this.#fill(
      group,
      "offered",
      note ? `${text} ${note}` : text,
      el("button", { type: "button", class: "primary", dataset: { action: "send" }, onclick: () => this.actions.send(group) }, t("queue.offer_send", { name })),
      el("button", { type: "button", class: "danger", dataset: { action: "discard" }, onclick: () => this.#confirmDiscard(group) }, t("queue.offer_discard", { count: group.ids.length })),
    );
  }

  /** @param {EarlierGroup} group */
  #confirmDiscard(group) {
    const { name } = group.patient;
    this.#fill(
      group,
      "confirm",
      t("queue.offer_discard_confirm", { count: group.ids.length, name }),
      el("button", { type: "button", class: "danger", dataset: { action: "discard-yes" }, onclick: () => this.actions.discard(group) }, t("queue.offer_discard_yes")),
      el("button", { type: "button", dataset: { action: "keep" }, onclick: () => this.#offer(group) }, t("queue.offer_keep")),
    );
  }

  /** Say where a group stands ("sending", "verified", "failed", "refused", "deleted").
   * @param {EarlierGroup} group @param {string} state @param {string} text */
  status(group, state, text) {
    this.#fill(group, state, text);
  }

  /** @param {EarlierGroup} group @param {string} state @param {string} text @param {...HTMLElement} buttons */
  #fill(group, state, text, ...buttons) {
    const entry = this.rows.get(group.context);
    if (!entry) return;
    entry.row.dataset.state = state;
    clear(entry.row).append(el("p", { class: "offer-text" }, text));
    if (buttons.length) entry.row.append(el("div", { class: "row-buttons" }, ...buttons));
    const open = [...this.rows.values()].some((e) => !["verified", "deleted"].includes(e.row.dataset.state ?? ""));
    $("queue-offer-close").hidden = open;
  }

  /** The groups whose photos include `id`. @param {string} id */
  groupOf(id) {
    return [...this.rows.values()].find((e) => e.group.ids.includes(id))?.group ?? null;
  }

  hide() {
    $("queue-offer").hidden = true;
  }
}

/** "born 1957-03-14, MRN 123456" @param {{mrn: string, birth_date?: string}} patient */
function details(patient) {
  const parts = [patient.birth_date ? t("banner.born", { date: patient.birth_date }) : null, t("banner.mrn", { mrn: patient.mrn })];
  return parts.filter(Boolean).join(", ");
}

/** "14 Mar, 14:02" @param {number} ms */
function when(ms) {
  return new Date(ms).toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}
