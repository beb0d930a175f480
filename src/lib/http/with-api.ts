import type { RecordModel } from "pocketbase";
import type { z } from "zod";

import { getEnv } from "../../env";
import { log } from "../log";
import { ApiError } from "./api-error";
import { describeError } from "./error-status";
import { ANSWERED_BY_HEADER, answerFromOwner, isForwarded, readFromOwner } from "./forward-to-owner";
import { answerFromPeer, type PeerWithRoom } from "./forward-to-peer";
import { readJsonBody } from "./read-json-body";
import { authenticateRequestOrThrow } from "./request-auth";

export interface ApiContext<Body> {
  request: Request;
  /** The signed-in PocketBase user (absent on routes with `auth: "none"`). */
  user: RecordModel;
  body: Body;
  /** For a read: the successful answer of the instance at `ownerUrl` to this request, or null (see readFromOwner). */
  readFromOwner: (ownerUrl: string) => Promise<Response | null>;
}

export interface ApiOptions<Schema extends z.ZodType | undefined> {
  /** "user" (default): a PocketBase user token is required. "none": the handler checks what it needs. */
  auth?: "user" | "none";
  /** Parses the JSON body; failures become 422 with the field errors. */
  body?: Schema;
  /**
   * Per-user routes that act on the running client: when the session runs on another
   * instance that said where it answers, that instance answers the request (see
   * answerFromOwner; else 409 leased_elsewhere).
   */
  forwardToOwner?: boolean;
  /**
   * For a request that starts a client: when this instance has no room for it (or is
   * shutting down), another instance with room takes it (see answerFromPeer; else the
   * refusal stands). Gives those instances for the caller, the one to try first first.
   */
  forwardWhenFull?: (user: RecordModel) => Promise<PeerWithRoom[]>;
}

type BodyOf<Schema> = Schema extends z.ZodType ? z.infer<Schema> : undefined;

/** A handler's answer: a Response as it is, or a value sent as JSON (200, or `status`). */
export type ApiResult = Response | { json: unknown; status?: number };

/**
 * Wraps a route handler: authenticates the caller, reads and validates the body, and
 * turns every error into `{ error: { code, message } }` through the closed code →
 * status table (error-status.ts). Unknown errors become a generic 500 and are logged,
 * never echoed.
 */
export function withApi<Schema extends z.ZodType | undefined = undefined>(
  handler: (context: ApiContext<BodyOf<Schema>>) => Promise<ApiResult>,
  options: ApiOptions<Schema> = {},
): (request: Request) => Promise<Response> {
  const answer = async (request: Request): Promise<Response> => {
    // What another instance gets, should this one refuse: the body as validated here
    // (known fields only), so it passes the same checks there, size limit included.
    let validated: unknown;
    let user: RecordModel | undefined;
    try {
      user = options.auth === "none" ? (undefined as unknown as RecordModel) : await authenticateRequestOrThrow(request);
      const raw = options.body ? await readJsonBody(request) : undefined;
      const body = (validated = options.body ? parseBody(options.body, raw) : undefined);
      const context = { request, user, body: body as BodyOf<Schema>, readFromOwner: (ownerUrl: string) => readFromOwner(request, ownerUrl) };
      const result = await handler(context);
      return result instanceof Response ? result : json(result.json, result.status ?? 200);
    } catch (error) {
      try {
        return (await answerElsewhere(request, error, validated, user, options)) ?? errorResponse(error, request);
      } catch (forwardError) {
        return errorResponse(forwardError, request);
      }
    }
  };
  return async (request) => {
    const response = await answer(request);
    // The forwarding instance takes only answers that say they are wavault's.
    if (isForwarded(request)) response.headers.set(ANSWERED_BY_HEADER, getEnv().INSTANCE_ID);
    return response;
  };
}

/** Another instance's answer to a request refused here, as the route allows (null: the refusal stands). */
async function answerElsewhere(
  request: Request,
  refusal: unknown,
  body: unknown,
  user: RecordModel | undefined,
  options: ApiOptions<z.ZodType | undefined>,
): Promise<Response | null> {
  const fromOwner = options.forwardToOwner ? await answerFromOwner(request, refusal, body) : null;
  // A refusal before the caller was known (no user) is no "no room here" (see answerFromPeer).
  if (fromOwner || !options.forwardWhenFull || !user) return fromOwner;
  const { forwardWhenFull } = options;
  return answerFromPeer(request, refusal, body, () => forwardWhenFull(user));
}

function parseBody<Schema extends z.ZodType>(schema: Schema, raw: unknown): z.infer<Schema> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const fields: Record<string, string[]> = {};
  for (const issue of parsed.error.issues) {
    const key = issue.path.join(".") || "body";
    (fields[key] ??= []).push(issue.message);
  }
  throw new ApiError("validation_failed", "The request is not valid.", fields);
}

/** A JSON response that no cache keeps (every answer here is per user or live). */
export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: { "cache-control": "no-store" } });
}

/** The error body for `error`; logs what the caller is not shown. */
export function errorResponse(error: unknown, request: Request): Response {
  const { code, status, message } = describeError(error);
  const url = new URL(request.url);
  if (status >= 500) {
    // No room, or a stop under way: load, not a fault (the rest wants someone's attention).
    log(code === "connection_limit" || code === "shutting_down" ? "warn" : "error", "API request failed", { method: request.method, path: url.pathname, code, error: String(error), cause: String((error as Error)?.cause ?? "") });
  }
  const fields = error instanceof ApiError && error.fields ? { fields: error.fields } : {};
  const publicMessage = error instanceof ApiError ? error.message : message;
  return json({ error: { code, message: publicMessage, ...fields } }, status);
}
