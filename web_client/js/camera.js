// Taking photos: the phone's own camera through a capture file input (best quality, and the
// photo does not go to the gallery), or a live preview in the page with the latest earlier
// photo laid over it, semi-transparent, so the new photo matches its distance and angle.

import { t } from "../i18n/en.js";
import { $, notice, say } from "./dom.js";
import { SENDABLE, sniff } from "./sniff.js";

const JPEG_QUALITY = 0.92;

/** null when a file of this kind (js/sniff.js) can be sent, else the sentence that says why
 * not and what to do: its content decides, not its name ("notes.jpg" can be text). */
export function refusal(name, kind) {
  if (SENDABLE.has(kind)) return null;
  if (kind === "empty") return t("camera.empty_file", { name });
  if (kind === "unknown") return t("camera.not_a_photo_unknown", { name });
  return t("camera.not_a_photo", { name, kind: t(`file.kind.${kind}`) });
}

export class Camera {
  /** `onPhoto({blob, filename})` for every photo taken. */
  constructor(onPhoto) {
    this.onPhoto = onPhoto;
    /** @type {MediaStream | null} */
    this.stream = null;
    $("photo-input").addEventListener("change", (event) => this.#fromInput(event.target));
    $("live-start").addEventListener("click", () => this.startLive());
    $("live-stop").addEventListener("click", () => this.stopLive());
    $("live-shutter").addEventListener("click", () => this.shoot());
    $("overlay-opacity").addEventListener("input", () => this.#applyOpacity());
  }

  async #fromInput(input) {
    const files = [...input.files];
    input.value = ""; // the same file can be chosen again (a retake)
    say("camera-message", "");
    for (const file of files) {
      const kind = await sniff(file);
      const why = refusal(file.name, kind);
      if (why) notice("camera-message", why, "error"); // gone with the screen: it was about this file
      else this.onPhoto({ blob: file, filename: file.name || "photo.jpg", kind });
    }
  }

  /** The earlier photo to lay over the live preview (a same-origin URL), or none. */
  setOverlay(url) {
    const overlay = /** @type {HTMLImageElement} */ ($("live-overlay"));
    overlay.hidden = !url;
    $("overlay-controls").hidden = !url;
    if (url) overlay.src = url;
    else overlay.removeAttribute("src");
    this.#applyOpacity();
  }

  #applyOpacity() {
    $("live-overlay").style.opacity = String(Number(/** @type {HTMLInputElement} */ ($("overlay-opacity")).value) / 100);
  }

  async startLive() {
    say("camera-message", "");
    if (!navigator.mediaDevices?.getUserMedia) {
      say("camera-message", t("camera.no_camera", { detail: "getUserMedia" }), "error");
      return;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: "environment" }, width: { ideal: 4032 }, height: { ideal: 3024 } },
      });
    } catch (error) {
      say("camera-message", t("camera.no_camera", { detail: /** @type {DOMException} */ (error).name }), "error");
      return;
    }
    const video = /** @type {HTMLVideoElement} */ ($("live-video"));
    video.srcObject = this.stream;
    $("live").hidden = false;
    $("camera-start").hidden = true;
    await video.play().catch(() => {});
  }

  /** Camera off (its light too) whenever the live view is not on screen. */
  stopLive() {
    for (const track of this.stream?.getTracks() || []) track.stop();
    this.stream = null;
    /** @type {HTMLVideoElement} */ ($("live-video")).srcObject = null;
    $("live").hidden = true;
    $("camera-start").hidden = false;
  }

  /** One frame of the live preview at the camera's full resolution, as a JPEG (no EXIF). */
  async shoot() {
    const video = /** @type {HTMLVideoElement} */ ($("live-video"));
    if (!this.stream || !video.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d")).drawImage(video, 0, 0);
    /** @type {Blob | null} */
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
    canvas.width = 0; // give the pixels back now, not at the next garbage collection
    if (blob) this.onPhoto({ blob, filename: "camera.jpg", kind: "jpeg" });
  }
}
