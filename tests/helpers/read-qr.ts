import jsQR from "jsqr";
import { PNG } from "pngjs";

/** What a QR scanner reads from a PNG data URL (as a phone's camera would), or null. */
export function readQrDataUrl(dataUrl: string): string | null {
  const png = PNG.sync.read(Buffer.from(dataUrl.replace(/^data:image\/png;base64,/, ""), "base64"));
  return jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data ?? null;
}
