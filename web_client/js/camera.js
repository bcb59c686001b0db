// Taking photos: the phone's own camera through a capture file input (best quality, and the
// photo does not go to the gallery), or a live preview in the page with the latest earlier
// photo laid over it, semi-transparent, so the new photo matches its distance and angle.

import { t } from "../i18n/en.js";
import { $, say } from "./dom.js";

const PHOTO_TYPES = new Set(["image/jpeg", "image/heic", "image/heif"]);
const PHOTO_NAME = /\.(jpe?g|heic|heif)$/i;
const JPEG_QUALITY = 0.92;

/** null when the file is a photo we can send, else the sentence that says why not. */
export function refusal(file) {
  if (PHOTO_TYPES.has(file.type) || (!file.type && PHOTO_NAME.test(file.name))) return null;
  const kind = file.type ? file.type.replace(/^image\//, "").toUpperCase() : file.name.split(".").pop();
  return t("camera.not_a_photo", { name: file.name, kind });
}

export class Camera {
  /** `onPhoto({blob, filename})` for every photo taken. */
  constructor(onPhoto) {
    this.onPhoto = onPhoto;
    this.stream = null;
    $("photo-input").addEventListener("change", (event) => this.#fromInput(event.target));
    $("live-start").addEventListener("click", () => this.startLive());
    $("live-stop").addEventListener("click", () => this.stopLive());
    $("live-shutter").addEventListener("click", () => this.shoot());
    $("overlay-opacity").addEventListener("input", () => this.#applyOpacity());
  }

  #fromInput(input) {
    say("camera-message", "");
    for (const file of input.files) {
      const why = refusal(file);
      if (why) say("camera-message", why, "error");
      else this.onPhoto({ blob: file, filename: file.name || "photo.jpg" });
    }
    input.value = ""; // the same file can be chosen again (a retake)
  }

  /** The earlier photo to lay over the live preview (a same-origin URL), or none. */
  setOverlay(url) {
    const overlay = $("live-overlay");
    overlay.hidden = !url;
    $("overlay-controls").hidden = !url;
    if (url) overlay.src = url;
    else overlay.removeAttribute("src");
    this.#applyOpacity();
  }

  #applyOpacity() {
    $("live-overlay").style.opacity = String(Number($("overlay-opacity").value) / 100);
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
      say("camera-message", t("camera.no_camera", { detail: error.name }), "error");
      return;
    }
    const video = $("live-video");
    video.srcObject = this.stream;
    $("live").hidden = false;
    $("camera-start").hidden = true;
    await video.play().catch(() => {});
  }

  /** Camera off (its light too) whenever the live view is not on screen. */
  stopLive() {
    for (const track of this.stream?.getTracks() || []) track.stop();
    this.stream = null;
    $("live-video").srcObject = null;
    $("live").hidden = true;
    $("camera-start").hidden = false;
  }

  /** One frame of the live preview at the camera's full resolution, as a JPEG (no EXIF). */
  async shoot() {
    const video = $("live-video");
    if (!this.stream || !video.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
    canvas.width = 0; // give the pixels back now, not at the next garbage collection
    if (blob) this.onPhoto({ blob, filename: "camera.jpg" });
  }
}
