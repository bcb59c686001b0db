// The body map's regions: what each tappable shape sends (a SNOMED CT code of DICOM CID 4029
// "Dermatology Anatomic Site" or CID 4031 "Common Anatomic Region", as GET /api/v1/body-sites/
// {code} knows them; docs/conformance.md lists the source of every code). Seven views: the
// whole body from the front and the back, and close-ups of the face, the hands (palms, backs)
// and the feet (tops, soles). The front view uses the skin of the anterior surfaces, the back
// view the posterior ones, so "forearm" tapped from the back is the dorsal forearm.
//
// Geometry: every view is 240 units wide, its midline at x = 120. A `paired` region is drawn on
// the viewer's LEFT and mirrored to the viewer's right; which side of the PATIENT a shape is
// follows from the view (`VIEWS[view].facing`): a view that faces us (front, face, palms, tops
// of the feet) has the patient's right on our left; one seen from behind (back, backs of the
// hands, soles) has their left on our left. Hands are drawn in the anatomical position (thumbs
// out), feet with the big toe in (medial). tests/web checks every code against the service and
// the side of every shape against where it is on screen.

export const WIDTH = 240;
export const MIDLINE = WIDTH / 2;

/** The views: their height (units), whether they face the viewer, and how they are named.
 * @type {Record<string, {height: number, facing: boolean, group: "body" | "zoom"}>} */
export const VIEWS = {
  front: { height: 460, facing: true, group: "body" },
  back: { height: 460, facing: false, group: "body" },
  head: { height: 280, facing: true, group: "zoom" },
  "hand-palmar": { height: 260, facing: true, group: "zoom" },
  "hand-dorsal": { height: 260, facing: false, group: "zoom" },
  "foot-dorsal": { height: 270, facing: true, group: "zoom" },
  "foot-plantar": { height: 270, facing: false, group: "zoom" },
};
/** The whole-body views' height (kept for older callers). */
export const HEIGHT = VIEWS.front.height;

/** Points on an ellipse from angle a0 to a1 (degrees, y down: -90 is the top). */
function arc(cx, cy, rx, ry, a0, a1, steps = 8) {
  const out = [];
  for (let i = 0; i <= steps; i += 1) {
    const t = ((a0 + ((a1 - a0) * i) / steps) * Math.PI) / 180;
    out.push([Math.round((cx + rx * Math.cos(t)) * 10) / 10, Math.round((cy + ry * Math.sin(t)) * 10) / 10]);
  }
  return out;
}

/** A closed outline through `points`, its corners rounded (Catmull-Rom to cubic Bezier). */
function smooth(points) {
  const n = points.length;
  let d = `M${points[0][0]} ${points[0][1]}`;
  for (let i = 0; i < n; i += 1) {
    const [p0, p1, p2, p3] = [points[(i - 1 + n) % n], points[i], points[(i + 1) % n], points[(i + 2) % n]];
    const c1 = [p1[0] + (p2[0] - p0[0]) / 6, p1[1] + (p2[1] - p0[1]) / 6];
    const c2 = [p2[0] - (p3[0] - p1[0]) / 6, p2[1] - (p3[1] - p1[1]) / 6];
    d += `C${c1.map(round1).join(" ")} ${c2.map(round1).join(" ")} ${p2[0]} ${p2[1]}`;
  }
  return `${d}Z`;
}
const round1 = (v) => Math.round(v * 10) / 10;

/** A shape from straight-edged outlines (regions that tile share their corners). */
const poly = (...outlines) => ({ d: outlines.map((pts) => `M${pts.map((p) => p.join(" ")).join("L")}Z`).join("") });
/** A shape from rounded outlines (organs drawn on their own: eyelids, lips, ears, fingers). */
const round = (...outlines) => ({ d: outlines.map(smooth).join("") });

// --- the whole body, front and back (viewer's left half; paired parts mirrored) -----------------
const HEAD = round(arc(MIDLINE, 40, 23, 29, 0, 330, 11));
const NECK = poly([[109, 64], [131, 64], [133, 78], [137, 87], [103, 87], [107, 78]]);
const SHOULDER = round([[103, 87], [95, 90], [93, 104], [92, 116], [64, 119], [62, 106], [70, 94], [84, 88]]);
const TORSO_TOP = [[103, 87], [137, 87], [146, 91], [148, 104], [148, 120]];
const ARM = {
  upper_arm: round([[64, 119], [90, 116], [87, 142], [84, 166], [60, 167], [60, 142]]),
  elbow: poly([[60, 167], [84, 166], [82, 190], [57, 190]]),
  forearm: round([[57, 190], [82, 190], [79, 214], [74, 242], [53, 242], [54, 214]]),
  wrist: poly([[53, 242], [74, 242], [73, 262], [51, 262]]),
  hand: round([[51, 262], [73, 262], [75, 278], [73, 298], [67, 312], [59, 316], [52, 308], [50, 296], [44, 290], [40, 278], [44, 272], [49, 274]]),
};
const LEG = {
  thigh: round([[90, 226], [110, 230], [118, 242], [117, 280], [115, 322], [92, 322], [89, 282], [88, 246]]),
  knee: round([[92, 322], [115, 322], [114, 352], [93, 352]]),
  lower_leg: round([[93, 352], [114, 352], [114, 372], [111, 398], [109, 420], [98, 420], [95, 398], [91, 372]]),
  foot: round([[98, 420], [109, 420], [112, 434], [116, 447], [108, 452], [88, 450], [90, 440], [96, 432]]),
  heel: round([[97, 420], [110, 420], [113, 436], [110, 448], [95, 448], [93, 436]]),
};

// --- the face (head view): an oval of 66 x 88 units centred at (120, 130) --------------------------
const FACE = [MIDLINE, 130, 66, 88];
const face = (a0, a1, steps) => arc(...FACE, a0, a1, steps);
const EAR = round([[55, 112], [47, 106], [39, 112], [36, 128], [38, 146], [45, 160], [53, 162], [56, 148]]);
const EYE_UPPER = round([[74, 130], [78, 118], [91, 112], [104, 116], [110, 130], [92, 126]]);
const EYE_LOWER = round([[74, 130], [92, 134], [110, 130], [105, 142], [92, 148], [79, 142]]);

// --- a hand: palm at x 40-98, fingers up, thumb out to the left (viewer's left hand) ----------------
const FINGERS = round(
  [[42, 122], [42, 64], [48, 54], [54, 64], [55, 122]],
  [[57, 122], [57, 54], [63, 44], [69, 54], [70, 122]],
  [[72, 122], [72, 60], [78, 50], [84, 60], [85, 122]],
  [[87, 124], [87, 78], [92, 70], [97, 78], [98, 128]],
);
const THUMB = round([[41, 150], [41, 190], [32, 182], [22, 164], [15, 144], [16, 130], [25, 127], [33, 138]]);
const PALM = poly([[40, 122], [98, 122], [99, 160], [95, 196], [87, 214], [51, 214], [43, 198], [40, 160]]);
const HAND_WRIST = poly([[51, 214], [87, 214], [87, 250], [51, 250]]);

// --- a foot: toes up, heel down, big toe in (toward the midline) --------------------------------------
const TOES = round(
  [[82, 88], [82, 52], [91, 40], [100, 50], [101, 92]],
  [[70, 88], [70, 58], [75, 50], [80, 58], [80, 88]],
  [[60, 92], [60, 66], [64, 59], [68, 66], [68, 90]],
  [[51, 96], [51, 74], [55, 68], [59, 74], [59, 94]],
  [[44, 102], [43, 86], [46, 80], [50, 86], [50, 100]],
);
const FOOT_TOP = poly([[44, 102], [51, 96], [60, 92], [70, 88], [82, 88], [101, 92], [104, 126], [100, 170], [95, 212], [88, 236], [62, 236], [56, 212], [50, 168], [46, 130]]);
const SOLE_LATERAL = poly([[44, 102], [51, 96], [60, 92], [70, 88], [75, 88], [75, 196], [56, 196], [50, 168], [46, 130]]);
const SOLE_MEDIAL = poly([[75, 88], [82, 88], [101, 92], [104, 126], [100, 170], [96, 196], [75, 196]]);
const HEEL = round([[56, 196], [96, 196], [94, 222], [86, 240], [64, 240], [57, 222]]);

/** One region: key (i18n "region.<key>"), view, SNOMED CT code, shape ({d}: an SVG path in the
 * view's units), paired (drawn on the viewer's left, mirrored to the right). Drawn in order:
 * a later region lies on an earlier one (the face's parts on the face). */
export const REGIONS = [
  // --- front --------------------------------------------------------------------------------
  { key: "face", view: "front", code: "73897004", shape: HEAD },
  { key: "neck_front", view: "front", code: "11584001", shape: NECK },
  { key: "shoulder", view: "front", code: "16982005", paired: true, shape: SHOULDER },
  { key: "chest", view: "front", code: "244106003", shape: poly([...TORSO_TOP, [147, 142], [93, 142], [92, 120], [92, 104], [94, 91]]) },
  { key: "breast", view: "front", code: "76752008", paired: true, shape: round(arc(106, 123, 12, 11, 0, 315, 7)) },
  { key: "upper_abdomen", view: "front", code: "699935000", shape: poly([[93, 142], [147, 142], [146, 176], [94, 176]]) },
  { key: "lower_abdomen", view: "front", code: "699914002", shape: poly([[94, 176], [146, 176], [148, 206], [92, 206]]) },
  { key: "groin", view: "front", code: "39687006", paired: true, shape: poly([[92, 206], [110, 206], [110, 230], [90, 226]]) },
  { key: "genitals", view: "front", code: "60944009", shape: poly([[110, 206], [130, 206], [130, 230], [120, 242], [110, 230]]) },
  { key: "thigh", view: "front", code: "61248009", paired: true, shape: LEG.thigh },
  { key: "upper_arm", view: "front", code: "45981001", paired: true, shape: ARM.upper_arm },
  { key: "elbow", view: "front", code: "17957002", paired: true, shape: ARM.elbow },
  { key: "forearm", view: "front", code: "70559009", paired: true, shape: ARM.forearm },
  { key: "wrist", view: "front", code: "24527008", paired: true, shape: ARM.wrist },
  { key: "hand", view: "front", code: "70887009", paired: true, shape: ARM.hand },
  { key: "knee", view: "front", code: "181553006", paired: true, shape: LEG.knee },
  { key: "lower_leg", view: "front", code: "25763004", paired: true, shape: LEG.lower_leg },
  { key: "foot", view: "front", code: "60496002", paired: true, shape: LEG.foot },
  // --- back ---------------------------------------------------------------------------------
  { key: "scalp", view: "back", code: "43067004", shape: HEAD },
  { key: "neck_back", view: "back", code: "4658004", shape: NECK },
  { key: "shoulder", view: "back", code: "16982005", paired: true, shape: SHOULDER },
  { key: "upper_back", view: "back", code: "244111001", shape: poly([...TORSO_TOP, [148, 150], [92, 150], [92, 120], [92, 104], [94, 91]]) },
  { key: "lower_back", view: "back", code: "113182001", shape: poly([[92, 150], [148, 150], [146, 170], [148, 192], [92, 192], [94, 170]]) },
  { key: "sacrum", view: "back", code: "54735007", shape: poly([[102, 192], [138, 192], [120, 218]]) },
  { key: "buttock", view: "back", code: "22180002", paired: true, shape: round([[91, 192], [102, 192], [119, 217], [119, 242], [104, 246], [92, 238], [88, 216]]) },
  { key: "thigh", view: "back", code: "4578000", paired: true, shape: round([[92, 238], [104, 246], [119, 242], [117, 280], [115, 322], [92, 322], [89, 282], [88, 250]]) },
  { key: "upper_arm", view: "back", code: "72939005", paired: true, shape: ARM.upper_arm },
  { key: "elbow", view: "back", code: "181536004", paired: true, shape: ARM.elbow },
  { key: "forearm", view: "back", code: "41550009", paired: true, shape: ARM.forearm },
  { key: "wrist", view: "back", code: "52876008", paired: true, shape: ARM.wrist },
  { key: "hand", view: "back", code: "281642007", paired: true, shape: ARM.hand },
  { key: "knee", view: "back", code: "84507004", paired: true, shape: LEG.knee },
  { key: "lower_leg", view: "back", code: "47224004", paired: true, shape: LEG.lower_leg },
  { key: "heel", view: "back", code: "84607009", paired: true, shape: LEG.heel },
  // --- the face, from the front ---------------------------------------------------------------
  { key: "neck_side", view: "head", code: "5272005", paired: true, shape: poly([[78, 196], [92, 210], [90, 240], [84, 270], [52, 270], [66, 244], [72, 218]]) },
  { key: "neck_front", view: "head", code: "11584001", shape: poly([[92, 210], [106, 215], [120, 218], [134, 215], [148, 210], [150, 240], [156, 270], [84, 270], [90, 240]]) },
  { key: "ear", view: "head", code: "1902009", paired: true, shape: EAR },
  { key: "face", view: "head", code: "73897004", shape: round(face(0, 345, 23)) },
  { key: "scalp", view: "head", code: "43067004", shape: poly([...face(-160, -20, 10), [164, 82], [142, 72], [120, 70], [98, 72], [76, 82]]) },
  { key: "forehead", view: "head", code: "68698007", shape: poly([[76, 82], [98, 72], [120, 70], [142, 72], [164, 82], [160, 110], [140, 106], [120, 105], [100, 106], [80, 110]]) },
  { key: "temple", view: "head", code: "16621002", paired: true, shape: poly([...face(-160, -175, 3), [56, 126], [74, 126], [80, 110], [76, 82]]) },
  { key: "eyelid_upper", view: "head", code: "41310005", paired: true, shape: EYE_UPPER },
  { key: "eyelid_lower", view: "head", code: "40069000", paired: true, shape: EYE_LOWER },
  { key: "nose", view: "head", code: "113179006", shape: round([[111, 118], [129, 118], [132, 148], [140, 160], [130, 168], [120, 165], [110, 168], [100, 160], [108, 148]]) },
  { key: "cheek", view: "head", code: "36141000", paired: true, shape: poly([[56, 126], [74, 130], [79, 142], [92, 149], [104, 150], [100, 162], [98, 176], [92, 188], [78, 195], [68, 184], [61, 170], [58, 160], [55, 144]]) },
  { key: "lip_upper", view: "head", code: "16251004", shape: round([[102, 172], [112, 168], [120, 170], [128, 168], [138, 172], [146, 182], [120, 187], [94, 182]]) },
  { key: "lip_lower", view: "head", code: "66934001", shape: round([[94, 183], [120, 188], [146, 183], [138, 194], [120, 201], [102, 194]]) },
  { key: "chin", view: "head", code: "23747009", shape: round([[100, 198], [120, 204], [140, 198], [144, 208], [134, 216], [120, 219], [106, 216], [96, 208]]) },
  // --- the hands: palms (facing us: the patient's right hand on our left) ----------------------
  { key: "hand_palmar_wrist", view: "hand-palmar", code: "24527008", paired: true, shape: HAND_WRIST },
  { key: "palm", view: "hand-palmar", code: "70887009", paired: true, shape: PALM },
  { key: "thenar", view: "hand-palmar", code: "26795005", paired: true, shape: round([[42, 150], [58, 156], [64, 178], [60, 202], [50, 210], [43, 196], [41, 176]]) },
  { key: "hypothenar", view: "hand-palmar", code: "89784008", paired: true, shape: round([[82, 160], [98, 160], [96, 190], [88, 210], [76, 206], [78, 184]]) },
  { key: "fingers", view: "hand-palmar", code: "244169007", paired: true, shape: FINGERS },
  { key: "thumb", view: "hand-palmar", code: "76505004", paired: true, shape: THUMB },
  // --- the hands: backs (seen from behind: the patient's left hand on our left) ----------------
  { key: "hand_dorsal_wrist", view: "hand-dorsal", code: "52876008", paired: true, shape: HAND_WRIST },
  { key: "hand_back", view: "hand-dorsal", code: "281642007", paired: true, shape: PALM },
  { key: "fingers", view: "hand-dorsal", code: "244169007", paired: true, shape: FINGERS },
  { key: "thumb", view: "hand-dorsal", code: "76505004", paired: true, shape: THUMB },
  // --- the feet: tops (facing us: the patient's right foot on our left) ------------------------
  { key: "ankle_lateral", view: "foot-dorsal", code: "181564009", paired: true, shape: poly([[60, 236], [75, 236], [75, 262], [58, 262]]) },
  { key: "ankle_medial", view: "foot-dorsal", code: "181563003", paired: true, shape: poly([[75, 236], [90, 236], [92, 262], [75, 262]]) },
  { key: "foot_top", view: "foot-dorsal", code: "60496002", paired: true, shape: FOOT_TOP },
  { key: "toes", view: "foot-dorsal", code: "52034004", paired: true, shape: TOES },
  // --- the feet: soles (seen from behind: the patient's left foot on our left) -----------------
  { key: "sole_lateral", view: "foot-plantar", code: "35739000", paired: true, shape: SOLE_LATERAL },
  { key: "sole_medial", view: "foot-plantar", code: "52953006", paired: true, shape: SOLE_MEDIAL },
  { key: "heel", view: "foot-plantar", code: "84607009", paired: true, shape: HEEL },
  { key: "toes", view: "foot-plantar", code: "52034004", paired: true, shape: TOES },
];

/** Drawings that are not tappable (eyes, brows, mouth line, nails): they make a part easy to
 * recognise at phone size. Paired ones are mirrored like the regions. */
export const DECOR = {
  head: [
    { d: smooth(arc(92, 130, 9, 5, 0, 315, 7)), kind: "eye", paired: true },
    { d: "M74 108Q92 100 110 108", kind: "brow", paired: true },
    { d: "M100 184Q120 190 140 184", kind: "line" },
    { d: "M112 160Q116 164 120 162M128 160Q124 164 120 162", kind: "line" },
  ],
  "hand-dorsal": [
    { d: [[48, 60], [63, 50], [78, 56], [92, 76]].map(([x, y]) => `M${x - 4} ${y + 10}h8v8h-8z`).join(""), kind: "nail", paired: true },
    { d: "M21 138h7v8h-7z", kind: "nail", paired: true },
  ],
  "foot-dorsal": [
    { d: "M86 50h10v9h-10z", kind: "nail", paired: true },
  ],
};

/** The patient's side of a shape drawn on the viewer's left (`viewerLeft`) or right. */
export function sideOf(view, viewerLeft) {
  const facing = VIEWS[view]?.facing ?? view === "front";
  if (facing) return viewerLeft ? "R" : "L"; // facing us: their right is our left
  return viewerLeft ? "L" : "R"; // seen from behind: their left is our left
}

/** The SVG transform that mirrors a shape across the midline (the other side of the body). */
export const MIRROR = `translate(${WIDTH} 0) scale(-1 1)`;
