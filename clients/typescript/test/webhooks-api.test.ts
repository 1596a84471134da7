/**
 * The webhook methods against the real routes of a local API (issue 17), and `verifyWebhook` on what the
 * server's signer sends to a loopback receiver (the local API allows http://127.0.0.1 receivers) and on
 * a signature made by the Standard Webhooks reference library itself.
 */
import assert from "node:assert/strict";
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import { Webhook as ReferenceWebhook } from "standardwebhooks";

import { ApiError, type LocationDetectionClient, WebhookVerificationError, createClient, verifyWebhook } from "../src/node.js";
import { EXAMPLE_RESULT, KEYS, type LocalApi, ops, png, startLocalApi } from "./helpers.js";

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

let api: LocalApi;
let alice: LocationDetectionClient;
let bob: LocationDetectionClient;
const deliveries: Delivery[] = [];
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    deliveries.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
    response.writeHead(204).end();
  });
});
let receiverUrl: string;

before(async () => {
  await new Promise<void>((done) => receiver.listen(0, "127.0.0.1", done));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  api = await startLocalApi({ WEBHOOK_RETRY_DELAYS: "1" });
  alice = createClient({ baseUrl: api.url, apiKey: KEYS[0] });
  bob = createClient({ baseUrl: api.url, apiKey: KEYS[1] });
});
after(async () => {
  await api?.stop();
  receiver.close();
});

async function until<T>(find: () => T | undefined, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("createWebhook, listWebhooks and deleteWebhook against the real routes", async () => {
  const created = await alice.createWebhook({ url: receiverUrl, events: ["job.completed"], description: "node test" });
  assert.match(created.webhook_id, /^wh_\d{8}T\d{6}_[0-9a-f]{16}$/);
  assert.equal(created.url, receiverUrl);
  assert.deepEqual(created.events, ["job.completed"]);
  assert.equal(created.description, "node test");
  assert.match(created.secret ?? "", /^whsec_[A-Za-z0-9+/]+=*$/);

  const listed = await alice.listWebhooks();
  const mine = listed.find((w) => w.webhook_id === created.webhook_id);
  assert.ok(mine, "listed");
  assert.equal(mine.secret, undefined, "the secret only in the create answer");
  assert.ok(!(await bob.listWebhooks()).some((w) => w.webhook_id === created.webhook_id), "not another client's");
  const foreign = await bob.deleteWebhook(created.webhook_id).catch((e: unknown) => e);
  assert.ok(foreign instanceof ApiError);
  assert.equal(foreign.code, "WEBHOOK_NOT_FOUND");

  const deleted = await alice.deleteWebhook(created.webhook_id);
  assert.equal(deleted.webhook_id, created.webhook_id);
  assert.ok(!(await alice.listWebhooks()).some((w) => w.webhook_id === created.webhook_id));
  const again = await alice.deleteWebhook(created.webhook_id).catch((e: unknown) => e);
  assert.ok(again instanceof ApiError);
  assert.equal(again.status, 404);
  assert.equal(again.code, "WEBHOOK_NOT_FOUND");

  const refused = await alice.createWebhook({ url: "http://10.0.0.1/hooks" }).catch((e: unknown) => e);
  assert.ok(refused instanceof ApiError);
  assert.equal(refused.code, "INVALID_WEBHOOK_URL");
});

test("a delivery signed by the server's signer verifies, as with the reference library; a forged one does not", async () => {
  const hook = await alice.createWebhook({ url: receiverUrl, events: ["job.completed"] });
  const secret = hook.secret ?? "";
  const { job } = await alice.createJob(new Blob([png()]), { filename: "hooked.png" });
  await ops(api, "complete", job.job_id, "--start", "--result", EXAMPLE_RESULT);

  const delivery = await until(
    () => deliveries.find((d) => d.body.includes(job.job_id) && d.body.includes("job.completed")),
    `the job.completed delivery of ${job.job_id}`,
  );
  const event = verifyWebhook(delivery.body, delivery.headers, secret);
  assert.equal(event.type, "job.completed");
  assert.equal(event.data.job.job_id, job.job_id);
  assert.equal(event.data.job.status, "completed");
  assert.equal(String(delivery.headers["webhook-id"]).split(":")[0], job.job_id, "webhook-id is {job_id}:{version}");
  const headers = Object.fromEntries(
    ["webhook-id", "webhook-timestamp", "webhook-signature"].map((name) => [name, String(delivery.headers[name])]),
  );
  assert.deepEqual(new ReferenceWebhook(secret).verify(delivery.body, headers), JSON.parse(delivery.body));

  assert.throws(() => verifyWebhook(delivery.body.replace("completed", "failed"), delivery.headers, secret), WebhookVerificationError);
  const other = await alice.createWebhook({ url: receiverUrl, events: ["job.failed"] });
  assert.throws(() => verifyWebhook(delivery.body, delivery.headers, other.secret ?? ""), WebhookVerificationError);

  // A signature made by the reference library (not by our server, nor by this client's code).
  const now = new Date();
  const signature = new ReferenceWebhook(secret).sign("msg_reference", now, delivery.body);
  const signed = {
    "webhook-id": "msg_reference",
    "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
    "webhook-signature": signature,
  };
  assert.equal(verifyWebhook(delivery.body, signed, secret).data.job.job_id, job.job_id);
  await alice.deleteWebhook(hook.webhook_id);
  await alice.deleteWebhook(other.webhook_id);
});
