/** The Node client against the real local API (one per file), over HTTP on loopback. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  ApiError,
  type Job,
  type LocationDetectionClient,
  NetworkError,
  type Transport,
  type UploadProgress,
  WaitTimeoutError,
  createClient,
  fileFromPath,
  nodeTransport,
} from "../src/node.js";
import { EXAMPLE_RESULT, KEYS, type LocalApi, errorResponse, ops, pdf, png, startLocalApi } from "./helpers.js";

const REQUEST_ID = /^req_\d{8}T\d{6}_[a-z0-9]{6,}$/;
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let api: LocalApi;
let alice: LocationDetectionClient;

before(async () => {
  api = await startLocalApi();
  alice = createClient({ baseUrl: api.url, apiKey: KEYS[0] });
});
after(async () => api?.stop());

/** Progress events must only move forward and end with the whole file. */
function assertProgress(events: UploadProgress[], path: "direct" | "presigned", size: number): void {
  assert.ok(events.length >= 3, `progress events: ${JSON.stringify(events)}`);
  assert.ok(events.every((e) => e.path === path && e.total === size));
  const uploading = events.filter((e) => e.phase === "uploading").map((e) => e.loaded);
  assert.deepEqual(uploading, [...uploading].sort((a, b) => a - b), "loaded never goes down");
  assert.deepEqual(events.at(-1), { path, phase: "done", loaded: size, total: size });
  assert.ok(events.some((e) => e.phase === "creating"));
}

describe("createJob", () => {
  test("a small file goes directly, in one request, with progress", async () => {
    const bytes = png();
    const events: UploadProgress[] = [];
    const file = new File([bytes], "ground floor.png", { type: "image/png" });
    const created = await alice.createJob(file, { onProgress: (p) => events.push({ ...p }) });

    assert.equal(created.path, "direct");
    assert.equal(created.replayed, false);
    assert.match(created.requestId ?? "", REQUEST_ID);
    assert.equal(created.job.status, "pending");
    assert.equal(created.job.blueprint_format, "png");
    assert.equal(created.job.blueprint_filename, "ground floor.png");
    assert.equal(created.job.blueprint_size, bytes.length);
    assert.equal(created.job.blueprint_hash, sha256(bytes));
    assertProgress(events, "direct", bytes.length);
  });

  test("a file over the direct limit goes through a presigned upload, streamed from disk", async () => {
    const bytes = pdf(300_000);
    const path = join(tmpdir(), `ldclient-node-${process.pid}.pdf`);
    writeFileSync(path, bytes);
    const client = createClient({ baseUrl: api.url, apiKey: KEYS[0], directLimitBytes: 64 * 1024 });
    const events: UploadProgress[] = [];
    const created = await client.createJob(await fileFromPath(path), { onProgress: (p) => events.push({ ...p }) });

    assert.equal(created.path, "presigned");
    assert.equal(created.job.blueprint_format, "pdf");
    assert.equal(created.job.blueprint_filename, path.split("/").at(-1));
    assert.equal(created.job.blueprint_hash, sha256(bytes), "S3 got the bytes intact");
    assert.equal(created.job.blueprint_size, bytes.length);
    assertProgress(events, "presigned", bytes.length);
    const midway = events.filter((e) => e.phase === "uploading" && e.loaded > 0 && e.loaded < bytes.length);
    assert.ok(midway.length >= 2, "a length-aware stream reports the bytes as they go");
    assert.equal((await client.getJob(created.job.job_id)).blueprint_hash, sha256(bytes));
  });

  test("a create whose answer is lost is retried with the same Idempotency-Key and makes one job", async () => {
    const keys: string[] = [];
    let lost = 0;
    // The first request reaches the API (the job is made), then the connection "drops" before the answer.
    const flaky: Transport = async (request) => {
      keys.push(request.headers["Idempotency-Key"] ?? "");
      const response = await nodeTransport(request);
      if (lost++ === 0) throw new NetworkError("connection reset after the request was sent");
      return response;
    };
    const bob = createClient({ baseUrl: api.url, apiKey: KEYS[1], transport: flaky, retry: { baseDelayMs: 50 } });
    const bytes = png();
    const created = await bob.createJob(new Blob([bytes]), { filename: "retry.png" });

    assert.equal(keys.length, 2);
    assert.equal(keys[0], keys[1], "one key per logical create");
    assert.equal(created.idempotencyKey, keys[0]);
    assert.equal(created.replayed, true, "the second attempt got the first answer back");
    const mine: Job[] = [];
    for await (const job of bob.listJobs()) if (job.blueprint_hash === sha256(bytes)) mine.push(job);
    assert.deepEqual(
      mine.map((j) => j.job_id),
      [created.job.job_id],
    );
  });

  test("a presigned create whose final answer is lost still makes one job", async () => {
    let creates = 0;
    const lossy: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const url = input instanceof Request ? input.url : String(input);
      if ((init?.method ?? "GET") === "POST" && url.endsWith("/api/v1/jobs") && creates++ === 0) {
        throw new TypeError("fetch failed");
      }
      return response;
    };
    const client = createClient({ baseUrl: api.url, apiKey: KEYS[0], fetch: lossy, directLimitBytes: 10, retry: { baseDelayMs: 50 } });
    const bytes = png(4096);
    const created = await client.createJob(new Blob([bytes]), { filename: "big.png" });
    assert.equal(creates, 2);
    assert.equal(created.path, "presigned");
    assert.equal(created.replayed, true);
    const page = await client.listJobsPage({ pageSize: 100 });
    assert.equal(page.jobs.filter((j) => j.blueprint_hash === sha256(bytes)).length, 1);
  });

  test("a rejected file is a typed error with the envelope's code, details and request id", async () => {
    const gif = new Blob([Buffer.from("GIF89a-not-a-blueprint")]);
    const error = await alice.createJob(gif, { filename: "x.gif" }).catch((e: unknown) => e);
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.code, "INVALID_FILE_FORMAT");
    assert.equal(error.details.detected_format, "gif");
    assert.match(error.requestId ?? "", REQUEST_ID);
  });

  test("413: a direct body over the transport limit and a declared size over 50 MB", async () => {
    const tooBig = new Blob([pdf(7 * 1024 * 1024)]);
    const payload = await alice.createJob(tooBig, { strategy: "direct", filename: "big.pdf" }).catch((e: unknown) => e);
    assert.ok(payload instanceof ApiError, String(payload));
    assert.equal(payload.status, 413);
    assert.equal(payload.code, "PAYLOAD_TOO_LARGE");
    assert.match(payload.message, /uploads/);
    assert.match(payload.requestId ?? "", REQUEST_ID);

    const huge = new Blob([Buffer.from("%PDF-1.4\n"), new Uint8Array(50 * 1024 * 1024 + 1)]);
    const file = await alice.createJob(huge, { filename: "huge.pdf" }).catch((e: unknown) => e);
    assert.ok(file instanceof ApiError, String(file));
    assert.equal(file.status, 413);
    assert.equal(file.code, "FILE_TOO_LARGE");
    assert.equal(file.details.max_bytes, 50 * 1024 * 1024);
  });
});

describe("the other calls", () => {
  test("401 without a valid key, as an ApiError", async () => {
    const stranger = createClient({ baseUrl: api.url, apiKey: "ldk_nobody" });
    const error = await stranger.getJob("job_20261121T231500_9f2c4e7a1b3d5f60").catch((e: unknown) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "UNAUTHORIZED");
    assert.match(error.requestId ?? "", REQUEST_ID);
    const upload = await stranger.createJob(new Blob([png()]), { filename: "p.png" }).catch((e: unknown) => e);
    assert.ok(upload instanceof ApiError);
    assert.equal(upload.code, "UNAUTHORIZED");
  });

  test("waitForJob follows a job to completed; the result and feedback follow", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "wait.png" });
    const seen: string[] = [];
    const waiting = alice.waitForJob(job.job_id, {
      initialDelayMs: 50,
      maxDelayMs: 200,
      onUpdate: (j) => seen.push(j.status),
    });
    await ops(api, "complete", job.job_id, "--start", "--result", EXAMPLE_RESULT);
    const done = await waiting;

    assert.equal(done.status, "completed");
    assert.ok(done.result_url);
    assert.equal(seen[0], "pending");
    assert.equal(seen.at(-1), "completed");
    const result = await alice.getResult(done);
    assert.equal(result.model_version, "room-detector-2026.11");
    assert.deepEqual(
      result.rooms.map((r) => r.label),
      ["living_room", "kitchen", "bedroom"],
    );

    const feedback = await alice.submitFeedback(job.job_id, { rating: 4, comment: "good" });
    assert.equal(feedback.job_id, job.job_id);
    assert.equal(feedback.feedback_count, 1);
    const cancel = await alice.cancelJob(job.job_id).catch((e: unknown) => e);
    assert.ok(cancel instanceof ApiError);
    assert.equal(cancel.code, "JOB_ALREADY_COMPLETED");
    assert.equal(cancel.details.status, "completed");
  });

  test("waitForJob reports each step the pipeline takes: processing, progress and stage, then completed", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "steps.png" });
    const seen: Job[] = [];
    const waiting = alice.waitForJob(job.job_id, { initialDelayMs: 50, maxDelayMs: 200, onUpdate: (j) => seen.push(j) });
    // One step at a time, each once the client has seen the one before (so none is polled past).
    const step = async (count: number, ...args: string[]) => {
      await until(() => seen.length >= count, `update ${count} of ${job.job_id}`);
      await ops(api, ...args);
    };
    await step(1, "start", job.job_id);
    await step(2, "progress", job.job_id, "40", "--stage", "preprocessing");
    await step(3, "progress", job.job_id, "40", "--stage", "detection"); // a new stage at the same percent
    await step(4, "progress", job.job_id, "85");
    await step(5, "complete", job.job_id, "--result", EXAMPLE_RESULT);
    const done = await waiting;

    const steps = seen.map((j) => [j.status, j.progress, j.stage]);
    assert.deepEqual(steps, [
      ["pending", null, null],
      ["processing", null, null],
      ["processing", 40, "preprocessing"],
      ["processing", 40, "detection"],
      ["processing", 85, "detection"], // a report without a stage keeps the last one
      ["completed", 100, "detection"],
    ]);
    assert.equal(seen[0]?.started_at, null);
    assert.equal(seen[0]?.finished_at, null);
    const started = seen[1]?.started_at;
    assert.ok(started, "started_at from the start on");
    assert.ok(seen.slice(1).every((j) => j.started_at === started), "started_at never moves");
    assert.ok(seen.slice(0, -1).every((j) => j.finished_at === null));
    assert.equal(done.status, "completed");
    assert.ok(done.finished_at && done.finished_at >= started, `${started} .. ${done.finished_at}`);
    assert.equal(done.started_at, started);
  });

  test("waitForJob returns a failed job with its error and timing", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "fails.png" });
    const seen: string[] = [];
    const waiting = alice.waitForJob(job.job_id, { initialDelayMs: 50, maxDelayMs: 200, onUpdate: (j) => seen.push(j.status) });
    await ops(api, "fail", job.job_id, "--start", "--code", "MODEL_ERROR", "--message", "No walls found");
    const failed = await waiting;
    assert.equal(failed.status, "failed");
    assert.deepEqual(failed.error, { code: "MODEL_ERROR", message: "No walls found" });
    assert.ok(failed.started_at && failed.finished_at && failed.finished_at >= failed.started_at);
    assert.equal(seen[0], "pending");
    assert.equal(seen.at(-1), "failed");
  });

  test("waitForJob backs off while nothing changes, then gives up with WaitTimeoutError", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "stuck.png" });
    await ops(api, "start", job.job_id);
    const polls: number[] = [];
    const timed: typeof fetch = (input, init) => {
      polls.push(performance.now());
      return fetch(input, init);
    };
    const client = createClient({ baseUrl: api.url, apiKey: KEYS[0], fetch: timed });
    const options = { timeoutMs: 2_000, initialDelayMs: 50, factor: 2, maxDelayMs: 400 };
    const error = await client.waitForJob(job.job_id, options).catch((e: unknown) => e);

    assert.ok(error instanceof WaitTimeoutError, String(error));
    assert.equal(error.jobId, job.job_id);
    assert.equal(error.lastStatus, "processing");
    const pauses = polls.slice(1).map((t, i) => t - (polls[i] ?? t));
    // Each pause at least its step of 50, 100, 200, 400, 400... (the last one cut to the deadline).
    pauses.slice(0, -1).forEach((pause, i) => {
      assert.ok(pause >= Math.min(400, 50 * 2 ** i) - 5, `pause ${i}: ${pause} ms of ${JSON.stringify(pauses)}`);
    });
    assert.ok(polls.length >= 4 && polls.length <= 10, `${polls.length} polls in 2 s (9 at most by the steps), not 40`);
  });

  test("cancelJob is idempotent and waitForJob returns a cancelled job", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "cancel.png" });
    assert.equal((await alice.cancelJob(job.job_id)).status, "cancelled");
    assert.equal((await alice.cancelJob(job.job_id)).status, "cancelled");
    assert.equal((await alice.waitForJob(job.job_id)).status, "cancelled");
    const feedback = await alice.submitFeedback(job.job_id, { rating: 1 }).catch((e: unknown) => e);
    assert.ok(feedback instanceof ApiError);
    assert.equal(feedback.code, "JOB_NOT_COMPLETED");
  });

  test("listJobs iterates every page through the cursors, newest first", async () => {
    const requests: string[] = [];
    const counting: typeof fetch = (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      requests.push(`${input instanceof Request ? input.method : (init?.method ?? "GET")} ${new URL(url).pathname}`);
      return fetch(input, init);
    };
    const client = createClient({ baseUrl: api.url, apiKey: KEYS[0], fetch: counting });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { job } = await client.createJob(new Blob([png()]), { filename: `page-${i}.png` });
      await client.cancelJob(job.job_id);
      ids.push(job.job_id);
    }
    requests.length = 0;
    const listed: string[] = [];
    const times: string[] = [];
    for await (const job of client.listJobs({ status: "cancelled", pageSize: 2 })) {
      listed.push(job.job_id);
      times.push(job.created_at);
    }
    const pages = requests.filter((r) => r === "GET /api/v1/jobs").length;
    assert.ok(pages >= 3, `${pages} pages of 2 for at least 5 jobs`);
    assert.ok(ids.every((id) => listed.includes(id)), "every job listed");
    // Newest first, to the second (`created_at` has whole seconds; jobs of one second come in any order).
    assert.deepEqual(times, [...times].sort().reverse());
    assert.equal(new Set(listed).size, listed.length, "no job twice");
  });

  test("429 and 503 are retried after Retry-After; 404 is not retried", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "retry-after.png" });
    const answers = [429, 503];
    const started: number[] = [];
    const throttled: typeof fetch = async (input, init) => {
      started.push(Date.now());
      const status = answers.shift();
      if (status) return errorResponse(status, status === 429 ? "RATE_LIMITED" : "SERVICE_UNAVAILABLE");
      return fetch(input, init);
    };
    const client = createClient({ baseUrl: api.url, apiKey: KEYS[0], fetch: throttled });
    const read = await client.getJob(job.job_id);
    assert.equal(read.job_id, job.job_id);
    assert.equal(started.length, 3);
    assert.ok((started[1] ?? 0) - (started[0] ?? 0) >= 950, "waited Retry-After");
    assert.ok((started[2] ?? 0) - (started[1] ?? 0) >= 950, "waited Retry-After");

    started.length = 0;
    const missing = await client.getJob("job_20200101T000000_0000000000000000").catch((e: unknown) => e);
    assert.ok(missing instanceof ApiError);
    assert.equal(missing.code, "JOB_NOT_FOUND");
    assert.equal(started.length, 1);
  });

  test("eraseJob answers the receipt; the job is then 404, to a second erase too", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "erase.png" });
    await ops(api, "complete", job.job_id, "--start", "--result", EXAMPLE_RESULT);
    await alice.submitFeedback(job.job_id, { rating: 3 });

    const erased = await alice.eraseJob(job.job_id);

    assert.deepEqual(Object.keys(erased).sort(), ["erased_at", "job_id", "objects_deleted"]);
    assert.equal(erased.job_id, job.job_id);
    assert.equal(erased.objects_deleted, 3, "the blueprint, the result and the feedback");
    assert.match(erased.erased_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    const read = await alice.getJob(job.job_id).catch((e: unknown) => e);
    assert.ok(read instanceof ApiError);
    assert.equal(read.code, "JOB_NOT_FOUND");
    const again = await alice.eraseJob(job.job_id).catch((e: unknown) => e);
    assert.ok(again instanceof ApiError);
    assert.equal(again.status, 404);
  });

  test("another client's job is 404 to eraseJob and stays", async () => {
    const bob = createClient({ baseUrl: api.url, apiKey: KEYS[1] });
    const { job } = await alice.createJob(new Blob([png()]), { filename: "not-bobs.png" });
    const refused = await bob.eraseJob(job.job_id).catch((e: unknown) => e);
    assert.ok(refused instanceof ApiError);
    assert.equal(refused.code, "JOB_NOT_FOUND");
    assert.equal((await alice.getJob(job.job_id)).status, "pending");
  });

  /** A fetch that answers the first erasures itself (each status with its error code), then forwards;
   * "lost" forwards the request and drops the answer. */
  function erasing(faults: Array<number | "lost">, attempts: number[]): typeof fetch {
    const codes: Record<number, string> = { 409: "CONFLICT", 500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE" };
    return async (input, init) => {
      const erase = String(input).endsWith("/erase");
      const fault = erase ? faults.shift() : undefined;
      if (erase) attempts.push(Date.now());
      if (fault === "lost") {
        await fetch(input, init);
        throw new TypeError("fetch failed: the connection dropped before the answer");
      }
      return fault === undefined ? fetch(input, init) : errorResponse(fault, codes[fault] ?? "INTERNAL_ERROR");
    };
  }

  test("eraseJob retries an answered 503 and 409 CONFLICT until the erasure is done", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "erase-retried.png" });
    const attempts: number[] = [];
    const client = createClient({ baseUrl: api.url, apiKey: KEYS[0], fetch: erasing([503, 409], attempts) });

    const erased = await client.eraseJob(job.job_id);

    assert.equal(erased.job_id, job.job_id);
    assert.equal(attempts.length, 3);
    assert.ok((attempts[1] ?? 0) - (attempts[0] ?? 0) >= 950, "waited Retry-After");
    assert.ok((attempts[2] ?? 0) - (attempts[1] ?? 0) >= 950, "waited Retry-After");
    const read = await alice.getJob(job.job_id).catch((e: unknown) => e);
    assert.ok(read instanceof ApiError);
    assert.equal(read.code, "JOB_NOT_FOUND");
  });

  test("eraseJob does not retry a lost answer or a 500: the job may be gone", async () => {
    for (const fault of ["lost", 500] as const) {
      const { job } = await alice.createJob(new Blob([png()]), { filename: `erase-${fault}.png` });
      const attempts: number[] = [];
      const client = createClient({ baseUrl: api.url, apiKey: KEYS[0], fetch: erasing([fault], attempts) });

      const failed = await client.eraseJob(job.job_id).catch((e: unknown) => e);

      assert.equal(attempts.length, 1, `${fault}: one attempt`);
      if (fault === "lost") {
        assert.ok(failed instanceof NetworkError);
        const read = await alice.getJob(job.job_id).catch((e: unknown) => e);
        assert.ok(read instanceof ApiError && read.code === "JOB_NOT_FOUND", "erased; only the answer was lost");
      } else {
        assert.ok(failed instanceof ApiError && failed.code === "INTERNAL_ERROR");
        assert.equal((await alice.getJob(job.job_id)).status, "pending", "the API never saw it");
      }
    }
  });

  test("a processing job is cancelled first: the pipeline can no longer complete it", async () => {
    const { job } = await alice.createJob(new Blob([png()]), { filename: "processing.png" });
    await ops(api, "start", job.job_id);

    assert.equal((await alice.eraseJob(job.job_id)).objects_deleted, 1);

    const late = await ops(api, "complete", job.job_id, "--result", EXAMPLE_RESULT).catch((e: unknown) => e);
    assert.ok(late instanceof Error, "the operator CLI exits 1");
    assert.match(String((late as { stderr?: string }).stderr), /not found/);
  });

  test("health answers without a key", async () => {
    const health = await createClient({ baseUrl: api.url, apiKey: "" }).health();
    assert.equal(health.status, "healthy");
    assert.ok(health.services.jobs_table);
    assert.equal(health.services.secret?.status, "healthy");
  });
});
