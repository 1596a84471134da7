/**
 * How file bytes travel. `fetch` has no upload-progress events, so the requests that carry a file (a
 * direct create and the presigned POST to S3, both `multipart/form-data`) go through a `Transport`:
 * XHR in a browser (`transport-xhr.ts`), a length-aware stream over `node:http` in Node
 * (`transport-node.ts`), or plain `fetch` (no progress until the end) anywhere else.
 * Every other call goes through `openapi-fetch`.
 */
import { NetworkError } from "./errors.js";
import type { BlueprintFormat } from "./types.js";

export interface FilePart {
  data: Blob;
  filename: string;
  contentType: string;
}

export interface FormRequest {
  url: string;
  headers: Record<string, string>;
  /** Sent before the file part, in this order (S3 wants the policy fields first). */
  fields: [string, string][];
  file: FilePart;
  /** Bytes of the request body sent so far, of `total`. */
  onProgress?: ((loaded: number, total: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface TransportResponse {
  status: number;
  headers: { get(name: string): string | null };
  text: string;
}

/** POSTs a multipart form with one file part; rejects only with `NetworkError` (or the signal's reason). */
export type Transport = (request: FormRequest) => Promise<TransportResponse>;

export const MIME_TYPES: Record<BlueprintFormat, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  pdf: "application/pdf",
};

/** The format by the file's first bytes (the API checks the same magic numbers), else by type or name. */
export async function detectFormat(blob: Blob, filename: string): Promise<BlueprintFormat | null> {
  const head = new Uint8Array(await blob.slice(0, 8).arrayBuffer());
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "png";
  if (starts(0xff, 0xd8, 0xff)) return "jpg";
  if (starts(0x25, 0x50, 0x44, 0x46, 0x2d)) return "pdf";
  const byType: Record<string, BlueprintFormat> = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "application/pdf": "pdf",
  };
  const fromType = byType[blob.type.toLowerCase()];
  if (fromType) return fromType;
  const extension = /\.([a-z0-9]+)$/i.exec(filename)?.[1]?.toLowerCase();
  if (extension === "png" || extension === "pdf") return extension;
  if (extension === "jpg" || extension === "jpeg") return "jpg";
  return null;
}

/** A filename as browsers put it in `Content-Disposition` (WHATWG: `"`, CR and LF percent-encoded). */
export function quoteFilename(name: string): string {
  return name.replace(/"/g, "%22").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

/** Plain `fetch`: works everywhere, reports progress only once the body is sent. */
export const fetchTransport: Transport = async (request) => {
  const form = new FormData();
  for (const [name, value] of request.fields) form.append(name, value);
  const file = request.file;
  const typed = file.data.type === file.contentType ? file.data : new Blob([file.data], { type: file.contentType });
  form.append("file", typed, file.filename);
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: "POST",
      headers: request.headers,
      body: form,
      signal: request.signal ?? null,
    });
  } catch (error) {
    if (request.signal?.aborted) throw request.signal.reason;
    throw new NetworkError(`POST ${request.url} failed: ${String(error)}`, { cause: error });
  }
  request.onProgress?.(file.data.size, file.data.size);
  return { status: response.status, headers: response.headers, text: await response.text() };
};
