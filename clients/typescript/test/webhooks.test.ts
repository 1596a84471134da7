/**
 * Webhook verification against signatures made here with node:crypto exactly as the contract states them
 * (not with the library under test): `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with
 * the bytes of the `whsec_` secret.
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { test } from "node:test";

import { WebhookVerificationError, verifyWebhook } from "../src/node.js";

const SECRET = `whsec_${randomBytes(24).toString("base64")}`;

function sign(id: string, timestamp: number, body: string, secret = SECRET): string {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

const BODY = JSON.stringify({
  type: "job.completed",
  timestamp: "2026-11-21T23:15:00Z",
  data: { job: { job_id: "job_20261121T231500_9f2c4e7a1b3d5f60", status: "completed" } },
});

function headers(body: string, overrides: Record<string, string> = {}): Record<string, string> {
  const id = "job_20261121T231500_9f2c4e7a1b3d5f60:3";
  const timestamp = Math.floor(Date.now() / 1000);
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": sign(id, timestamp, body), ...overrides };
}

test("a delivery signed as the contract says verifies and yields the event", () => {
  const event = verifyWebhook(BODY, headers(BODY), SECRET);
  assert.equal(event.type, "job.completed");
  assert.equal(event.data.job.job_id, "job_20261121T231500_9f2c4e7a1b3d5f60");
  // Node's IncomingMessage.headers and a fetch Headers work alike; one of several signatures may match.
  const h = headers(BODY);
  const rotated = new Headers({ ...h, "webhook-signature": `v1,AAAA ${h["webhook-signature"]}` });
  assert.equal(verifyWebhook(Buffer.from(BODY), rotated, SECRET).type, "job.completed");
});

test("a changed body, another secret, a stale timestamp or a missing header are refused", () => {
  const good = headers(BODY);
  const other = `whsec_${randomBytes(24).toString("base64")}`;
  const stale = Math.floor(Date.now() / 1000) - 600;
  const staleHeaders = { ...good, "webhook-timestamp": String(stale), "webhook-signature": sign(good["webhook-id"] ?? "", stale, BODY) };
  const cases: [string, () => unknown][] = [
    ["body", () => verifyWebhook(BODY.replace("completed", "failed"), good, SECRET)],
    ["secret", () => verifyWebhook(BODY, good, other)],
    ["stale", () => verifyWebhook(BODY, staleHeaders, SECRET)],
    ["missing", () => verifyWebhook(BODY, { ...good, "webhook-signature": "" }, SECRET)],
  ];
  for (const [name, verify] of cases) assert.throws(verify, WebhookVerificationError, name);
});
