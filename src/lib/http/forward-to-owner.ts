import { getEnv } from "../../env";
import { log } from "../log";
import { credentialsFromRequest } from "./request-auth";

/** Marks a request one instance forwarded to another: it is answered there, never forwarded again. */
export const FORWARDED_HEADER = "x-wavault-forwarded-by";

/**
 * How long a forwarded request may take: a connect waits up to ~20 s for the client to
 * start on the owner, so this leaves room for that and a slow PocketBase.
 */
const FORWARD_TIMEOUT_MS = 30_000;

/** Whether another instance forwarded this request here (then it is answered here, whatever happens). */
export function isForwarded(request: Request): boolean {
  return request.headers.has(FORWARDED_HEADER);
}

/**
 * Sends an authenticated user's request on to the instance that runs their session (its
 * lease's `ownerUrl`) and returns that instance's answer, or null when it cannot be had:
 * the request came forwarded already (no loops), or the owner did not answer. The owner
 * authenticates the user again; the user's token goes as a bearer token (a cookie's
 * CSRF check was made here, and a bearer request needs none). `body` is the JSON body
 * this instance read, if any.
 */
export async function forwardToOwner(request: Request, ownerUrl: string, body: unknown): Promise<Response | null> {
  if (isForwarded(request)) return null;
  const env = getEnv();
  const credentials = credentialsFromRequest(request, env.NODE_ENV === "production");
  if (!credentials) return null;
  const { pathname, search } = new URL(request.url);
  const target = new URL(`${pathname}${search}`, ownerUrl);
  try {
    const answer = await fetch(target, {
      method: request.method,
      headers: {
        authorization: `Bearer ${credentials.token}`,
        [FORWARDED_HEADER]: env.INSTANCE_ID,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: "manual",
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
    // Read in full here: a connection that breaks mid-body is no answer either.
    const text = await answer.text();
    return new Response(text, {
      status: answer.status,
      headers: { "content-type": answer.headers.get("content-type") ?? "application/json", "cache-control": "no-store" },
    });
  } catch (error) {
    log("warn", "Could not forward a request to the instance running the session", {
      path: pathname,
      ownerUrl,
      error: String(error),
    });
    return null;
  }
}
