// Coded body sites as the service describes them (GET /api/v1/body-sites/...), kept in memory
// for this page. The service gives every site and side its one display name (the same words
// are in the DICOM Series Description and the FHIR Media): the phone shows those names on the
// map, in the search, on the details, camera, review and sending screens, and never makes up
// its own.

import { getJson, paths } from "./api.js";

const known = new Map(); // SNOMED CT code -> the service's site (BodySiteOut)

/** Keep a site the service sent (from a lookup or a search hit). */
export function remember(site) {
  known.set(site.code, site);
  return site;
}

/** Ask the service for the sites of `codes` not known yet, in one request. */
export async function loadSites(codes) {
  const missing = [...new Set(codes)].filter((code) => !known.has(code));
  if (missing.length === 0) return;
  for (const site of await getJson(paths.lookupSites(missing))) remember(site);
}

/** The display name of a site (the service's answer) on `side` ("L", "R", "B" or none). */
export function siteName(site, side) {
  return (side && site.names?.[side]) || site.name;
}

/** The display name of `code` on `side`, or null while the service has not described it. */
export function nameOf(code, side) {
  const site = known.get(code);
  return site ? siteName(site, side) : null;
}
