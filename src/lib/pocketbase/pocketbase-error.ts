import { ClientResponseError } from "pocketbase";

/**
 * Whether `error` is the PocketBase SDK's ClientResponseError (with `status`, if given).
 * Never `instanceof` alone: `next build` bundles the instrumentation hook apart from the
 * routes and pages, each with its own copy of the SDK, and the WhatsApp runtime built at
 * boot (its PocketBase client included) throws the boot copy's errors into route code.
 */
export function isPocketBaseError(error: unknown, status?: number): error is ClientResponseError {
  if (!(error instanceof ClientResponseError) && !hasClientResponseShape(error)) return false;
  return status === undefined || error.status === status;
}

function hasClientResponseShape(error: unknown): error is ClientResponseError {
  const candidate = error as { status?: unknown; response?: unknown; isAbort?: unknown } | null;
  return (
    error instanceof Error &&
    error.name.startsWith("ClientResponseError") &&
    typeof candidate?.status === "number" &&
    typeof candidate.isAbort === "boolean" &&
    typeof candidate.response === "object"
  );
}
