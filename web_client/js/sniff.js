// What a file really is, from its first bytes, not from its name or the type the browser
// guessed from the name: a text file renamed "photo.jpg" is still text. The phone sends only
// JPEG and HEIC (the service checks again, and converts HEIC once).
//
// JPEG: FF D8 FF (SOI, then the next marker). HEIC/HEIF: an ISO BMFF file starting with its
// `ftyp` box (32-bit size, "ftyp", major brand, minor version, compatible brands) whose major
// or a compatible brand is a HEIF image brand (ISO/IEC 23008-12). AVIF is HEIF too (it lists
// "mif1") but holds AV1, not HEVC: the service does not take it, so neither does the phone.

const HEAD_BYTES = 256; // an ftyp box lists a handful of brands; this is plenty
const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "heim", "heis", "hevm", "hevs", "mif1", "msf1"]);
const VIDEO_BRANDS = /^(isom|iso\d|mp4\d|avc1|M4V |qt  |3gp\d)$/;
const AV1_BRANDS = new Set(["avif", "avis"]);

const ascii = (bytes, from, to) => String.fromCharCode(...bytes.subarray(from, to));

/** The brands of an ISO BMFF `ftyp` box at the start of `bytes`, or null if there is none. */
function ftypBrands(bytes) {
  if (bytes.length < 16 || ascii(bytes, 4, 8) !== "ftyp") return null;
  const size = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  const end = Math.min(bytes.length, Math.max(size, 16));
  const brands = [ascii(bytes, 8, 12)];
  for (let at = 16; at + 4 <= end; at += 4) brands.push(ascii(bytes, at, at + 4));
  return brands;
}

/** Printable text (UTF-8 or ASCII, with line breaks and tabs), as far as the head shows. */
function looksLikeText(bytes) {
  if (bytes.length === 0) return false;
  return bytes.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b !== 127));
}

/** "jpeg" | "heic" (both sendable), or what else it is: "png", "gif", "webp", "pdf",
 * "video", "text", "empty", "unknown". */
export function kindOf(bytes) {
  if (bytes.length === 0) return "empty";
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  const brands = ftypBrands(bytes);
  if (brands) {
    if (brands.some((brand) => AV1_BRANDS.has(brand))) return "unknown";
    if (brands.some((brand) => HEIF_BRANDS.has(brand))) return "heic";
    return VIDEO_BRANDS.test(brands[0]) ? "video" : "unknown";
  }
  if (bytes[0] === 0x89 && ascii(bytes, 1, 4) === "PNG") return "png";
  if (ascii(bytes, 0, 4) === "GIF8") return "gif";
  if (ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP") return "webp";
  if (ascii(bytes, 0, 5) === "%PDF-") return "pdf";
  if (looksLikeText(bytes)) return "text";
  return "unknown";
}

/** What `blob` (a file from the camera input) is, by its first bytes. */
export async function sniff(blob) {
  return kindOf(new Uint8Array(await blob.slice(0, HEAD_BYTES).arrayBuffer()));
}

/** Whether the phone may send a file of this kind. */
export const SENDABLE = new Set(["jpeg", "heic"]);
