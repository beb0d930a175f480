import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { ClientResponseError } from "pocketbase";
import { describe, expect, it } from "vitest";

import { isPocketBaseError } from "../../../src/lib/pocketbase/pocketbase-error";

// A second copy of the SDK, as `next build` gives the instrumentation hook one and the
// routes another: the same error class twice, and `instanceof` tells them apart.
const sdk = pathToFileURL(createRequire(import.meta.url).resolve("pocketbase")).href;
const otherCopy = (await import(/* @vite-ignore */ `${sdk}?another-bundle`)) as typeof import("pocketbase");

describe("isPocketBaseError", () => {
  it("knows the SDK's error from another copy of the SDK, by its status", () => {
    const foreign = new otherCopy.ClientResponseError({ status: 404, response: { message: "Not found." } });
    expect(foreign instanceof ClientResponseError).toBe(false); // why the check exists
    expect(isPocketBaseError(foreign)).toBe(true);
    expect(isPocketBaseError(foreign, 404)).toBe(true);
    expect(isPocketBaseError(foreign, 409)).toBe(false);
    expect(isPocketBaseError(new ClientResponseError({ status: 0 }), 0)).toBe(true);
  });

  it("takes nothing else for it", () => {
    const lookalike = Object.assign(new Error("ClientResponseError 404"), { name: "ClientResponseError 404", status: 404 });
    for (const other of [lookalike, new TypeError("fetch failed"), { status: 404 }, null, undefined, "ClientResponseError"]) {
      expect(isPocketBaseError(other)).toBe(false);
    }
  });
});
