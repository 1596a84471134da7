/**
 * Webhook deliveries, verified as the contract says (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature` = `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` with the secret's bytes)
 * by the reference library, `standardwebhooks`. It also refuses timestamps more than 5 minutes away.
 */
import { Webhook, WebhookVerificationError } from "standardwebhooks";

import type { WebhookEvent } from "./types.js";

export { WebhookVerificationError };

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function pick(headers: HeaderBag, name: string): string {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? "";
  const bag = headers as Record<string, string | string[] | undefined>;
  const found = Object.keys(bag).find((key) => key.toLowerCase() === name);
  const value = found === undefined ? undefined : bag[found];
  return Array.isArray(value) ? (value[0] ?? "") : (value ?? "");
}

/**
 * The delivery's event when its signature is good; throws `WebhookVerificationError` otherwise.
 * `body` must be the raw request body exactly as received (parse it only after verifying).
 * `headers`: a `Headers`, or Node's `IncomingMessage.headers`.
 */
export function verifyWebhook(body: string | Uint8Array, headers: HeaderBag, secret: string): WebhookEvent {
  const payload = typeof body === "string" ? body : new TextDecoder().decode(body);
  const wanted = ["webhook-id", "webhook-timestamp", "webhook-signature"] as const;
  const signed = Object.fromEntries(wanted.map((name) => [name, pick(headers, name)]));
  return new Webhook(secret).verify(payload, signed) as WebhookEvent;
}
