/**
 * The client against a local API with a small rate limit (RATE_LIMIT_PER_MINUTE=20, RATE_LIMIT_BURST=1,
 * provisioned as the stack's parameters): the API's own 429s, with its own `Retry-After` (3 s: one request
 * every three seconds), not a fake's. Each test first spends the route's budget with a request the API
 * refuses (a 400 spends too, and makes no job), so the create that follows meets a 429.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { ApiError, type ClientOptions, type LocationDetectionClient, type Transport, createClient, nodeTransport } from "../src/node.js";
import { KEYS, type LocalApi, png, startLocalApi } from "./helpers.js";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const SECONDS_PER_REQUEST = 3;

let api: LocalApi;

before(async () => {
  api = await startLocalApi({ RATE_LIMIT_PER_MINUTE: String(60 / SECONDS_PER_REQUEST), RATE_LIMIT_BURST: "1" });
});
after(async () => api?.stop());

/** Spends `route`'s budget for `key` until the API answers 429; returns that answer's Retry-After. */
async function spend(route: "jobs" | "uploads", key: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const response = await fetch(`${api.url}/api/v1/${route}`, {
      method: "POST",
      headers: { "X-API-Key": key, "Content-Type": "application/json" },
      body: JSON.stringify({ not: "a valid body" }),
    });
    await response.arrayBuffer();
    if (response.status === 429) return Number(response.headers.get("retry-after"));
    assert.equal(response.status, 400, "the spending request is refused for its body, after it spent");
  }
  throw new Error(`the ${route} budget was never spent`);
}

async function jobsWithHash(client: LocationDetectionClient, hash: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const job of client.listJobs({ pageSize: 100 })) if (job.blueprint_hash === hash) ids.push(job.job_id);
  return ids;
}

interface Attempt {
  at: number;
  key: string;
  status: number;
  retryAfter: string | null;
}

/** The Node transport, recording each attempt's Idempotency-Key and the API's answer. */
function recording(attempts: Attempt[]): Transport {
  return async (request) => {
    const at = Date.now();
    const response = await nodeTransport(request);
    attempts.push({
      at,
      key: request.headers["Idempotency-Key"] ?? "",
      status: response.status,
      retryAfter: response.headers.get("retry-after"),
    });
    return response;
  };
}

describe("429 from the API's own rate limiter", () => {
  test("a direct create refused with 429 waits Retry-After, retries with the same key, makes one job", async () => {
    const attempts: Attempt[] = [];
    const alice = createClient({ baseUrl: api.url, apiKey: KEYS[0], transport: recording(attempts) });
    const bytes = png();
    await spend("jobs", KEYS[0]);

    const created = await alice.createJob(new Blob([bytes]), { filename: "throttled.png" });

    assert.deepEqual(
      attempts.map((a) => a.status),
      [429, 201],
    );
    const retryAfter = Number(attempts[0]?.retryAfter);
    assert.ok(retryAfter >= 1 && retryAfter <= SECONDS_PER_REQUEST, `Retry-After: ${retryAfter}`);
    const waited = (attempts[1]?.at ?? 0) - (attempts[0]?.at ?? 0);
    assert.ok(waited >= retryAfter * 1000 - 50, `waited ${waited} ms for Retry-After: ${retryAfter}`);
    assert.equal(new Set(attempts.map((a) => a.key)).size, 1, "one Idempotency-Key for both attempts");
    assert.equal(created.idempotencyKey, attempts[0]?.key);
    assert.equal(created.replayed, false, "a 429 is never kept as the key's answer: the retry ran");
    assert.equal(created.job.blueprint_hash, sha256(bytes));
    assert.deepEqual(await jobsWithHash(alice, sha256(bytes)), [created.job.job_id]);
  });

  test("a presigned create whose upload request meets 429 waits it out and still makes one job", async () => {
    const requests: { at: number; path: string; key: string | null; status: number; retryAfter: number }[] = [];
    const watched: typeof fetch = async (input, init) => {
      const at = Date.now();
      const request = new Request(input, init);
      const response = await fetch(request);
      const path = new URL(request.url).pathname;
      const retryAfter = Number(response.headers.get("retry-after") ?? 0);
      requests.push({ at, path, key: request.headers.get("idempotency-key"), status: response.status, retryAfter });
      return response;
    };
    const bob = createClient({ baseUrl: api.url, apiKey: KEYS[1], fetch: watched, directLimitBytes: 10 });
    const bytes = png(2048);
    await spend("uploads", KEYS[1]);

    const created = await bob.createJob(new Blob([bytes]), { filename: "throttled-upload.png" });

    assert.equal(created.path, "presigned");
    const uploads = requests.filter((r) => r.path === "/api/v1/uploads");
    assert.deepEqual(
      uploads.map((r) => r.status),
      [429, 201],
    );
    const retryAfter = uploads[0]?.retryAfter ?? 0;
    assert.ok(retryAfter >= 1, "the 429 carried Retry-After");
    assert.ok((uploads[1]?.at ?? 0) - (uploads[0]?.at ?? 0) >= retryAfter * 1000 - 50, "Retry-After waited");
    assert.deepEqual(
      uploads.map((r) => r.key),
      [`${created.idempotencyKey}.upload`, `${created.idempotencyKey}.upload`],
    );
    assert.equal(created.job.blueprint_hash, sha256(bytes), "S3 got the bytes after the retried upload request");
    assert.deepEqual(await jobsWithHash(bob, sha256(bytes)), [created.job.job_id]);
  });

  test("an abort while waiting out the upload request's Retry-After ends the create at once", async () => {
    const statuses: number[] = [];
    const controller = new AbortController();
    let refusedAt = 0;
    const watched: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      statuses.push(response.status);
      if (response.status === 429) {
        // The user leaves while the client waits out Retry-After (3 s), however long the 429 took to come.
        refusedAt = Date.now();
        setTimeout(() => controller.abort(new Error("the user left the page")), 100);
      }
      return response;
    };
    const bob = createClient({ baseUrl: api.url, apiKey: KEYS[1], fetch: watched, directLimitBytes: 10 });
    await spend("uploads", KEYS[1]);

    const error = await bob
      .createJob(new Blob([png(2048)]), { filename: "abandoned.png", signal: controller.signal })
      .catch((e: unknown) => e);

    assert.deepEqual(statuses, [429], "the API's 429, then no retry");
    assert.equal(String(error), "Error: the user left the page", "the signal's reason");
    const ended = Date.now() - refusedAt;
    assert.ok(ended < 1_500, `ended ${ended} ms after the 429, not after its Retry-After`);
  });

  test("retries exhausted, or a Retry-After longer than the policy waits: a typed RATE_LIMITED error", async () => {
    const bytes = png();
    const cases: [string, NonNullable<ClientOptions["retry"]>][] = [
      ["one attempt only", { attempts: 1 }],
      ["Retry-After over maxRetryAfterSeconds", { attempts: 4, maxRetryAfterSeconds: 0 }],
    ];
    for (const [name, retry] of cases) {
      const attempts: Attempt[] = [];
      const client = createClient({ baseUrl: api.url, apiKey: KEYS[0], transport: recording(attempts), retry });
      await spend("jobs", KEYS[0]);
      const started = Date.now();

      const error = await client.createJob(new Blob([bytes]), { filename: "refused.png" }).catch((e: unknown) => e);

      assert.ok(error instanceof ApiError, `${name}: ${String(error)}`);
      assert.equal(error.status, 429, name);
      assert.equal(error.code, "RATE_LIMITED", name);
      // What is left of the refill when the create came (whole seconds, rounded up): 1 to 3 s.
      const retryAfter = error.retryAfterSeconds ?? 0;
      assert.ok(retryAfter >= 1 && retryAfter <= SECONDS_PER_REQUEST, `${name}: Retry-After ${retryAfter}`);
      assert.match(error.requestId ?? "", /^req_/, name);
      assert.equal(attempts.length, 1, `${name}: not retried`);
      assert.ok(Date.now() - started < SECONDS_PER_REQUEST * 1000, `${name}: thrown without waiting`);
    }
    const alice = createClient({ baseUrl: api.url, apiKey: KEYS[0] });
    assert.deepEqual(await jobsWithHash(alice, sha256(bytes)), [], "a refused create made no job");
  });
});
