import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { ERROR_STATUS, INTERNAL_ERROR } from "../../src/lib/http/error-status";

const ROOT = path.join(import.meta.dirname, "..", "..");
const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
const routesSection = readme.slice(readme.indexOf("## Routes"), readme.indexOf("\n## ", readme.indexOf("## Routes") + 1));

/** `METHOD /path` for every handler exported by a route file under app/api. */
function implementedRoutes(): string[] {
  const apiDir = path.join(ROOT, "app", "api");
  const found: string[] = [];
  for (const file of readdirSync(apiDir, { recursive: true, encoding: "utf8" })) {
    if (path.basename(file) !== "route.ts") continue;
    const route = `/api/${path.dirname(file).split(path.sep).join("/")}`;
    const source = readFileSync(path.join(apiDir, file), "utf8");
    for (const [, method] of source.matchAll(/^export const (GET|POST|PUT|PATCH|DELETE)\b/gm)) found.push(`${method} ${route}`);
  }
  return found.sort();
}

describe("the README's Routes section", () => {
  it("documents exactly the API routes app/api implements", () => {
    const documented = [...routesSection.matchAll(/^\| `((?:GET|POST|PUT|PATCH|DELETE) \/api\/[^`]+)` \|/gm)].map(([, route]) => route!);
    expect(implementedRoutes().length).toBeGreaterThan(0);
    expect(documented.sort()).toEqual(implementedRoutes());
  });

  it("lists every error code with the status the API answers", () => {
    const rows = new Map([...routesSection.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map(([, code, status]) => [code!, Number(status)]));
    const expected = new Map<string, number>(Object.entries(ERROR_STATUS).map(([code, entry]) => [code, entry.status]));
    expected.set(INTERNAL_ERROR.code, INTERNAL_ERROR.status);
    expect(rows).toEqual(expected);
  });
});
