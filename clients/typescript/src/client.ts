/**
 * The hand-written layer over the generated types: uploads by size with progress, idempotent creates,
 * waiting with backoff, paging as an async iterator, typed errors. `index.ts` (browser) and `node.ts`
 * pick the transport; everything else is here.
 */
import createFetchClient, { type Client as FetchClient } from "openapi-fetch";

import { ApiError, NetworkError, UnknownFormatError, UploadError, WaitTimeoutError, apiErrorFrom } from "./errors.js";
import { DEFAULT_RETRY, type Retries, type RetryPolicy, sleep, withRetries } from "./retry.js";
import type { paths } from "./schema.js";
import { MIME_TYPES, type Transport, type TransportResponse, detectFormat } from "./transport.js";
import {
  type BlueprintFormat,
  type CreatedJob,
  type ErasedJob,
  type Feedback,
  type FeedbackRequest,
  type Health,
  type Job,
  type JobList,
  type JobResult,
  type JobStatus,
  type Upload,
  type Webhook,
  type WebhookEventType,
  isFinal,
} from "./types.js";

/** Files up to this size go in the create request itself; larger ones through a presigned upload. The
 * transport carries 6,291,456 bytes of Lambda payload, in which a file travels base64-encoded (~4.5 MB). */
export const DIRECT_LIMIT_BYTES = 4 * 1024 * 1024;

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:3000` (`make run`) or a stack's `ApiUrl`. */
  baseUrl: string;
  apiKey: string;
  /** Carries file uploads; the entry points choose XHR (browser) or `node:http` (Node). */
  transport: Transport;
  /** For every other call (default: the global `fetch`). */
  fetch?: typeof fetch;
  retry?: Partial<RetryPolicy>;
  directLimitBytes?: number;
  /** Sent as `X-Correlation-ID` on every request. */
  correlationId?: string;
}

export interface UploadProgress {
  path: "direct" | "presigned";
  /** `uploading` while bytes go out, `creating` while the API makes the job, `done` with the job. */
  phase: "uploading" | "creating" | "done";
  /** Bytes of the file sent, of `total` (its size). */
  loaded: number;
  total: number;
}

export interface CreateJobOptions {
  onProgress?: (progress: UploadProgress) => void;
  /** One logical create; reused on every retry. Default: a fresh UUID per `createJob` call. At most 247
   * characters (a presigned create derives `<key>.upload` and `<key>.job` from it). */
  idempotencyKey?: string;
  /** Default: the `File`'s name, else `blueprint`. */
  filename?: string;
  /** Default: from the file's bytes, type or name. */
  format?: BlueprintFormat;
  /** `auto` (default) sends files up to `directLimitBytes` directly, larger ones through an upload. */
  strategy?: "auto" | "direct" | "presigned";
  signal?: AbortSignal;
}

export interface CreateJobResult {
  job: CreatedJob;
  path: "direct" | "presigned";
  /** The API replayed an earlier answer for this Idempotency-Key (`Idempotent-Replayed: true`). */
  replayed: boolean;
  requestId: string | null;
  idempotencyKey: string;
}

export interface ListFilters {
  status?: JobStatus;
  createdAfter?: string;
  createdBefore?: string;
  /** Jobs per request, 1..100 (default: the API's, 20). */
  pageSize?: number;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Give up after this long (default 10 minutes) with `WaitTimeoutError`. */
  timeoutMs?: number;
  /** The first pause between polls (default 500 ms), growing by `factor` (1.6) up to `maxDelayMs` (5 s);
   * it starts over whenever the job changes. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** Called with the job each time its status, progress or stage changes (the first read included). */
  onUpdate?: (job: Job) => void;
  signal?: AbortSignal;
}

type Envelope<T> = { data: T };
type FetchResult = { data?: unknown; error?: unknown; response: Response };

function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function s3ErrorCode(xml: string): string | null {
  return /<Code>([^<]+)<\/Code>/.exec(xml)?.[1] ?? null;
}

export class LocationDetectionClient {
  /** The generated, typed calls (openapi-fetch), for anything the methods below do not cover. */
  readonly api: FetchClient<paths>;
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly transport: Transport;
  private readonly fetchImpl: typeof fetch;
  private readonly retry: RetryPolicy;
  private readonly directLimit: number;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.headers = { "X-API-Key": options.apiKey, Accept: "application/json" };
    if (options.correlationId) this.headers["X-Correlation-ID"] = options.correlationId;
    this.transport = options.transport;
    // Unbound `fetch` throws "Illegal invocation" in browsers.
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.directLimit = options.directLimitBytes ?? DIRECT_LIMIT_BYTES;
    this.api = createFetchClient<paths>({ baseUrl: this.baseUrl, headers: this.headers, fetch: this.fetchImpl });
  }

  // ------------------------------------------------------------------------------------------ jobs
  async createJob(file: Blob, options: CreateJobOptions = {}): Promise<CreateJobResult> {
    const key = options.idempotencyKey ?? newIdempotencyKey();
    if (key.length > 247) throw new RangeError("idempotencyKey: at most 247 characters");
    const filename = options.filename ?? (file as Partial<File>).name ?? "blueprint";
    const strategy = options.strategy ?? "auto";
    const path = strategy === "auto" ? (file.size <= this.directLimit ? "direct" : "presigned") : strategy;
    const format = options.format ?? (await detectFormat(file, filename));
    const report = (phase: UploadProgress["phase"], loaded: number) =>
      options.onProgress?.({ path, phase, loaded, total: file.size });
    const created =
      path === "direct"
        ? await this.createDirect(file, filename, format, key, report, options.signal)
        : await this.createPresigned(file, filename, format, key, report, options.signal);
    report("done", file.size);
    return { ...created, path, idempotencyKey: key };
  }

  async getJob(jobId: string, signal?: AbortSignal): Promise<Job> {
    return this.call<Job>(
      "idempotent",
      () => this.api.GET("/api/v1/jobs/{job_id}", { params: { path: { job_id: jobId } }, signal }),
      signal,
    );
  }

  /** Idempotent: cancelling a cancelled job answers the job again. A finished job is 409 `JOB_ALREADY_COMPLETED`. */
  async cancelJob(jobId: string, signal?: AbortSignal): Promise<Job> {
    return this.call<Job>(
      "idempotent",
      () => this.api.DELETE("/api/v1/jobs/{job_id}", { params: { path: { job_id: jobId } }, signal }),
      signal,
    );
  }

  async listJobsPage(filters: ListFilters & { cursor?: string | null } = {}): Promise<JobList> {
    const query = {
      ...(filters.status ? { status: filters.status } : {}),
      ...(filters.createdAfter ? { created_after: filters.createdAfter } : {}),
      ...(filters.createdBefore ? { created_before: filters.createdBefore } : {}),
      ...(filters.pageSize ? { limit: filters.pageSize } : {}),
      ...(filters.cursor ? { cursor: filters.cursor } : {}),
    };
    return this.call<JobList>(
      "idempotent",
      () => this.api.GET("/api/v1/jobs", { params: { query }, signal: filters.signal }),
      filters.signal,
    );
  }

  /** Every job matching the filters, newest first, fetching pages as the loop needs them. */
  async *listJobs(filters: ListFilters = {}): AsyncGenerator<Job, void, undefined> {
    let cursor: string | null = null;
    do {
      const page: JobList = await this.listJobsPage({ ...filters, cursor });
      yield* page.jobs;
      cursor = page.next_cursor;
    } while (cursor);
  }

  /** Polls until the job is completed, failed or cancelled, and returns it (whatever the final status). */
  async waitForJob(jobId: string, options: WaitOptions = {}): Promise<Job> {
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const initial = options.initialDelayMs ?? 500;
    const maxDelay = options.maxDelayMs ?? 5_000;
    const factor = options.factor ?? 1.6;
    const deadline = Date.now() + timeoutMs;
    let delay = initial;
    let seen = "";
    for (;;) {
      const job = await this.getJob(jobId, options.signal);
      const state = `${job.status}|${job.progress ?? ""}|${job.stage ?? ""}`;
      if (state !== seen) {
        seen = state;
        delay = initial;
        options.onUpdate?.(job);
      }
      if (isFinal(job.status)) return job;
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(jobId, job.status, Math.round(timeoutMs / 1000));
      await sleep(Math.min(delay, left), options.signal);
      delay = Math.min(maxDelay, delay * factor);
    }
  }

  /** Only for `completed` jobs; anything else is 409 `JOB_NOT_COMPLETED`. Not retried on a lost answer. */
  async submitFeedback(jobId: string, feedback: FeedbackRequest, signal?: AbortSignal): Promise<Feedback> {
    return this.call<Feedback>(
      "once",
      () =>
        this.api.POST("/api/v1/jobs/{job_id}/feedback", {
          params: { path: { job_id: jobId } },
          body: feedback,
          signal,
        }),
      signal,
    );
  }

  /** The result JSON of a completed job, read from its presigned `result_url` (no API key goes to S3). */
  async getResult(job: Job | string, signal?: AbortSignal): Promise<JobResult> {
    const current = typeof job === "string" || !job.result_url ? await this.getJob(this.jobIdOf(job), signal) : job;
    if (!current.result_url) {
      throw new ApiError({
        status: 409,
        code: "JOB_NOT_COMPLETED",
        message: `job ${current.job_id} is ${current.status}: only a completed job has a result`,
        details: { status: current.status },
      });
    }
    const url = current.result_url;
    const response = await this.send(() => this.fetchImpl(url, { signal: signal ?? null }), url);
    if (!response.ok) throw new UploadError(response.status, s3ErrorCode(await response.text()), "result download failed");
    return (await response.json()) as JobResult;
  }

  /**
   * Contract, "Erasure": removes everything stored for the job; afterwards it is 404 like any unknown job.
   * A pending or processing job is cancelled first; an erasure cut short by a 503 is finished by calling
   * this again, which this does itself: an answered 503 or 409 `CONFLICT` is retried (as are 429 and 409
   * `IDEMPOTENCY_IN_PROGRESS`), a lost answer or a 500 is not, since the retry would read 404 for a job that
   * is gone. (`POST /api/v1/jobs/{job_id}/erase`.)
   */
  async eraseJob(jobId: string, signal?: AbortSignal): Promise<ErasedJob> {
    return this.request<ErasedJob>("POST", `/api/v1/jobs/${encodeURIComponent(jobId)}/erase`, undefined, "resumable", signal);
  }

  async health(signal?: AbortSignal): Promise<Health> {
    // 503 carries a success envelope with status "unhealthy": that is an answer, not an error.
    const { data, response } = await this.send(() => this.api.GET("/health", { signal }), `${this.baseUrl}/health`);
    if (response.status === 200 || response.status === 503) return (data as Envelope<Health>).data;
    throw apiErrorFrom(response.status, response.headers, data);
  }

  // -------------------------------------------------------------------------- webhooks (contract)
  /** Contract, "Events and webhooks" (the API serves them from issue 17 on). The `secret` is shown only here. */
  async createWebhook(
    body: { url: string; events?: WebhookEventType[]; description?: string },
    signal?: AbortSignal,
  ): Promise<Webhook> {
    return this.request<Webhook>("POST", "/api/v1/webhooks", body, "once", signal);
  }

  async listWebhooks(signal?: AbortSignal): Promise<Webhook[]> {
    const data = await this.request<{ webhooks: Webhook[] }>("GET", "/api/v1/webhooks", undefined, "idempotent", signal);
    return data.webhooks;
  }

  async deleteWebhook(webhookId: string, signal?: AbortSignal): Promise<Webhook> {
    const path = `/api/v1/webhooks/${encodeURIComponent(webhookId)}`;
    return this.request<Webhook>("DELETE", path, undefined, "idempotent", signal);
  }

  // ---------------------------------------------------------------------------------- internals
  private jobIdOf(job: Job | string): string {
    return typeof job === "string" ? job : job.job_id;
  }

  private async createDirect(
    file: Blob,
    filename: string,
    format: BlueprintFormat | null,
    key: string,
    report: (phase: UploadProgress["phase"], loaded: number) => void,
    signal: AbortSignal | undefined,
  ): Promise<{ job: CreatedJob; replayed: boolean; requestId: string | null }> {
    const contentType = format ? MIME_TYPES[format] : "application/octet-stream";
    const url = `${this.baseUrl}/api/v1/jobs`;
    return withRetries(
      async () => {
        report("uploading", 0);
        const response = await this.transport({
          url,
          headers: { ...this.headers, "Idempotency-Key": key },
          fields: [],
          file: { data: file, filename, contentType },
          onProgress: (loaded, total) => {
            const sent = Math.min(file.size, Math.round((loaded / total) * file.size));
            report(loaded >= total ? "creating" : "uploading", sent);
          },
          signal,
        });
        return this.createdFrom(response);
      },
      { policy: this.retry, retries: "idempotent", signal },
    );
  }

  private async createPresigned(
    file: Blob,
    filename: string,
    format: BlueprintFormat | null,
    key: string,
    report: (phase: UploadProgress["phase"], loaded: number) => void,
    signal: AbortSignal | undefined,
  ): Promise<{ job: CreatedJob; replayed: boolean; requestId: string | null }> {
    if (!format) throw new UnknownFormatError(`${filename}: not a PNG, JPG or PDF (by its bytes, type or name)`);
    const upload = await this.call<Upload>(
      "idempotent",
      () =>
        this.api.POST("/api/v1/uploads", {
          body: { filename, format, size: file.size },
          headers: { "Idempotency-Key": `${key}.upload` },
          signal,
        }),
      signal,
    );
    await withRetries(
      async () => {
        report("uploading", 0);
        const response = await this.transport({
          url: upload.url,
          headers: {},
          fields: Object.entries(upload.fields),
          file: { data: file, filename, contentType: MIME_TYPES[format] },
          onProgress: (loaded, total) => report("uploading", Math.min(file.size, Math.round((loaded / total) * file.size))),
          signal,
        });
        if (response.status < 200 || response.status >= 300) {
          const error = new UploadError(response.status, s3ErrorCode(response.text), "S3 refused the upload");
          // S3's 5xx are worth another try (the object key is the same: a retry overwrites).
          if (response.status >= 500) throw new NetworkError(error.message, { cause: error });
          throw error;
        }
      },
      { policy: this.retry, retries: "idempotent", signal },
    );
    report("creating", file.size);
    const url = `${this.baseUrl}/api/v1/jobs`;
    return withRetries(
      async () => {
        const response = await this.send(
          () =>
            this.fetchImpl(url, {
              method: "POST",
              headers: { ...this.headers, "Content-Type": "application/json", "Idempotency-Key": `${key}.job` },
              body: JSON.stringify({ blueprint: { upload_id: upload.upload_id } }),
              signal: signal ?? null,
            }),
          url,
        );
        return this.createdFrom({ status: response.status, headers: response.headers, text: await response.text() });
      },
      { policy: this.retry, retries: "idempotent", signal },
    );
  }

  private createdFrom(response: TransportResponse): { job: CreatedJob; replayed: boolean; requestId: string | null } {
    const body = parseJson(response.text);
    if (response.status !== 201) throw apiErrorFrom(response.status, response.headers, body);
    return {
      job: (body as Envelope<CreatedJob>).data,
      replayed: response.headers.get("idempotent-replayed") === "true",
      requestId: response.headers.get("x-request-id"),
    };
  }

  /** One call through openapi-fetch, with retries (an abort ends a wait between them); returns the
   * envelope's `data` or throws `ApiError`. */
  private async call<T>(
    retries: Retries,
    operation: () => Promise<FetchResult>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    return withRetries(
      async () => {
        const { data, error, response } = await this.send(operation, this.baseUrl);
        if (error !== undefined || !response.ok) throw apiErrorFrom(response.status, response.headers, error ?? data);
        return (data as Envelope<T>).data;
      },
      { policy: this.retry, retries, signal },
    );
  }

  /** A route the OpenAPI document does not list yet (contract-only): plain fetch, the same envelope rules. */
  private async request<T>(
    method: string,
    path: string,
    body: unknown,
    retries: Retries,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const url = `${this.baseUrl}${path}`;
    return withRetries(
      async () => {
        const response = await this.send(
          () =>
            this.fetchImpl(url, {
              method,
              headers: body === undefined ? this.headers : { ...this.headers, "Content-Type": "application/json" },
              body: body === undefined ? null : JSON.stringify(body),
              signal: signal ?? null,
            }),
          url,
        );
        const parsed = parseJson(await response.text());
        if (!response.ok) throw apiErrorFrom(response.status, response.headers, parsed);
        return (parsed as Envelope<T>).data;
      },
      { policy: this.retry, retries, signal },
    );
  }

  /** Runs a fetch; a rejection (no answer at all) becomes `NetworkError`, an abort stays an abort. */
  private async send<R>(operation: () => Promise<R>, url: string): Promise<R> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof Error && error.name === "AbortError") throw error;
      throw new NetworkError(`request to ${url} failed: ${String(error)}`, { cause: error });
    }
  }
}
