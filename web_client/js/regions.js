// The body map's regions: what each tappable shape sends (a SNOMED CT code of DICOM CID 4029
// "Dermatology Anatomic Site" or CID 4031 "Common Anatomic Region", as GET /api/v1/body-sites/
// {code} knows them). The front view uses the skin of the anterior surfaces, the back view the
// posterior ones, so "forearm" tapped from the back is the dorsal forearm.
//
// Geometry: viewBox 0 0 240 460, the body's midline at x = 120. A `paired` region is drawn
// on the viewer's left and mirrored to the viewer's right; which side of the PATIENT a shape is
// follows from the view (front: the viewer's left is the patient's right). tests/web checks
// every code against the service and the side of every paired shape.

export const WIDTH = 240;
export const HEIGHT = 460;
export const MIDLINE = WIDTH / 2;

const ARM = {
  upper_arm: [[64, 114], [90, 112], [86, 168], [60, 168]],
  elbow: [[60, 168], [86, 168], [84, 190], [57, 190]],
  forearm: [[57, 190], [84, 190], [78, 244], [50, 244]],
  wrist: [[50, 244], [78, 244], [77, 262], [48, 262]],
  hand: [[48, 262], [77, 262], [76, 300], [63, 314], [45, 300]],
};
const LEG = {
  knee: [[90, 322], [117, 322], [116, 352], [91, 352]],
  lower_leg: [[91, 352], [116, 352], [112, 420], [96, 420]],
};
const SHOULDER = [[92, 84], [92, 112], [64, 114], [63, 100], [72, 88]];
const HEAD = { ellipse: [MIDLINE, 40, 25, 31] };
const NECK = [[108, 70], [132, 70], [132, 86], [108, 86]];

/** One region: key (i18n "region.<key>"), view, SNOMED CT code, shape, paired. */
export const REGIONS = [
  // --- front --------------------------------------------------------------------------------
  { key: "face", view: "front", code: "73897004", shape: HEAD },
  { key: "neck_front", view: "front", code: "11584001", shape: { poly: NECK } },
  { key: "shoulder", view: "front", code: "16982005", paired: true, shape: { poly: SHOULDER } },
  { key: "chest", view: "front", code: "244106003", shape: { poly: [[92, 84], [148, 84], [148, 142], [92, 142]] } },
  { key: "breast", view: "front", code: "76752008", paired: true, shape: { ellipse: [105, 122, 13, 12] } },
  { key: "upper_abdomen", view: "front", code: "699935000", shape: { poly: [[92, 142], [148, 142], [148, 176], [92, 176]] } },
  { key: "lower_abdomen", view: "front", code: "699914002", shape: { poly: [[92, 176], [148, 176], [148, 206], [92, 206]] } },
  { key: "thigh", view: "front", code: "61248009", paired: true, shape: { poly: [[90, 226], [110, 230], [118, 242], [117, 322], [90, 322]] } },
  { key: "groin", view: "front", code: "39687006", paired: true, shape: { poly: [[92, 206], [110, 206], [110, 230], [90, 226]] } },
  { key: "genitals", view: "front", code: "60944009", shape: { poly: [[110, 206], [130, 206], [130, 230], [120, 242], [110, 230]] } },
  { key: "upper_arm", view: "front", code: "45981001", paired: true, shape: { poly: ARM.upper_arm } },
  { key: "elbow", view: "front", code: "17957002", paired: true, shape: { poly: ARM.elbow } },
  { key: "forearm", view: "front", code: "70559009", paired: true, shape: { poly: ARM.forearm } },
  { key: "wrist", view: "front", code: "24527008", paired: true, shape: { poly: ARM.wrist } },
  { key: "hand", view: "front", code: "70887009", paired: true, shape: { poly: ARM.hand } },
  { key: "knee", view: "front", code: "181553006", paired: true, shape: { poly: LEG.knee } },
  { key: "lower_leg", view: "front", code: "25763004", paired: true, shape: { poly: LEG.lower_leg } },
  { key: "foot", view: "front", code: "60496002", paired: true, shape: { poly: [[96, 420], [112, 420], [116, 448], [84, 448]] } },
  // --- back ---------------------------------------------------------------------------------
  { key: "scalp", view: "back", code: "43067004", shape: HEAD },
  { key: "neck_back", view: "back", code: "4658004", shape: { poly: NECK } },
  { key: "shoulder", view: "back", code: "16982005", paired: true, shape: { poly: SHOULDER } },
  { key: "upper_back", view: "back", code: "244111001", shape: { poly: [[92, 84], [148, 84], [148, 150], [92, 150]] } },
  { key: "lower_back", view: "back", code: "113182001", shape: { poly: [[92, 150], [148, 150], [148, 192], [92, 192]] } },
  { key: "sacrum", view: "back", code: "54735007", shape: { poly: [[102, 192], [138, 192], [120, 218]] } },
  { key: "buttock", view: "back", code: "22180002", paired: true, shape: { poly: [[90, 192], [102, 192], [119, 217], [119, 242], [90, 238]] } },
  { key: "thigh", view: "back", code: "4578000", paired: true, shape: { poly: [[90, 238], [119, 242], [117, 322], [90, 322]] } },
  { key: "upper_arm", view: "back", code: "72939005", paired: true, shape: { poly: ARM.upper_arm } },
  { key: "elbow", view: "back", code: "181536004", paired: true, shape: { poly: ARM.elbow } },
  { key: "forearm", view: "back", code: "41550009", paired: true, shape: { poly: ARM.forearm } },
  { key: "wrist", view: "back", code: "52876008", paired: true, shape: { poly: ARM.wrist } },
  { key: "hand", view: "back", code: "281642007", paired: true, shape: { poly: ARM.hand } },
  { key: "knee", view: "back", code: "84507004", paired: true, shape: { poly: LEG.knee } },
  { key: "lower_leg", view: "back", code: "47224004", paired: true, shape: { poly: LEG.lower_leg } },
  { key: "heel", view: "back", code: "84607009", paired: true, shape: { poly: [[96, 420], [112, 420], [114, 446], [92, 446]] } },
];

/** The patient's side of a shape drawn on the viewer's left (x < MIDLINE) or right. */
export function sideOf(view, viewerLeft) {
  if (view === "front") return viewerLeft ? "R" : "L"; // facing us: their right is our left
  return viewerLeft ? "L" : "R"; // seen from behind: their left is our left
}

/** The same shape mirrored across the midline (the other side of the body). */
export function mirror(shape) {
  if (shape.ellipse) {
    const [cx, cy, rx, ry] = shape.ellipse;
    return { ellipse: [WIDTH - cx, cy, rx, ry] };
  }
  return { poly: shape.poly.map(([x, y]) => [WIDTH - x, y]) };
}
