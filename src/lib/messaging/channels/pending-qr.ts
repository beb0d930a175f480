import QRCode from "qrcode";

/**
 * The QR code a client shows while it waits for a scan: the newest one the library gave,
 * once rendered as a PNG data URL. One overtaken by a newer QR, or by a clear (the phone
 * scanned), while it was being rendered is dropped.
 */
export class PendingQr {
  #latest: string | null = null;
  #shown: { value: string; dataUrl: string } | null = null;

  /** The QR to show now, as text and as a PNG data URL, or null. */
  get current(): { value: string; dataUrl: string } | null {
    return this.#shown;
  }

  /**
   * Takes `value` as the newest QR and renders it. Resolves with true once it is the one
   * shown, false when it was overtaken meanwhile (the previous one stays shown until then).
   * @throws what rendering threw
   */
  async show(value: string): Promise<boolean> {
    this.#latest = value;
    // Four modules of quiet zone around the code, as the QR spec asks: scanners need it.
    const dataUrl = await QRCode.toDataURL(value, { margin: 4, width: 264 });
    if (this.#latest !== value) return false;
    this.#shown = { value, dataUrl };
    return true;
  }

  /** No QR any more: the phone scanned, or the client is ready. */
  clear(): void {
    this.#latest = null;
    this.#shown = null;
  }
}
