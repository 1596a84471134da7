/**
 * The client for browsers (and any runtime with `fetch`): uploads go through XHR where it exists, for
 * upload progress. Node gets `node.ts` (the package's `node` export condition picks it).
 */
import { type ClientOptions, LocationDetectionClient } from "./client.js";
import { fetchTransport } from "./transport.js";
import { xhrTransport } from "./transport-xhr.js";

export * from "./client.js";
export * from "./errors.js";
export * from "./types.js";
export { detectFormat, fetchTransport, type Transport } from "./transport.js";
export { xhrTransport } from "./transport-xhr.js";
export type { components, operations, paths } from "./schema.js";

export function createClient(options: Omit<ClientOptions, "transport"> & Partial<ClientOptions>): LocationDetectionClient {
  const transport = options.transport ?? (typeof XMLHttpRequest === "function" ? xhrTransport : fetchTransport);
  return new LocationDetectionClient({ ...options, transport });
}
