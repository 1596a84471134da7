/**
 * `npm run check-generated` (the first step of `make ts-client`, so of `make test`) on a copy of the
 * checkout's files: it passes on them as committed, and fails, naming the file and the command that
 * regenerates it, once src/api/openapi.json or the explorer's code changes without a regeneration.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ROOT } from "./helpers.js";

const CLIENT = join(ROOT, "clients", "typescript");
let copy: string;
let client: string;
let openapi: string;

function check(): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [join(client, "scripts", "check-generated.mjs")], {
    cwd: client,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

before(() => {
  copy = mkdtempSync(join(tmpdir(), "ld-check-generated-"));
  client = join(copy, "clients", "typescript");
  for (const part of ["scripts", "src", "explorer", "dist", "package.json"]) {
    cpSync(join(CLIENT, part), join(client, part), { recursive: true });
  }
  symlinkSync(join(CLIENT, "node_modules"), join(client, "node_modules"), "dir");
  openapi = join(copy, "src", "api", "openapi.json");
  mkdirSync(join(copy, "src", "api"), { recursive: true });
  cpSync(join(ROOT, "src", "api", "openapi.json"), openapi);
});
after(() => rmSync(copy, { recursive: true, force: true }));

test("the committed files pass; a changed OpenAPI document or explorer makes the check fail", () => {
  const fresh = check();
  assert.equal(fresh.status, 0, fresh.output);
  assert.match(fresh.output, /up to date/);

  const original = readFileSync(openapi, "utf8");
  const document = JSON.parse(original) as { components: { schemas: Record<string, { description?: string }> } };
  const schema = document.components.schemas.JobError;
  assert.ok(schema, "the OpenAPI document describes JobError");
  schema.description = `${schema.description ?? ""} A change not yet in schema.d.ts.`;
  writeFileSync(openapi, JSON.stringify(document, null, 2));
  const staleTypes = check();
  assert.equal(staleTypes.status, 1, staleTypes.output);
  assert.match(staleTypes.output, /src\/schema\.d\.ts is stale: run `make ts-generate`/);
  assert.doesNotMatch(staleTypes.output, /explorer\.html/, "only the stale file is named");
  writeFileSync(openapi, original);

  appendFileSync(join(client, "explorer", "main.ts"), '\ndocument.title += " (changed)";\n');
  const staleBundle = check();
  assert.equal(staleBundle.status, 1, staleBundle.output);
  assert.match(staleBundle.output, /dist\/explorer\.html is stale: run `make ts-generate`/);
  assert.doesNotMatch(staleBundle.output, /schema\.d\.ts/);
});
