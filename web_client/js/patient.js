// Who the photos are of: the session's patient, shown in the banner on every screen.
// Demographics always come from the service (the EHR's FHIR data); nothing here is typed in
// except a wristband or MRN to look up, and the service refuses any patient but the launched one.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";
import { ApiError, getJson, paths, postJson } from "./api.js";

/** The signed-in session, or {integration: true} when the service runs without an EHR. */
export async function loadSession() {
  try {
    return await getJson(paths.session);
  } catch (error) {
    // Integration mode (no EHR registered): a trusted system opens /?context=<id>.
    const contextId = new URLSearchParams(location.search).get("context");
    if (error instanceof ApiError && error.status === 401 && contextId) {
      return { integration: true, context_id: contextId };
    }
    throw error;
  }
}

export const loadContext = (id) => getJson(paths.context(id));
export const scanWristband = (identifier) => postJson(paths.scan, { identifier });
export const loadWorklist = () => getJson(paths.worklist);
export const claimWorkitem = (uid) => postJson(paths.claim(uid), {});
/** Give a claimed workitem back (the wrong patient was opened): it is SCHEDULED for others. */
export const unclaimWorkitem = (contextId) => postJson(paths.unclaim(contextId), {});

function age(birthDate) {
  const born = new Date(`${birthDate}T00:00:00`);
  const now = new Date();
  let years = now.getFullYear() - born.getFullYear();
  const beforeBirthday =
    now.getMonth() < born.getMonth() ||
    (now.getMonth() === born.getMonth() && now.getDate() < born.getDate());
  if (beforeBirthday) years -= 1;
  return years;
}

/** "MÜLLER, Jürgen": the family name in capitals, as wristbands print it. */
export function displayName(patient) {
  if (!patient.name) return t("banner.name_unknown");
  const family = patient.name.family.toLocaleUpperCase();
  return patient.name.given ? `${family}, ${patient.name.given}` : family;
}

/** Fill the banner (or show "no patient" when `context` is null). */
export function renderBanner(context) {
  if (!context) {
    $("banner-name").textContent = t("banner.none");
    $("banner-details").textContent = "";
    $("banner-encounter").textContent = "";
    delete document.body.dataset.patient;
    return;
  }
  const p = context.patient;
  const born = p.birth_date
    ? `${t("banner.born", { date: p.birth_date })} (${t("banner.age", { years: age(p.birth_date) })})`
    : t("banner.born_unknown");
  const details = [born, p.sex ? t(`banner.sex.${p.sex}`) : null, t("banner.mrn", { mrn: p.id })];
  const encounter = context.encounter || {};
  const visit = [
    encounter.admission_id ? t("banner.visit", { id: encounter.admission_id }) : null,
    encounter.description,
    encounter.unit,
  ];
  $("banner-name").textContent = displayName(p);
  $("banner-details").textContent = details.filter(Boolean).join(" · ");
  const shown = visit.filter((part, i) => part && !visit.slice(0, i).some((p) => p && p.includes(part)));
  $("banner-encounter").textContent = shown.join(" · ");
  document.body.dataset.patient = "shown";
}

/** The worklist as buttons; `onPick(item)` claims one. Hidden when there is no worklist. */
export async function renderWorklist(onPick) {
  const list = clear($("worklist"));
  try {
    const items = await loadWorklist();
    $("worklist-message").textContent = items.length ? "" : t("patient.worklist_empty");
    for (const item of items) {
      const who = [item.name, item.birth_date, item.mrn && t("banner.mrn", { mrn: item.mrn })];
      const label = t("patient.worklist_pick", { name: who.filter(Boolean).join(", ") });
      const button = el("button", { type: "button", class: "row", onclick: () => onPick(item) }, label);
      list.append(el("li", {}, button));
    }
  } catch {
    $("worklist-message").textContent = t("patient.worklist_unavailable");
  }
}
