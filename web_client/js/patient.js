// Who the photos are of: the session's patient, shown in the banner on every screen.
// Demographics always come from the service (the EHR's FHIR data); nothing here is typed in
// except a wristband or MRN to look up, and the service refuses any patient but the launched one.

import { t } from "../i18n/en.js";
import { $, clear, el } from "./dom.js";
import { ApiError, detailOf, getJson, paths, postJson, unsafeHeaders } from "./api.js";

/** How often the worklist on screen is asked again (the service answers from a copy its UPS
 * event subscription keeps fresh, so a poll costs the worklist server nothing). */
export const WORKLIST_POLL_MS = 4000;

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

/** The worklist's refusals in our words (the service's ``code``); others keep its sentence. */
const WORKLIST_REFUSALS = {
  "workitem-taken": "worklist.taken",
  "workitem-completed": "worklist.completed",
  "workitem-canceled": "worklist.canceled",
  "worklist-refused": "worklist.refused",
};

/** A worklist POST whose refusal is said in our words: an Error with the sentence to show. */
async function worklistPost(path, body = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...unsafeHeaders() },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "");
  }
  const answer = await response.json().catch(() => null);
  if (response.ok) return answer;
  const key = answer && WORKLIST_REFUSALS[answer.code];
  if (!key) throw new ApiError(response.status, detailOf(answer));
  const refusal = new ApiError(response.status, detailOf(answer));
  const reason = String(answer.reason || detailOf(answer)).replace(/[.\s]+$/, "");
  refusal.message = t(key, { reason });
  throw refusal;
}

/** Claim a workitem (IN PROGRESS); refused when taken, completed or canceled meanwhile. */
export const claimWorkitem = (uid) => worklistPost(paths.claim(uid));
/** Give a claimed workitem back (the wrong patient was opened): it is CANCELED with the DICOM
 * reason for a wrong worklist entry (CID 9300, 110514), so the scheduler can put it right. */
export const unclaimWorkitem = (contextId) => worklistPost(paths.unclaim(contextId), { reason: "wrong-patient" });

/** Finish a claimed encounter: COMPLETED once its photos are in the archive (the service does
 * it by itself when some are still on their way), or given back when none was taken. Returns
 * what the person should know (the worklist server refused the completion, and why), or "". */
export async function closeWorkitem(context, photographed) {
  if (!context?.workitem_uid) return "";
  const path = photographed ? paths.complete(context.context_id) : paths.unclaim(context.context_id);
  try {
    await worklistPost(path, photographed ? {} : { reason: "released" });
    return "";
  } catch (error) {
    const refused = error instanceof ApiError && error.status >= 400 && error.status !== 503 && error.status !== 0;
    return refused ? /** @type {Error} */ (error).message : "";
  }
}

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

/** @type {number | null} */
let worklistTimer = null;

/** The worklist as buttons; `onPick(item)` claims one. Hidden when there is no worklist.
 *
 * While the list is on screen it is asked again every WORKLIST_POLL_MS, so an encounter
 * another device claims leaves this list within seconds (and a refused pick refreshes it at
 * once). Polling rather than a push to the phone: the service, not the phone, holds the
 * worklist's event subscription, and a phone that sleeps, loses the network or comes back
 * through another replica simply asks again. */
export async function renderWorklist(onPick) {
  if (worklistTimer !== null) clearTimeout(worklistTimer);
  const pick = async (item) => {
    try {
      await onPick(item);
    } finally {
      refreshWorklist(pick);
    }
  };
  await refreshWorklist(pick);
}

async function refreshWorklist(pick) {
  if (worklistTimer !== null) clearTimeout(worklistTimer);
  worklistTimer = null;
  const chooser = $("patient-choose");
  if (chooser.hidden) return; // a patient is open: nothing to keep fresh
  try {
    showWorklist(await loadWorklist(), pick);
  } catch {
    clear($("worklist"));
    $("worklist-message").textContent = t("patient.worklist_unavailable");
  }
  worklistTimer = window.setTimeout(() => {
    if (!document.hidden) refreshWorklist(pick);
    else worklistTimer = window.setTimeout(() => refreshWorklist(pick), WORKLIST_POLL_MS);
  }, WORKLIST_POLL_MS);
}

function showWorklist(items, pick) {
  const list = $("worklist");
  const shown = [...list.querySelectorAll("button")].map((b) => b.dataset.uid).join(" ");
  if (shown === items.map((i) => i.uid).join(" ") && shown) return; // unchanged: keep focus
  clear(list);
  $("worklist-message").textContent = items.length ? "" : t("patient.worklist_empty");
  for (const item of items) {
    const who = [item.name, item.birth_date, item.mrn && t("banner.mrn", { mrn: item.mrn })];
    const label = t("patient.worklist_pick", { name: who.filter(Boolean).join(", ") });
    const button = el("button", { type: "button", class: "row", "data-uid": item.uid, onclick: () => pick(item) }, label);
    list.append(el("li", {}, button));
  }
}
