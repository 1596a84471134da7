/** The client for Node: uploads stream from disk with progress over `node:http`; webhook verification. */
import { openAsBlob } from "node:fs";
import { basename } from "node:path";

import { type ClientOptions, LocationDetectionClient } from "./client.js";
import { nodeTransport } from "./transport-node.js";

export * from "./client.js";
export * from "./errors.js";
export * from "./types.js";
export { detectFormat, fetchTransport, type Transport } from "./transport.js";
export { nodeTransport } from "./transport-node.js";
export { verifyWebhook, WebhookVerificationError } from "./webhooks.js";
export type { components, operations, paths } from "./schema.js";

export function createClient(options: Omit<ClientOptions, "transport"> & Partial<ClientOptions>): LocationDetectionClient {
  return new LocationDetectionClient({ ...options, transport: options.transport ?? nodeTransport });
}

/** A file on disk as a `File` read lazily (never all in memory), named after its basename. */
export async function fileFromPath(path: string): Promise<File> {
  const blob = await openAsBlob(path);
  return new File([blob], basename(path));
}
