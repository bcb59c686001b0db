// The chosen site before the camera: its coded name, the side, who may see the photos (the
// service suggests "restricted" for sensitive sites: genitals, breast, buttocks, face...), and
// the patient's earlier photos of the same site. Restricted priors arrive blurred from the
// server; very restricted ones are never listed.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";
import { getJson, paths } from "./api.js";
import { closeUnblur, openUnblur } from "./unblur.js";
import { remember, siteName } from "./sites.js";
import { renderHealing } from "./healing.js";

/** "20261102091530.250+0100" (DICOM DT) -> "2026-11-02". */
export function dicomDate(value) {
  const m = /^(\d{4})(\d{2})(\d{2})/.exec(value || "");
  return m ? `${m[1]}-${m[2]}-${m[3]}` : t("priors.date_unknown");
}

/** @param {string} name @param {string} value */
function checkRadio(name, value) {
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll(`input[name="${name}"]`))) {
    input.checked = input.value === value;
  }
}

/** The chosen site: the service's description (BodySiteOut) with the side and privacy of the
 * next photos.
 * @typedef {object} Site
 * @property {string} code SNOMED CT
 * @property {string} meaning
 * @property {string} name the service's one display name, without a side
 * @property {Record<string, string>} [names] the display name per side ("L", "R", "B")
 * @property {boolean} paired
 * @property {string | null} laterality
 * @property {string} sensitivity
 * @property {string[]} categories
 * @property {{level: string, categories: string[]} | null} suggested
 * @property {{tracking_uid: string, label: string, description: string | null} | null} lesion
 *   the patient's lesion the photos show (L1, L2, ...), if one was chosen
 * @property {boolean} dermoscopic taken through a dermatoscope (a Dermoscopic image)
 * @property {string} polarization POLARIZED, NON_POLARIZED or "" (not recorded)
 * @property {string} contact CONTACT, NON_CONTACT or "" (not recorded)
 */

/** Site details from the service + the side tapped or searched: the state of the next photos.
 * @param {{code: string, laterality: string | null, lesion?: any}} choice
 * @returns {Promise<Site>} */
export async function describeSite(choice) {
  const site = remember(await getJson(paths.site(choice.code)));
  const suggested = site.suggested_sensitivity;
  return {
    code: site.code,
    meaning: site.meaning,
    name: site.name,
    names: site.names,
    paired: site.paired,
    laterality: site.paired ? choice.laterality : null,
    sensitivity: suggested ? suggested.level : "normal",
    categories: suggested ? suggested.categories : [],
    suggested,
    lesion: choice.lesion
      ? { tracking_uid: choice.lesion.tracking_uid, label: choice.lesion.label, description: choice.lesion.description }
      : null,
    dermoscopic: false,
    polarization: "",
    contact: "",
  };
}

/** The upload's fields for the lesion and the dermatoscope (js/uploader.js sends them). */
export function lesionFields(site) {
  return {
    lesion: site.lesion ? site.lesion.tracking_uid : "",
    dermoscopic: site.dermoscopic ? "true" : "",
    polarization: site.dermoscopic ? site.polarization : "",
    contact: site.dermoscopic ? site.contact : "",
  };
}

/** The lesion and dermoscopy part of the details screen; changes are written into `site`. */
function renderLesion(site) {
  const line = $("details-lesion");
  line.hidden = !site.lesion;
  line.textContent = site.lesion
    ? t("lesion.chosen", { label: site.lesion.label, description: site.lesion.description ? `: ${site.lesion.description}` : "" })
    : "";
  const box = /** @type {HTMLInputElement} */ ($("dermoscopic"));
  const light = /** @type {HTMLSelectElement} */ ($("dermoscopy-light"));
  const contact = /** @type {HTMLSelectElement} */ ($("dermoscopy-contact"));
  box.checked = site.dermoscopic;
  light.value = site.polarization;
  contact.value = site.contact;
  $("dermoscopy-box").hidden = !site.dermoscopic;
  box.onchange = () => {
    site.dermoscopic = box.checked;
    $("dermoscopy-box").hidden = !box.checked;
  };
  light.onchange = () => (site.polarization = light.value);
  contact.onchange = () => (site.contact = contact.value);
}

/** The site's one display name with its current side (the service's words: js/sites.js). */
export function siteTitle(site) {
  return siteName(site, site.laterality);
}

/** Fill the details screen for `site`; radio changes are written back into `site`. */
export function renderDetails(site) {
  $("details-site").textContent = siteTitle(site);
  renderLesion(site);
  $("side-box").hidden = !site.paired;
  $("side-needed").hidden = !(site.paired && !site.laterality);
  checkRadio("side", site.laterality || "");
  checkRadio("sensitivity", site.sensitivity);
  const note = $("sensitivity-suggested");
  if (site.suggested) {
    const why = site.suggested.categories.map((c) => {
      const key = `sensitivity.category.${c}`;
      return t(key) === key ? t("sensitivity.category.other") : t(key);
    });
    note.textContent = t("sensitivity.suggested", {
      why: why.length ? why.join(", ") : t("sensitivity.category.other"),
    });
  }
  note.hidden = !site.suggested;
}

let priorsAsked = 0; // requests for earlier photos started: only the latest answer is shown

/** The patient's earlier photos of this site (and side); returns the newest (the overlay).
 * With `canUnblur` (a sensitive viewer), a blurred photo the service offers to show clearly
 * (`unblur_url`) gets a "Show clearly" button. A side changed while the first answer was on
 * its way: that answer (the other side's photos) is dropped (returns undefined). */
export async function renderPriors(contextId, site, { canUnblur = false } = {}) {
  const asked = ++priorsAsked;
  closeUnblur();
  const list = clear($("priors"));
  $("priors-message").textContent = "";
  renderHealing(null);
  let timeline;
  list.setAttribute("aria-busy", "true"); // filled when the service answers
  try {
    // a lesion's own photos (clinical and dermoscopic) when one was chosen: the overlay of
    // the live camera is then that lesion's last photo
    timeline = await getJson(paths.timeline(contextId, site.code, site.laterality, site.lesion?.tracking_uid));
  } catch (error) {
    if (asked !== priorsAsked) return undefined;
    $("priors-message").textContent = t("priors.error", { detail: /** @type {Error} */ (error).message });
    return null;
  } finally {
    if (asked === priorsAsked) list.removeAttribute("aria-busy");
  }
  if (asked !== priorsAsked) return undefined;
  const items = timeline.items;
  const printable = site.lesion ? null : paths.timeline(contextId, site.code, site.laterality).replace("/timeline?", "/timeline/healing?");
  renderHealing(timeline.healing, printable);
  if (items.length === 0) $("priors-message").textContent = t("priors.none");
  for (const item of [...items].reverse()) {
    const date = dicomDate(item.acquired);
    const alt = item.blurred
      ? `${t("priors.item", { date })}: ${t("priors.blurred")}`
      : t("priors.item", { date });
    const image = el("img", { src: item.thumbnail_url, alt, loading: "lazy", decoding: "async" });
    const caption = el("figcaption", {}, item.blurred ? `${date} · ${t("priors.blurred")}` : date);
    const figure = el("figure", { class: item.blurred ? "blurred" : null }, image, caption);
    const unblur =
      canUnblur && item.blurred && item.unblur_url
        ? el(
            "button",
            { type: "button", class: "unblur", "aria-label": t("unblur.show_label", { date }), onclick: () => openUnblur(item, date) },
            t("unblur.show"),
          )
        : null;
    list.append(el("li", { dataset: { blurred: String(item.blurred), sop: item.sop_instance_uid } }, figure, unblur));
  }
  return items.length ? items[items.length - 1] : null;
}
