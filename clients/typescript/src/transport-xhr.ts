/** The browser's transport: `XMLHttpRequest`, whose `upload.onprogress` is the only upload progress a page gets. */
import { NetworkError } from "./errors.js";
import type { Transport } from "./transport.js";

export const xhrTransport: Transport = (request) =>
  new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", request.url);
    for (const [name, value] of Object.entries(request.headers)) xhr.setRequestHeader(name, value);
    const form = new FormData();
    for (const [name, value] of request.fields) form.append(name, value);
    const file = request.file;
    const typed = file.data.type === file.contentType ? file.data : new Blob([file.data], { type: file.contentType });
    form.append("file", typed, file.filename);
    if (request.onProgress) {
      const report = request.onProgress;
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) report(event.loaded, event.total);
      };
    }
    const abort = () => xhr.abort();
    request.signal?.addEventListener("abort", abort, { once: true });
    const done = () => request.signal?.removeEventListener("abort", abort);
    xhr.onload = () => {
      done();
      resolve({
        status: xhr.status,
        headers: { get: (name: string) => xhr.getResponseHeader(name) },
        text: xhr.responseText,
      });
    };
    xhr.onerror = () => {
      done();
      reject(new NetworkError(`POST ${request.url} failed (network error or refused by CORS)`));
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => {
      done();
      reject(request.signal?.reason ?? new NetworkError(`POST ${request.url} was aborted`));
    };
    xhr.send(form);
  });
