// Tracing a wound's edge with a finger on the archived photo (issue 16): draw, zoom, undo, and
// move single points. Points are kept in the photo's own pixel coordinates (DICOM SCOORD: the
// image's top-left corner is (0, 0), pixel centres at +0.5), which is what the service
// measures on; the canvas only shows them. The numbers shown while tracing are computed here
// (`measureOutline`, with the service's calibration); the service computes them again from
// the outline and stores its own.

/** @typedef {[number, number]} Pt an image point (x, y) in pixels */
/** @typedef {"draw" | "edit" | "ruler"} Mode */

const MIN_STEP_PX = 3; // screen pixels between two recorded points of a stroke
const GRAB_PX = 22; // how near (screen pixels) a finger must be to move a point
const MAX_ZOOM = 8;

/** The image point `p` mapped by the 3x3 homography `h` (row-major nested arrays).
 * @param {number[][]} h @param {Pt} p @returns {Pt} */
export function applyHomography(h, [x, y]) {
  const w = h[2][0] * x + h[2][1] * y + h[2][2];
  return [(h[0][0] * x + h[0][1] * y + h[0][2]) / w, (h[1][0] * x + h[1][1] * y + h[1][2]) / w];
}

/** The shoelace area of a polygon (any orientation). @param {Pt[]} points */
export function polygonArea(points) {
  let twice = 0;
  for (let i = 0; i < points.length; i++) {
    const [x0, y0] = points[i];
    const [x1, y1] = points[(i + 1) % points.length];
    twice += x0 * y1 - x1 * y0;
  }
  return Math.abs(twice) / 2;
}

/** Whether two segments cross properly (shared end points do not count). */
function crosses(a, b, c, d) {
  const side = (p, q, r) => Math.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]));
  return side(a, b, c) * side(a, b, d) < 0 && side(c, d, a) * side(c, d, b) < 0;
}

/** Whether the closed polygon crosses itself (the service refuses such an outline).
 * @param {Pt[]} points */
export function selfIntersects(points) {
  const n = points.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 2; j < n; j++) {
      if (i === 0 && j === n - 1) continue; // neighbours through the closing edge
      if (crosses(points[i], points[(i + 1) % n], points[j], points[(j + 1) % n])) return true;
    }
  }
  return false;
}

/** Area (cm2), length and width (mm) of an outline, as the service defines them: mapped into
 * the skin plane, length along the plane's +y (the sticker's head arrow), width across it.
 * @param {Pt[]} outline @param {number[][]} imageToPlane
 * @returns {{area_cm2: number, length_mm: number, width_mm: number} | null} */
export function measureOutline(outline, imageToPlane) {
  if (outline.length < 3) return null;
  const plane = outline.map((p) => applyHomography(imageToPlane, p));
  const xs = plane.map((p) => p[0]);
  const ys = plane.map((p) => p[1]);
  return {
    area_cm2: polygonArea(plane) / 100,
    length_mm: Math.max(...ys) - Math.min(...ys),
    width_mm: Math.max(...xs) - Math.min(...xs),
  };
}

/** The calibration of a ruler (two image points `distanceMm` apart), the same matrix the
 * service makes (capture_api.measure.calibration.calibrate_from_ruler).
 * @param {Pt} start @param {Pt} end @param {number} distanceMm @param {[number, number]} size */
export function rulerCalibration(start, end, distanceMm, size) {
  const scale = distanceMm / Math.hypot(end[0] - start[0], end[1] - start[1]);
  const [cx, cy] = [size[0] / 2, size[1] / 2];
  return [
    [scale, 0, -scale * cx],
    [0, -scale, scale * cy],
    [0, 0, 1],
  ];
}

/** The tracing editor on one canvas. `onChange()` is called after every change. */
export class Tracer {
  /** @param {HTMLCanvasElement} canvas @param {() => void} onChange */
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.onChange = onChange;
    /** @type {ImageBitmap | null} */
    this.image = null;
    /** @type {Pt[]} */
    this.points = [];
    /** @type {Pt[][]} earlier states, for undo */
    this.history = [];
    /** @type {Pt[] | null} a proposed outline (snap to edge) shown until accepted or discarded */
    this.proposal = null;
    /** @type {Pt[]} the ruler's two points */
    this.ruler = [];
    /** @type {Mode} */
    this.mode = "draw";
    this.zoom = 1; // 1: the whole photo fits the canvas
    /** @type {Pt} the image point at the canvas centre */
    this.centre = [0, 0];
    /** @type {Map<number, Pt>} active pointers, in canvas pixels */
    this.pointers = new Map();
    /** @type {{kind: string, index?: number, last?: Pt, distance?: number} | null} */
    this.gesture = null;
    for (const type of ["pointerdown", "pointermove", "pointerup", "pointercancel"]) {
      canvas.addEventListener(type, (event) => this.#pointer(/** @type {PointerEvent} */ (event)));
    }
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoomBy(event.deltaY < 0 ? 1.25 : 0.8, this.#canvasPoint(event));
    });
    canvas.style.touchAction = "none"; // our gestures, not the browser's scrolling
  }

  /** Show `image` (the archived photo), fitted, with an empty tracing. @param {ImageBitmap} image */
  setImage(image) {
    this.image = image;
    this.points = [];
    this.history = [];
    this.proposal = null;
    this.ruler = [];
    this.zoom = 1;
    this.centre = [image.width / 2, image.height / 2];
    this.resize();
  }

  /** Size the canvas to its box (CSS width, the photo's aspect ratio) and redraw. */
  resize() {
    if (!this.image) return;
    const width = this.canvas.parentElement?.clientWidth || 360;
    const height = Math.round((width * this.image.height) / this.image.width);
    const ratio = window.devicePixelRatio || 1;
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.draw();
  }

  /** @param {Mode} mode */
  setMode(mode) {
    this.mode = mode;
    this.gesture = null;
  }

  /** Canvas pixels per image pixel. */
  get scale() {
    return this.image ? (this.canvas.width / this.image.width) * this.zoom : 1;
  }

  /** @param {Pt} p image point @returns {Pt} canvas point */
  toCanvas([x, y]) {
    return [(x - this.centre[0]) * this.scale + this.canvas.width / 2, (y - this.centre[1]) * this.scale + this.canvas.height / 2];
  }

  /** @param {Pt} p canvas point @returns {Pt} image point */
  toImage([x, y]) {
    return [(x - this.canvas.width / 2) / this.scale + this.centre[0], (y - this.canvas.height / 2) / this.scale + this.centre[1]];
  }

  /** Zoom by `factor` about the canvas point `at` (its image point stays under it). */
  zoomBy(factor, at = /** @type {Pt} */ ([this.canvas.width / 2, this.canvas.height / 2])) {
    const before = this.toImage(at);
    this.zoom = Math.min(MAX_ZOOM, Math.max(1, this.zoom * factor));
    const after = this.toImage(at);
    this.centre = [this.centre[0] + before[0] - after[0], this.centre[1] + before[1] - after[1]];
    this.#clampCentre();
    this.draw();
  }

  undo() {
    const previous = this.history.pop();
    if (previous === undefined) return;
    this.points = previous;
    this.#changed();
  }

  clear() {
    if (!this.points.length) return;
    this.#remember();
    this.points = [];
    this.#changed();
  }

  /** @param {Pt[] | null} outline */
  propose(outline) {
    this.proposal = outline;
    this.draw();
  }

  acceptProposal() {
    if (!this.proposal) return;
    this.#remember();
    this.points = this.proposal;
    this.proposal = null;
    this.#changed();
  }

  /** The outline to send: image points rounded to 1/100 pixel. @returns {Pt[]} */
  outline() {
    return this.points.map(([x, y]) => [Math.round(x * 100) / 100, Math.round(y * 100) / 100]);
  }

  /** Replace the outline (a snapped one accepted, or a test's). @param {Pt[]} points */
  setOutline(points) {
    this.#remember();
    this.points = points.map(([x, y]) => [x, y]);
    this.#changed();
  }

  #remember() {
    this.history.push(this.points.map(([x, y]) => [x, y]));
  }

  #changed() {
    this.draw();
    this.onChange();
  }

  #clampCentre() {
    if (!this.image) return;
    const halfW = this.image.width / (2 * this.zoom);
    const halfH = this.image.height / (2 * this.zoom);
    this.centre = [
      Math.min(this.image.width - halfW, Math.max(halfW, this.centre[0])),
      Math.min(this.image.height - halfH, Math.max(halfH, this.centre[1])),
    ];
  }

  /** Where a mouse or pointer event is, in canvas pixels. @param {MouseEvent} event @returns {Pt} */
  #canvasPoint(event) {
    const rect = this.canvas.getBoundingClientRect();
    const ratio = this.canvas.width / rect.width;
    return [(event.clientX - rect.left) * ratio, (event.clientY - rect.top) * ratio];
  }

  /** @param {PointerEvent} event */
  #pointer(event) {
    if (!this.image) return;
    event.preventDefault();
    const at = this.#canvasPoint(event);
    if (event.type === "pointerdown") {
      try {
        this.canvas.setPointerCapture?.(event.pointerId); // keep the stroke when the finger leaves the canvas
      } catch {
        // a pointer the browser does not track (a synthetic event): the stroke works without
      }
      this.pointers.set(event.pointerId, at);
      if (this.pointers.size === 2) this.#startPinch();
      else if (this.pointers.size === 1) this.#start(at);
      return;
    }
    if (!this.pointers.has(event.pointerId)) return;
    if (event.type === "pointermove") {
      this.pointers.set(event.pointerId, at);
      this.#move(at);
      return;
    }
    this.pointers.delete(event.pointerId); // up or cancel
    if (this.pointers.size === 0) this.#end();
  }

  /** @param {Pt} at */
  #start(at) {
    if (this.mode === "ruler") {
      this.ruler = this.ruler.length >= 2 ? [this.toImage(at)] : [...this.ruler, this.toImage(at)];
      this.gesture = null;
      this.#changed();
      return;
    }
    if (this.mode === "edit") {
      const index = this.#nearest(at);
      this.gesture = index === null ? { kind: "pan", last: at } : { kind: "drag", index };
      if (index !== null) this.#remember();
      return;
    }
    this.#remember(); // a new stroke continues the outline: lift the finger, go on tracing
    this.points.push(this.toImage(at));
    this.gesture = { kind: "stroke", last: at };
    this.draw();
  }

  /** @param {Pt} at */
  #move(at) {
    const gesture = this.gesture;
    if (!gesture) return;
    if (gesture.kind === "pinch") return this.#pinch();
    if (gesture.kind === "stroke" && gesture.last) {
      if (Math.hypot(at[0] - gesture.last[0], at[1] - gesture.last[1]) < MIN_STEP_PX) return;
      this.points.push(this.toImage(at));
      gesture.last = at;
      this.draw();
    } else if (gesture.kind === "drag" && gesture.index !== undefined) {
      this.points[gesture.index] = this.toImage(at);
      this.draw();
    } else if (gesture.kind === "pan" && gesture.last) {
      this.centre = [this.centre[0] - (at[0] - gesture.last[0]) / this.scale, this.centre[1] - (at[1] - gesture.last[1]) / this.scale];
      gesture.last = at;
      this.#clampCentre();
      this.draw();
    }
  }

  #end() {
    const kind = this.gesture?.kind;
    this.gesture = null;
    if (kind === "stroke" || kind === "drag") this.#changed();
  }

  #startPinch() {
    if (this.gesture?.kind === "stroke") this.undo(); // the first finger's start was a pinch
    const [a, b] = [...this.pointers.values()];
    this.gesture = { kind: "pinch", distance: Math.hypot(a[0] - b[0], a[1] - b[1]), last: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
  }

  #pinch() {
    const gesture = this.gesture;
    if (!gesture || this.pointers.size < 2 || !gesture.distance || !gesture.last) return;
    const [a, b] = [...this.pointers.values()];
    const distance = Math.hypot(a[0] - b[0], a[1] - b[1]);
    /** @type {Pt} */
    const middle = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    this.centre = [this.centre[0] - (middle[0] - gesture.last[0]) / this.scale, this.centre[1] - (middle[1] - gesture.last[1]) / this.scale];
    this.zoomBy(distance / gesture.distance, middle);
    gesture.distance = distance;
    gesture.last = middle;
  }

  /** The index of the outline point nearest `at` (canvas pixels), if near enough. */
  #nearest(at) {
    const grab = GRAB_PX * (window.devicePixelRatio || 1);
    let best = null;
    let bestDistance = grab;
    this.points.forEach((p, index) => {
      const [x, y] = this.toCanvas(p);
      const distance = Math.hypot(x - at[0], y - at[1]);
      if (distance < bestDistance) [best, bestDistance] = [index, distance];
    });
    return best;
  }

  draw() {
    const context = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext("2d"));
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.image) return;
    const [x0, y0] = this.toCanvas([0, 0]);
    context.drawImage(this.image, x0, y0, this.image.width * this.scale, this.image.height * this.scale);
    const line = Math.max(1.5, 1.5 * (window.devicePixelRatio || 1));
    this.#path(context, this.points, "#ffd400", line, true);
    if (this.proposal) this.#path(context, this.proposal, "#00e5ff", line, false);
    if (this.mode === "edit") {
      context.fillStyle = "#ffd400";
      for (const p of this.points) {
        const [x, y] = this.toCanvas(p);
        context.fillRect(x - line * 2, y - line * 2, line * 4, line * 4);
      }
    }
    if (this.ruler.length) this.#path(context, this.ruler, "#ff4081", line, false, false);
  }

  #path(context, points, colour, width, dashedClose, closed = true) {
    if (!points.length) return;
    context.strokeStyle = colour;
    context.lineWidth = width;
    context.beginPath();
    points.forEach((p, index) => {
      const [x, y] = this.toCanvas(p);
      if (index === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
    if (closed && points.length > 2) {
      const [xa, ya] = this.toCanvas(points[points.length - 1]);
      const [xb, yb] = this.toCanvas(points[0]);
      context.setLineDash(dashedClose ? [width * 3, width * 3] : []);
      context.beginPath();
      context.moveTo(xa, ya);
      context.lineTo(xb, yb);
      context.stroke();
      context.setLineDash([]);
    }
  }
}
