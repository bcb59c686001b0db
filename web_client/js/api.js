// The service's /api/v1 routes, same origin only. The browser holds no token: the session is
// an HttpOnly cookie, and every unsafe request carries the CSRF token the session gave us.

import { t } from "../i18n/en.js";

/** @type {string | null} */
let csrfToken = null;

/** @param {string | null | undefined} token */
export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** Headers every unsafe (POST) request needs (contract: X-CSRF-Token when we have one).
 * @returns {Record<string, string>} */
export function unsafeHeaders() {
  return csrfToken ? { "X-CSRF-Token": csrfToken } : {};
}

/** An API answer that is not a success, with a sentence the person holding the phone can act on. */
export class ApiError extends Error {
  /** @param {number} status HTTP status, 0 for no network @param {string} [detail] */
  constructor(status, detail) {
    super(describe(status, detail));
    this.status = status; // 0 = no network
    this.detail = detail || "";
  }

  /** Worth trying again later: no network, a timeout, the service or archive briefly down. */
  get transient() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** Our wording for a status, with the service's own sentence (`detail`) where it has one. */
/** @param {number} status @param {string} [detail] */
export function describe(status, detail = "") {
  if (status === 0) return t("error.network");
  if (status === 401) return t("error.session_expired");
  if (status === 403 && /csrf/i.test(detail)) return t("error.csrf");
  if (status === 403) return t("error.forbidden", { detail });
  if (status === 404) return t("error.unknown_context", { detail });
  if (status === 409) return t("error.conflict", { detail });
  if (status === 413) return t("error.too_large", { detail });
  if (status === 415) return t("error.unsupported", { detail });
  if (status === 422) return t("error.invalid", { detail });
  if (status >= 500) return t("error.server", { status });
  return t("error.generic", { status, detail });
}

/** FastAPI's `detail` is a sentence, or a list of validation errors: make it one sentence. */
export function detailOf(body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(-1)[0] || ""}: ${d.msg}`).join("; ");
  }
  if (detail && typeof detail === "object") return JSON.stringify(detail);
  return "";
}

async function call(path, init = {}) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", cache: "no-store", ...init });
  } catch {
    throw new ApiError(0, "");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, detailOf(body));
  return body;
}

export function getJson(path) {
  return call(path, { headers: { Accept: "application/json" } });
}

export function postJson(path, body) {
  return call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", ...unsafeHeaders() },
    body: JSON.stringify(body ?? {}),
  });
}

/** A multipart POST (a photo): the JSON answer. */
export function postForm(path, form) {
  return call(path, { method: "POST", headers: { Accept: "application/json", ...unsafeHeaders() }, body: form });
}

/** A JSON POST whose answer is binary (the clear image of a blurred photo): a Blob, in memory. */
export async function postForBlob(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", ...unsafeHeaders() },
      body: JSON.stringify(body ?? {}),
    });
  } catch {
    throw new ApiError(0, "");
  }
  if (!response.ok) throw new ApiError(response.status, detailOf(await response.json().catch(() => null)));
  return response.blob();
}

export const paths = {
  session: "/api/v1/session",
  context: (id) => `/api/v1/contexts/${encodeURIComponent(id)}`,
  consent: (id) => `/api/v1/contexts/${encodeURIComponent(id)}/consent`,
  timeline: (id, code, side, lesion = null) => {
    const query = lesion ? new URLSearchParams({ lesion }) : new URLSearchParams({ body_site: code });
    if (!lesion && (side === "L" || side === "R")) query.set("laterality", side);
    return `/api/v1/contexts/${encodeURIComponent(id)}/timeline?${query}`;
  },
  lesions: (id) => `/api/v1/contexts/${encodeURIComponent(id)}/lesions`,
  scan: "/api/v1/scan",
  worklist: "/api/v1/worklist",
  claim: (uid) => `/api/v1/worklist/${encodeURIComponent(uid)}/claim`,
  unclaim: (id) => `/api/v1/worklist/contexts/${encodeURIComponent(id)}/cancel`,
  complete: (id) => `/api/v1/worklist/contexts/${encodeURIComponent(id)}/complete`,
  site: (code) => `/api/v1/body-sites/${encodeURIComponent(code)}`,
  lookupSites: (codes) => `/api/v1/body-sites/lookup?${new URLSearchParams(codes.map((code) => ["code", code]))}`,
  searchSites: (q) => `/api/v1/body-sites?${new URLSearchParams({ q, limit: "8" })}`,
  captures: "/api/v1/captures",
  logout: "/logout",
};
