// Every string the phone shows, in one place: translate this file (same keys) for another
// language. `{name}` placeholders are filled by t(); nothing here is HTML.

export const LANG = "en";

export const STRINGS = {
  "app.title": "capture",
  "app.loading": "Loading the patient…",
  "app.offline": "Offline: photos stay encrypted on this phone and are sent when the network returns.",
  "app.online": "Back online: sending.",
  "app.leave_warning": "Photos are still waiting to be sent. If you leave, they are deleted.",

  // patient banner and patient choice
  "banner.label": "Patient",
  "banner.none": "No patient selected",
  "banner.name_unknown": "(no name)",
  "banner.born": "born {date}",
  "banner.born_unknown": "birth date unknown",
  "banner.age": "{years} y",
  "banner.mrn": "MRN {mrn}",
  "banner.visit": "visit {id}",
  "banner.sex.M": "male",
  "banner.sex.F": "female",
  "banner.sex.O": "other",
  "patient.heading": "Patient",
  "patient.not_signed_in": "Not signed in: open capture from the patient's chart in the EHR.",
  "patient.unreachable": "capture cannot be reached. Check the network, then reload.",
  "patient.choose": "No patient is open. Scan the wristband or pick today's patient from the worklist.",
  "patient.scan_label": "Wristband or MRN",
  "patient.scan_hint": "Scan the wristband barcode, or type the MRN.",
  "patient.scan_button": "Find patient",
  "patient.worklist_heading": "Today's worklist",
  "patient.worklist_empty": "Nobody is scheduled for this station today.",
  "patient.worklist_unavailable": "No worklist here: scan the wristband instead.",
  "patient.worklist_pick": "Photograph {name}",
  "patient.confirm": "Is this the patient in front of you? Check the wristband.",
  "patient.confirm_yes": "Yes, this patient",
  "patient.confirm_no": "No, another patient",
  "patient.start": "Start photographing",
  "patient.leftovers": {
    one: "1 photo from an earlier session was never sent and has been deleted from this phone. Take it again.",
    other: "{count} photos from an earlier session were never sent and have been deleted from this phone. Take them again.",
  },

  // body site
  "site.heading": "Where on the body?",
  "site.search_label": "Search a body site",
  "site.search_hint": "e.g. left forearm, sacrum, heel",
  "site.search_none": "No body site matches “{q}”.",
  "site.search_error": "The body site search failed: {detail}",
  "site.recent": "Recent sites",
  "site.map_label": "Body map: tap where the photo is",
  "site.front": "Front",
  "site.back": "Back",
  "site.view_front": "seen from the front",
  "site.view_back": "seen from the back",
  "site.unknown": "This body site is not known to the service ({code}).",

  // regions on the map (the code they send is in js/regions.js)
  "region.face": "face",
  "region.scalp": "scalp",
  "region.neck_front": "front of neck",
  "region.neck_back": "back of neck",
  "region.shoulder": "shoulder",
  "region.chest": "chest",
  "region.breast": "breast",
  "region.upper_abdomen": "upper abdomen",
  "region.lower_abdomen": "lower abdomen",
  "region.groin": "groin",
  "region.genitals": "genitals",
  "region.upper_back": "upper back",
  "region.lower_back": "lower back",
  "region.sacrum": "sacrum",
  "region.buttock": "buttock",
  "region.upper_arm": "upper arm",
  "region.elbow": "elbow",
  "region.forearm": "forearm",
  "region.wrist": "wrist",
  "region.hand": "hand",
  "region.thigh": "thigh",
  "region.knee": "knee",
  "region.lower_leg": "lower leg",
  "region.foot": "foot",
  "region.heel": "heel",
  "region.label": "{side}{name}, {view}",

  // laterality
  "side.L": "Left",
  "side.R": "Right",
  "side.B": "Both sides",
  "side.prefix.L": "left ",
  "side.prefix.R": "right ",
  "side.prefix.B": "both sides, ",
  "side.heading": "Side",
  "side.needed": "Choose the side: this site is on one side of the body.",

  // details: sensitivity and priors
  "details.heading": "Site and privacy",
  "details.change_site": "Change site",
  "sensitivity.heading": "Who may see these photos",
  "sensitivity.normal": "Normal",
  "sensitivity.restricted": "Sensitive (restricted)",
  "sensitivity.very-restricted": "Very sensitive",
  "sensitivity.suggested": "Marked sensitive because of the body site ({why}). Change it only if you are sure.",
  "sensitivity.category.SEX": "genital area",
  "sensitivity.category.BREAST": "breast",
  "sensitivity.category.FACE": "identifiable face",
  "sensitivity.category.SDV": "abuse or violence",
  "sensitivity.category.ADOL": "minor",
  "sensitivity.category.other": "sensitive site",
  "priors.heading": "Earlier photos of this site",
  "priors.none": "No earlier photos of this site.",
  "priors.error": "Earlier photos cannot be shown: {detail}",
  "priors.blurred": "Sensitive photo, blurred",
  "priors.item": "Photo of {date}",
  "priors.date_unknown": "unknown date",
  "details.take": "Take photos",

  // camera
  "camera.heading": "Photograph",
  "camera.take": "Take a photo",
  "camera.live": "Live camera with comparison",
  "camera.shutter": "Take photo",
  "camera.stop": "Close live camera",
  "camera.overlay": "Show earlier photo on top",
  "camera.overlay_opacity": "Earlier photo transparency",
  "camera.no_camera": "The live camera is not available here ({detail}). Use “Take a photo”.",
  "camera.count": { one: "1 photo taken", other: "{count} photos taken" },
  "camera.review": "Review and send",
  "camera.not_a_photo": "“{name}” is a {kind} file. capture archives camera photos (JPEG or HEIC): take the photo with the camera.",
  "camera.heic_preview": "HEIC photo: no preview on this device. It is converted on the server.",

  // review
  "review.heading": "Review",
  "review.empty": "No photos yet.",
  "review.photo": "Photo {n}",
  "review.note": "Note (optional)",
  "review.view": "View (optional)",
  "review.view_hint": "close-up, overview, with ruler…",
  "review.views": ["close-up", "overview", "with ruler", "after cleaning", "before dressing"],
  "review.retake": "Retake",
  "review.delete": "Delete",
  "review.send": { one: "Send 1 photo", other: "Send {count} photos" },
  "review.more": "Take more",

  // sending
  "send.heading": "Sending to the archive",
  "send.state.sealed": "Encrypted on this phone, waiting to send",
  "send.state.uploading": "Uploading {percent}%",
  "send.state.offline": "Waiting for the network",
  "send.state.retrying": "Service not reachable, trying again in {seconds} s",
  "send.state.consent": "Waiting for consent",
  "send.state.received": "Received by capture",
  "send.state.encoded": "Converted to DICOM, sending to the archive",
  "send.state.stored": "In the archive, being checked",
  "send.state.verified": "In the archive (verified)",
  "send.state.failed": "Not sent: {reason}",
  "send.archive_retrying": "Safe with capture. The archive is not answering yet; capture keeps trying, you can go on.",
  "send.another_site": "Photograph another site",
  "send.more_same": "More photos of this site",
  "send.finish": "Finish and sign out",
  "send.all_done": "All photos are in the archive. Nothing is left on this phone.",
  "send.remove": "Remove",

  // errors (detail = the service's own sentence)
  "error.session_expired": "Your session has ended: open capture again from the patient's chart in the EHR. Unsent photos on this phone were deleted.",
  "error.forbidden": "Not allowed: {detail}",
  "error.csrf": "This page is out of date: reload capture.",
  "error.unknown_context": "This patient is no longer open here: open capture again from the chart. ({detail})",
  "error.conflict": "This photo was already sent as a different photo: take it again. ({detail})",
  "error.too_large": "The photo is too large for the service ({detail}). Take it again at a lower resolution.",
  "error.unsupported": "{detail}",
  "error.invalid": "{detail}",
  "error.server": "The service had a problem ({status}); capture keeps trying.",
  "error.network": "No network; capture keeps trying.",
  "error.generic": "Something went wrong ({status}): {detail}",

  // consent (asked when the service answers 428)
  "consent.heading": "Consent for clinical photography",
  "consent.explain": "This service needs the patient's consent to be recorded before photos are stored.",
  "consent.by": "Consent given by",
  "consent.by.patient": "the patient",
  "consent.by.guardian": "a parent or legal guardian",
  "consent.by.other": "another authorised representative",
  "consent.name": "Their name",
  "consent.needs_name": "Give the name of the person who consented.",
  "consent.method": "How",
  "consent.method.verbal": "spoken",
  "consent.method.written": "written (signed form)",
  "consent.agree": "The patient (or their representative) agreed to these photos for their care and record.",
  "consent.submit": "Record consent and send",
  "consent.cancel": "Do not send",
  "consent.declined": "no consent was recorded, so the photo was deleted from this phone",
  "consent.needs_agree": "Tick the box to confirm consent, or choose “Do not send”.",

  // finishing
  "finish.confirm": "Some photos have not been sent yet. Sign out and delete them from this phone?",
  "finish.done": "Signed out. Nothing from this session is left on this phone.",
  "finish.offline": "Nothing from this session is left on this phone. capture could not be reached to sign out: the session ends by itself when idle.",
};

const plurals = new Intl.PluralRules(LANG);

/** The text for `key`, with `{name}` placeholders filled from `params`. A string given as
 * {one, other, ...} (Intl.PluralRules categories) is chosen by `params.count`. */
export function t(key, params = {}) {
  let text = STRINGS[key];
  if (text === undefined) return key; // visible, so a missing string is noticed
  if (Array.isArray(text)) return text;
  if (typeof text === "object") text = text[plurals.select(params.count ?? 0)] ?? text.other;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}
