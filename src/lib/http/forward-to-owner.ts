import { getEnv } from "../../env";
import { cookieSiteOf } from "../auth/auth-cookie";
import { log } from "../log";
import type { SessionLeasedElsewhereError } from "../messaging/session-lease";
import { errorCode } from "../messaging/session-store-errors";
import { ApiError } from "./api-error";
import { IDEMPOTENCY_KEY_HEADER } from "./idempotency-key";
import { credentialsFromRequest } from "./request-auth";

/**
 * Marks a request one instance forwarded to another: it is answered there, never
 * forwarded again. Anyone can send it; it only turns forwarding off, so it is no proof of
 * anything.
 */
export const FORWARDED_HEADER = "x-wavault-forwarded-by";

/**
 * Names the instance that answered a forwarded request. A forward counts as answered only
 * with it: a proxy's error page or redirect at INSTANCE_URL is no answer of wavault's.
 */
export const ANSWERED_BY_HEADER = "x-wavault-answered-by";

/**
 * How long a forwarded request may take: a connect waits up to ~20 s for the client to
 * start on the owner, so this leaves room for that and a slow PocketBase.
 */
const FORWARD_TIMEOUT_MS = 30_000;

/** Errors that come before a request is sent: it never reached the owner, so nothing happened there. */
const NOT_SENT = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "ERR_INVALID_URL", // a lease_owner_url no claim would have written
  // TLS refused before the request went out (an https INSTANCE_URL with a bad certificate).
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER", // https to a plain http port (OpenSSL 3.0)
  "ERR_SSL_PACKET_LENGTH_TOO_LONG", // the same, OpenSSL 3.2 and later
]);

/** What became of a forward: the owner's answer, or none, and then whether the request may have got there. */
type ForwardOutcome = { answer: Response } | { answer: null; reached: boolean };

/** Whether another instance forwarded this request here (then it is answered here, whatever happens). */
export function isForwarded(request: Request): boolean {
  return request.headers.has(FORWARDED_HEADER);
}

/**
 * Sends an authenticated user's request on to another instance at `ownerUrl` — the one
 * that runs their session (its lease's `ownerUrl`), or, `to: "peer"`, one with room for
 * a connect (see answerFromPeer) — and returns that instance's answer. There is none when the request
 * came forwarded already (no loops), when it could not be sent (`reached: false`: nothing
 * happened there), or when no answer of wavault's came back in `timeoutMs` (`reached:
 * true`: it may have been carried out). The owner authenticates the user again; the
 * user's token goes as a bearer token (a cookie's CSRF check was made here, and a bearer
 * request needs none). `body` is the JSON body this instance read, if any.
 */
export async function forwardToOwner(
  request: Request,
  ownerUrl: string,
  body: unknown,
  { timeoutMs = FORWARD_TIMEOUT_MS, to = "owner" }: { timeoutMs?: number; to?: "owner" | "peer" } = {},
): Promise<ForwardOutcome> {
  const env = getEnv();
  const credentials = credentialsFromRequest(request, cookieSiteOf(env));
  if (isForwarded(request) || !credentials) return { answer: null, reached: false };
  const { pathname, search } = new URL(request.url);
  const idempotencyKey = request.headers.get(IDEMPOTENCY_KEY_HEADER);
  // Not AbortSignal.timeout inside AbortSignal.any: Node 20 lets that timeout signal be
  // garbage-collected, and the forward then waits for ever. The timer holds this one.
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new DOMException(`No answer within ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
  let answered = false;
  try {
    const answer = await fetch(new URL(`${pathname}${search}`, ownerUrl), {
      method: request.method,
      headers: {
        authorization: `Bearer ${credentials.token}`,
        [FORWARDED_HEADER]: env.INSTANCE_ID,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        // The instance that sends is the one that remembers the key.
        ...(idempotencyKey === null ? {} : { [IDEMPOTENCY_KEY_HEADER]: idempotencyKey }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: "manual",
      // A caller that gives up (a dashboard poll cut short) ends the forward too.
      signal: AbortSignal.any([request.signal, timeout.signal]),
    });
    answered = true;
    // Read in full here: a connection that breaks mid-body is no answer either.
    const text = await answer.text();
    const answeredBy = answer.headers.get(ANSWERED_BY_HEADER);
    if (!answeredBy) throw new Error(`the answer (${answer.status}) did not come from wavault`);
    const headers = { "content-type": answer.headers.get("content-type") ?? "application/json", "cache-control": "no-store", [ANSWERED_BY_HEADER]: answeredBy };
    return { answer: new Response(text, { status: answer.status, headers }) };
  } catch (error) {
    const failure = error as { code?: unknown; cause?: { code?: unknown } };
    const code = String(failure?.cause?.code ?? failure?.code ?? "");
    // fetch's own TypeError with no cause, before any answer: it refused the request
    // itself (a header value it cannot send), so nothing went out.
    const refusedByFetch = !answered && error instanceof TypeError && failure.cause === undefined;
    const reached = !NOT_SENT.has(code) && !refusedByFetch;
    const message = to === "owner" ? "Could not forward a request to the instance running the session" : "Could not forward a request to an instance with room";
    log("warn", message, {
      path: pathname,
      ownerUrl,
      reached,
      error: String(error),
      cause: code,
    });
    return { answer: null, reached };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * For a request refused because its session runs on another instance: that instance's
 * answer, or null when the refusal stands (the owner gave no address, or the request
 * never reached it).
 * @throws ApiError forward_failed when the request may have reached the owner but no
 *   answer came back (a send may have gone out: the caller must not take it for refused)
 */
export async function answerFromOwner(request: Request, refusal: unknown, body: unknown): Promise<Response | null> {
  // By code: the refusal may come from the runtime's copy of the class (see isPocketBaseError).
  if (errorCode(refusal) !== "leased_elsewhere") return null;
  const { ownerUrl } = refusal as SessionLeasedElsewhereError;
  if (!ownerUrl) return null;
  const outcome = await forwardToOwner(request, ownerUrl, body);
  if (outcome.answer) return outcome.answer;
  if (outcome.reached) {
    throw new ApiError("forward_failed", "The server instance running this WhatsApp session did not answer; the request may have been carried out there.");
  }
  return null;
}

/** How long a read (status) waits for the owner before answering from PocketBase: a dashboard polls it every 1.5 s. */
const READ_TIMEOUT_MS = 5_000;

/** The owner's successful answer to a read, or null (then the caller answers from what PocketBase holds). */
export async function readFromOwner(request: Request, ownerUrl: string): Promise<Response | null> {
  const outcome = await forwardToOwner(request, ownerUrl, undefined, { timeoutMs: READ_TIMEOUT_MS });
  return outcome.answer?.ok ? outcome.answer : null;
}
