import type { SessionStatus } from "../database-session-store";

/** ChannelStoppedError's code (compare codes, not classes: see isPocketBaseError). */
export const CHANNEL_STOPPED = "channel_stopped";

/** A stop or logout came while the client was still starting: the start gave up. */
export class ChannelStoppedError extends Error {
  readonly code: typeof CHANNEL_STOPPED = CHANNEL_STOPPED;
  constructor(readonly userId: string) {
    super("The WhatsApp client was stopped before it finished starting.");
    this.name = "ChannelStoppedError";
  }
}

/** The user's client is not running and ready (here) for a send. */
export class NotReadyError extends Error {
  readonly code = "not_ready";
  constructor(readonly status: SessionStatus) {
    super(`WhatsApp is not ready (status: ${status}).`);
    this.name = "NotReadyError";
  }
}

/**
 * WhatsApp Web did not answer a send in time: the message may yet go out. `late` is the
 * send itself, still under way: its message id, or its failure.
 */
export class SendTimedOutError extends Error {
  readonly code = "send_timeout";
  constructor(readonly timeoutMs: number, readonly late: Promise<string>) {
    super(`WhatsApp Web did not answer the send within ${timeoutMs / 1000} s; the message may yet go out.`);
    this.name = "SendTimedOutError";
  }
}

/** WhatsApp did not take a message (say, a number that is not on WhatsApp). */
export class SendFailedError extends Error {
  readonly code = "send_failed";
  constructor(options?: ErrorOptions) {
    super("WhatsApp did not accept the message.", options);
    this.name = "SendFailedError";
  }
}
