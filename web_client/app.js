// Patient banner from the server-side session: the browser holds no token, only a cookie.
"use strict";

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

function show(text, message) {
  document.getElementById("banner-text").textContent = text;
  document.getElementById("message").textContent = message || "";
}

async function main() {
  try {
    const session = await getJson("/api/v1/session");
    if (!session.context_id) {
      show("No patient selected", "Scan the wristband or pick a patient from the worklist.");
      return;
    }
    const context = await getJson(`/api/v1/contexts/${encodeURIComponent(session.context_id)}`);
    const p = context.patient;
    const name = p.name ? `${p.name.family}, ${p.name.given}` : "(no name)";
    const parts = [name, p.birth_date ? `born ${p.birth_date}` : "birth date unknown", `MRN ${p.id}`];
    if (context.encounter && context.encounter.admission_id) {
      parts.push(`visit ${context.encounter.admission_id}`);
    }
    show(parts.join(" · "));
  } catch (error) {
    show("Not signed in", error.message);
  }
}

main();
