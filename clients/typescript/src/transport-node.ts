/**
 * Node's transport: the multipart body is streamed from the `Blob` (`fs.openAsBlob` reads from disk as it
 * goes) with its exact `Content-Length` up front (S3's presigned POST refuses chunked bodies), and progress
 * is reported as each chunk is handed to the socket.
 */
import http from "node:http";
import https from "node:https";
import { randomBytes } from "node:crypto";

import { NetworkError } from "./errors.js";
import { quoteFilename, type FormRequest, type Transport, type TransportResponse } from "./transport.js";

const SOCKET_TIMEOUT_MS = 120_000;

function multipartEnvelope(request: FormRequest): { boundary: string; head: Buffer; tail: Buffer } {
  const boundary = `----ldclient${randomBytes(12).toString("hex")}`;
  const parts = request.fields.map(
    ([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${quoteFilename(name)}"\r\n\r\n${value}\r\n`,
  );
  const file = request.file;
  parts.push(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoteFilename(file.filename)}"\r\n` +
      `Content-Type: ${file.contentType}\r\n\r\n`,
  );
  return { boundary, head: Buffer.from(parts.join(""), "utf8"), tail: Buffer.from(`\r\n--${boundary}--\r\n`) };
}

function write(stream: http.ClientRequest, chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}

export const nodeTransport: Transport = (request) =>
  new Promise<TransportResponse>((resolve, reject) => {
    const { boundary, head, tail } = multipartEnvelope(request);
    const total = head.length + request.file.data.size + tail.length;
    const url = new URL(request.url);
    const module = url.protocol === "https:" ? https : http;
    let settled = false;
    let answered = false;
    const fail = (error: unknown) => {
      if (settled || answered) return; // an early answer (a 413) wins over the write it interrupted
      settled = true;
      outgoing.destroy();
      reject(
        request.signal?.aborted
          ? request.signal.reason
          : new NetworkError(`POST ${url.origin}${url.pathname} failed: ${String(error)}`, { cause: error }),
      );
    };
    const outgoing = module.request(url, {
      method: "POST",
      headers: {
        ...request.headers,
        "Content-Type": `multipart/form-data; boundary=${boundary}`,
        "Content-Length": String(total),
      },
      timeout: SOCKET_TIMEOUT_MS,
      signal: request.signal,
    });
    outgoing.on("timeout", () => fail(new Error("socket timeout")));
    outgoing.on("error", fail);
    outgoing.on("response", (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", (error) => {
        answered = false;
        fail(error);
      });
      response.on("end", () => {
        if (settled) return;
        settled = true;
        const headers = response.headers;
        resolve({
          status: response.statusCode ?? 0,
          headers: {
            get: (name: string) => {
              const value = headers[name.toLowerCase()];
              return Array.isArray(value) ? value.join(", ") : (value ?? null);
            },
          },
          text: Buffer.concat(chunks).toString("utf8"),
        });
      });
    });
    const send = async () => {
      let loaded = 0;
      const report = (n: number) => {
        loaded += n;
        request.onProgress?.(loaded, total);
      };
      request.onProgress?.(0, total);
      await write(outgoing, head);
      report(head.length);
      const reader = request.file.data.stream().getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await write(outgoing, value);
        report(value.length);
      }
      await write(outgoing, tail);
      report(tail.length);
      outgoing.end();
    };
    send().catch(fail);
  });
