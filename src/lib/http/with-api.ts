import type { RecordModel } from "pocketbase";
import type { z } from "zod";

import { log } from "../log";
import { SessionLeasedElsewhereError } from "../messaging/session-lease";
import { ApiError } from "./api-error";
import { describeError } from "./error-status";
import { forwardToOwner } from "./forward-to-owner";
import { readJsonBody } from "./read-json-body";
import { authenticateRequestOrThrow } from "./request-auth";

export interface ApiContext<Body> {
  request: Request;
  /** The signed-in PocketBase user (absent on routes with `auth: "none"`). */
  user: RecordModel;
  body: Body;
  /** The answer of the instance at `ownerUrl` to this request, or null when it cannot be had (see forwardToOwner). */
  forward: (ownerUrl: string) => Promise<Response | null>;
}

export interface ApiOptions<Schema extends z.ZodType | undefined> {
  /** "user" (default): a PocketBase user token is required. "none": the handler checks what it needs. */
  auth?: "user" | "none";
  /** Parses the JSON body; failures become 422 with the field errors. */
  body?: Schema;
  /**
   * Per-user routes that act on the running client: when the session runs on another
   * instance that said where it answers, that instance answers the request (else 409
   * leased_elsewhere, as when forwarding fails).
   */
  forwardToOwner?: boolean;
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
  return async (request) => {
    let raw: unknown;
    const forward = (ownerUrl: string) => forwardToOwner(request, ownerUrl, raw);
    try {
      const user = options.auth === "none" ? (undefined as unknown as RecordModel) : await authenticateRequestOrThrow(request);
      raw = options.body ? await readJsonBody(request) : undefined;
      const body = options.body ? parseBody(options.body, raw) : undefined;
      const result = await handler({ request, user, body: body as BodyOf<Schema>, forward });
      return result instanceof Response ? result : json(result.json, result.status ?? 200);
    } catch (error) {
      if (options.forwardToOwner && error instanceof SessionLeasedElsewhereError && error.ownerUrl) {
        const answer = await forward(error.ownerUrl);
        if (answer) return answer;
      }
      return errorResponse(error, request);
    }
  };
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
    log("error", "API request failed", { method: request.method, path: url.pathname, code, error: String(error), cause: String((error as Error)?.cause ?? "") });
  }
  const fields = error instanceof ApiError && error.fields ? { fields: error.fields } : {};
  const publicMessage = error instanceof ApiError ? error.message : message;
  return json({ error: { code, message: publicMessage, ...fields } }, status);
}
