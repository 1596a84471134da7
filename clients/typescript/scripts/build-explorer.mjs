// The explorer page as one self-contained HTML document: explorer/main.ts and the client bundled by
// esbuild (no CDN, no other asset path), inlined with the stylesheet into explorer/page.html.
// Usage: node scripts/build-explorer.mjs [OUT] (default dist/explorer.html, committed: `make run` serves it
// without a build, and `npm run check-generated` fails when it is stale).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const here = join(dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_OUT = join(here, "dist", "explorer.html");

export async function buildExplorer() {
  const bundled = await build({
    entryPoints: [join(here, "explorer", "main.ts")],
    absWorkingDir: here,
    // The same bytes from a copy whose node_modules is a link (test/check-generated.test.ts): the module
    // path comments esbuild writes stay relative to here.
    preserveSymlinks: true,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    charset: "utf8",
    legalComments: "inline",
    write: false,
    logLevel: "error",
  });
  // A "</script" inside the code would end the inline script early.
  const script = bundled.outputFiles[0].text.replaceAll("</script", "<\\/script");
  const style = readFileSync(join(here, "explorer", "style.css"), "utf8");
  const page = readFileSync(join(here, "explorer", "page.html"), "utf8");
  const banner = "<!-- Built by clients/typescript/scripts/build-explorer.mjs from explorer/ and src/: do not edit. -->\n";
  return banner + page.replace("/*STYLE*/", () => `\n${style}`).replace("/*SCRIPT*/", () => `\n${script}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? DEFAULT_OUT;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, await buildExplorer());
  console.log(`explorer page -> ${out}`);
}
