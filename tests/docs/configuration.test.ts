import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { EnvSchema } from "../../src/env";

const ROOT = path.join(import.meta.dirname, "..", "..");
const variables = Object.keys(EnvSchema.shape).sort();

describe("the configuration's documentation", () => {
  it("has every variable of src/env.ts in the README's configuration table", () => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    const table = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("\n## ", readme.indexOf("## Configuration") + 1));
    const documented = new Set([...table.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map(([, name]) => name!));
    expect(variables.filter((name) => !documented.has(name))).toEqual([]);
  });

  it("has every variable of src/env.ts in .env.example", () => {
    const example = readFileSync(path.join(ROOT, ".env.example"), "utf8");
    const listed = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map(([, name]) => name!));
    expect(variables.filter((name) => !listed.has(name))).toEqual([]);
  });
});
