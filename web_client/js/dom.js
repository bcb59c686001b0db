// Small DOM helpers. Text always goes in as textContent (never innerHTML): names and server
// messages are data, and the page's CSP forbids inline script anyway.

import { t } from "../i18n/en.js";

/** The element with this id. Every id the modules ask for is in index.html, so it is there.
 * @param {string} id
 * @returns {HTMLElement} */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @typedef {Node | string | number | boolean | null | undefined} Child */

/** el("button", {class: "x", onclick: fn, "aria-label": "…"}, "text", childNode, …)
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]} */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The HTML elements below `root` that match `selector`.
 * @param {ParentNode} root
 * @param {string} selector */
const htmlBelow = (root, selector) => /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll(selector));

/** Fill every [data-i18n] / [data-i18n-aria] / [data-i18n-placeholder] below `root`.
 * @param {ParentNode} [root] */
export function translate(root = document) {
  for (const node of htmlBelow(root, "[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of htmlBelow(root, "[data-i18n-aria]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAria));
  }
  for (const node of htmlBelow(root, "[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
}

/** Show one screen (a <section class="screen">), hide the others, move focus to its heading.
 * Transient notices (`notice`) are about what was on screen: they go with it.
 * @param {string} id */
export function showScreen(id) {
  for (const node of document.querySelectorAll("[data-transient]")) say(node.id, "");
  for (const screen of htmlBelow(document, "section.screen")) {
    screen.hidden = screen.id !== id;
  }
  const heading = /** @type {HTMLElement | null} */ ($(id).querySelector("h1, h2"));
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
  document.body.dataset.screen = id;
  document.dispatchEvent(new CustomEvent("screenchange", { detail: { id } }));
}

/** A message in a live region (role=status or role=alert) that screen readers announce.
 * @param {string} id @param {string | null | undefined} text @param {string} [kind] */
export function say(id, text, kind = "info") {
  const node = $(id);
  node.textContent = text || "";
  node.dataset.kind = kind;
  node.hidden = !text;
  delete node.dataset.transient;
}

/** `say`, for a notice that is true only for the moment ("Back online: sending.", a refused
 * file): cleared when the screen changes.
 * @param {string} id @param {string | null | undefined} text @param {string} [kind] */
export function notice(id, text, kind = "info") {
  say(id, text, kind);
  if (text) $(id).dataset.transient = "true";
}

/** Empty `node`, and give it back.
 * @template {Node} N
 * @param {N} node
 * @returns {N} */
export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}
