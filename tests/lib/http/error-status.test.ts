import { describe, expect, it } from "vitest";

import { ApiError } from "../../../src/lib/http/api-error";
import { describeError, ERROR_STATUS } from "../../../src/lib/http/error-status";
import { ConnectionLimitError, ShuttingDownError } from "../../../src/lib/messaging/connection-manager";
import { PocketBaseUnavailableError, SessionStoreError } from "../../../src/lib/messaging/session-store-errors";
import { SessionLeasedElsewhereError } from "../../../src/lib/messaging/session-lease";
import { NotReadyError, SendFailedError } from "../../../src/lib/messaging/channels/channel-errors";
import { ServiceAuthError } from "../../../src/lib/pocketbase/service-client";
import { UnauthorizedError } from "../../../src/lib/pocketbase/user-client";

describe("the error code → HTTP status table", () => {
  it("maps each error a route can meet to its status", () => {
    const cases: [Error, number, string][] = [
      [new UnauthorizedError(), 401, "unauthorized"],
      [new ConnectionLimitError("connections", 2), 503, "connection_limit"],
      [new ConnectionLimitError("memory", 4096), 503, "connection_limit"],
      [new SessionLeasedElsewhereError("u1", "other/1", new Date()), 409, "leased_elsewhere"],
      [new NotReadyError("qr_ready"), 409, "not_ready"],
      [new ShuttingDownError(), 503, "shutting_down"],
      [new SendFailedError(), 502, "send_failed"],
      [new PocketBaseUnavailableError("read the session"), 503, "pocketbase_unavailable"],
      [new ServiceAuthError("http://127.0.0.1:8090"), 503, "pocketbase_service_auth_failed"],
      [new ApiError("validation_failed", "The request is not valid."), 422, "validation_failed"],
    ];
    for (const [error, status, code] of cases) expect(describeError(error)).toMatchObject({ status, code });
  });

  it("turns anything unknown into a generic 500 that does not repeat its message", () => {
    for (const error of [new Error("ENOENT /srv/secret/path"), new SessionStoreError("save", 500), "boom", null, { code: "toString" }]) {
      expect(describeError(error)).toEqual({ code: "internal_error", status: 500, message: "Something went wrong on our side." });
    }
  });

  it("has a client-safe message for every code, and no 2xx status", () => {
    for (const [code, entry] of Object.entries(ERROR_STATUS)) {
      expect(entry.status, code).toBeGreaterThanOrEqual(400);
      expect(entry.message, code).toMatch(/^[A-Z].*\.$/);
    }
  });
});
