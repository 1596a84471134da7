/**
 * The real local API for the Node tests: `python -m local_api` started on a free loopback port with two
 * known keys (as tests/e2e/conftest.py does), and the operator CLI that drives its jobs.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const ROOT = resolve(fileURLToPath(import.meta.url), "../../../../..");
export const KEYS = ["ldk_node_test_key_of_alice", "ldk_node_test_key_of_bob"] as const;
const PYTHON = process.env.LD_PYTHON ?? join(ROOT, ".venv", "bin", "python");

export interface LocalApi {
  url: string;
  stateFile: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? done(address.port) : fail(new Error("no port"))));
    });
  });
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/health`)).status === 200;
  } catch {
    return false;
  }
}

/**
 * A budget no test meets by accident (as tests/e2e/conftest.py sets): the tests exercise the handlers, and
 * test/rate-limits.test.ts starts an API of its own with a small one to prove the client's 429 handling.
 */
const GENEROUS_RATE_LIMITS = { RATE_LIMIT_PER_MINUTE: "100000", RATE_LIMIT_BURST: "10000" };

export async function startLocalApi(extraEnv: Record<string, string> = {}): Promise<LocalApi> {
  const port = await freePort();
  const stateFile = join(tmpdir(), `local-api-node-test-${port}.json`);
  const logFile = join(tmpdir(), `local-api-node-test-${port}.log`);
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("AWS_ENDPOINT_URL")),
  );
  Object.assign(env, { PORT: String(port), PYTHONUNBUFFERED: "1", LOCAL_API_STATE: stateFile, DEV_API_KEYS: KEYS.join(",") }, GENEROUS_RATE_LIMITS, extraEnv);
  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(PYTHON, ["-m", "local_api", "--quiet"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (!(await healthy(url))) {
    if (child.exitCode !== null) throw new Error(`local API exited early:\n${readFileSync(logFile, "utf8")}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("local API did not become healthy within 60 s");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    stateFile,
    stop: () =>
      new Promise((done) => {
        const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        child.once("exit", () => {
          clearTimeout(killer);
          if (existsSync(stateFile)) rmSync(stateFile);
          done();
        });
        child.kill("SIGTERM"); // handled by local_api; SIGINT may be ignored in a background job
      }),
  };
}

/** `python -m ops --local jobs ...` against this local API; resolves to the job it prints. */
export async function ops(api: LocalApi, ...args: string[]): Promise<Record<string, unknown>> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("AWS_ENDPOINT_URL")),
  );
  env.LOCAL_API_STATE = api.stateFile;
  const { stdout } = await promisify(execFile)(PYTHON, ["-m", "ops", "--local", "jobs", ...args], {
    cwd: ROOT,
    env,
    timeout: 60_000,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** examples/plan.png with random bytes after it: a PNG by its magic number, with a hash of its own. */
export function png(extra = 16): Uint8Array<ArrayBuffer> {
  return bytesOf(Buffer.concat([readFileSync(join(ROOT, "examples", "plan.png")), randomBytes(extra)]));
}

/** A PDF of about `size` bytes (header, random filler, trailer). */
export function pdf(size: number): Uint8Array<ArrayBuffer> {
  const head = Buffer.from("%PDF-1.4\n%");
  const tail = Buffer.from("\n%%EOF\n");
  return bytesOf(Buffer.concat([head, randomBytes(Math.max(0, size - head.length - tail.length)), tail]));
}

/** A copy on its own ArrayBuffer (what `Blob` and `File` accept as a part). */
function bytesOf(buffer: Buffer): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(new ArrayBuffer(buffer.length));
  copy.set(buffer);
  return copy;
}

export const EXAMPLE_RESULT = join(ROOT, "examples", "result.json");

/** The API's error envelope with `Retry-After: 1`, as a fetch wrapper answers in the API's place. */
export function errorResponse(status: number, code: string): Response {
  const body = { status: "error", error: { code, message: "try again" }, meta: {} };
  return new Response(JSON.stringify(body), { status, headers: { "Retry-After": "1", "Content-Type": "application/json" } });
}
