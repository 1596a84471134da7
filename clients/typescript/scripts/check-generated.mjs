// Fails when a committed, generated file is stale: src/schema.d.ts against src/api/openapi.json
// (openapi-typescript) and dist/explorer.html against explorer/ and src/ (build-explorer.mjs).
// Each is regenerated into a temporary folder and compared byte for byte.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { DEFAULT_OUT, buildExplorer } from "./build-explorer.mjs";

const here = join(dirname(fileURLToPath(import.meta.url)), "..");
const temp = mkdtempSync(join(tmpdir(), "ld-client-check-"));
const stale = [];
try {
  const schema = join(temp, "schema.d.ts");
  execFileSync(
    process.execPath,
    [join(here, "node_modules", "openapi-typescript", "bin", "cli.js"), join(here, "..", "..", "src", "api", "openapi.json"), "--output", schema],
    { stdio: "ignore" },
  );
  if (readFileSync(schema, "utf8") !== readFileSync(join(here, "src", "schema.d.ts"), "utf8")) {
    stale.push("src/schema.d.ts is stale: run `make ts-generate` (src/api/openapi.json changed; `npm run generate` here)");
  }
  if ((await buildExplorer()) !== readFileSync(DEFAULT_OUT, "utf8")) {
    stale.push("dist/explorer.html is stale: run `make ts-generate` (explorer/ or src/ changed; `npm run bundle` here)");
  }
} finally {
  rmSync(temp, { recursive: true, force: true });
}
if (stale.length) {
  for (const line of stale) console.error(line);
  process.exit(1);
}
console.log("generated files are up to date (src/schema.d.ts, dist/explorer.html)");
