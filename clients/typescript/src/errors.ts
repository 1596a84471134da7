/**
 * Errors as typed objects. `ApiError` is any answer the API refused, carrying the envelope's `code`,
 * `message`, `details` and request id; the others are failures on the way (network, S3, waiting).
 */
import type { ErrorCode } from "./types.js";

/** A code of the contract, or one a newer API sends that this client does not know yet. */
export type AnyErrorCode = ErrorCode | (string & {});

export class LocationDetectionError extends Error {
  override name = "LocationDetectionError";
}

export interface ApiErrorInit {
  status: number;
  code: AnyErrorCode;
  message: string;
  details?: Record<string, unknown> | undefined;
  requestId?: string | null | undefined;
  correlationId?: string | null | undefined;
  retryAfterSeconds?: number | null | undefined;
}

/** The API answered with an error envelope (or, for a gateway's own answer, the closest code). */
export class ApiError extends LocationDetectionError {
  override name = "ApiError";
  readonly status: number;
  readonly code: AnyErrorCode;
  readonly details: Record<string, unknown>;
  readonly requestId: string | null;
  readonly correlationId: string | null;
  /** From `Retry-After` (429, 503, 409 `IDEMPOTENCY_IN_PROGRESS`), in seconds. */
  readonly retryAfterSeconds: number | null;

  constructor(init: ApiErrorInit) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.details = init.details ?? {};
    this.requestId = init.requestId ?? null;
    this.correlationId = init.correlationId ?? null;
    this.retryAfterSeconds = init.retryAfterSeconds ?? null;
  }
}

/** The request never got an answer (connection refused or reset, DNS, CORS refusal in a browser). */
export class NetworkError extends LocationDetectionError {
  override name = "NetworkError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** S3 refused the presigned upload (its answer is XML, not our envelope). */
export class UploadError extends LocationDetectionError {
  override name = "UploadError";
  readonly status: number;
  /** S3's own error code, e.g. `EntityTooLarge`, `AccessDenied`. */
  readonly s3Code: string | null;
  constructor(status: number, s3Code: string | null, message: string) {
    super(message);
    this.status = status;
    this.s3Code = s3Code;
  }
}

/** `waitForJob` gave up before the job reached a final status. */
export class WaitTimeoutError extends LocationDetectionError {
  override name = "WaitTimeoutError";
  readonly jobId: string;
  readonly lastStatus: string | null;
  constructor(jobId: string, lastStatus: string | null, seconds: number) {
    super(`job ${jobId} did not finish within ${seconds} s (last status: ${lastStatus ?? "unknown"})`);
    this.jobId = jobId;
    this.lastStatus = lastStatus;
  }
}

/** The file is none of PNG, JPG or PDF by its bytes, type or name (only where the format must be declared). */
export class UnknownFormatError extends LocationDetectionError {
  override name = "UnknownFormatError";
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: "INVALID_REQUEST",
  401: "UNAUTHORIZED",
  404: "NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  422: "IDEMPOTENCY_KEY_REUSED",
  429: "RATE_LIMITED",
  503: "SERVICE_UNAVAILABLE",
};

/** `Retry-After` as seconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

interface HeaderSource {
  get(name: string): string | null;
}

/** The `ApiError` for a non-2xx answer: the envelope when there is one, else a code from the status. */
export function apiErrorFrom(status: number, headers: HeaderSource, body: unknown): ApiError {
  const envelope = body as
    | { error?: { code?: unknown; message?: unknown; details?: unknown }; meta?: { request_id?: unknown } }
    | null
    | undefined;
  const error = envelope?.error;
  const gatewayMessage = (body as { message?: unknown } | null)?.message;
  const code =
    typeof error?.code === "string"
      ? error.code
      : (CODE_BY_STATUS[status] ?? (status >= 500 ? "INTERNAL_ERROR" : "INVALID_REQUEST"));
  const message =
    typeof error?.message === "string"
      ? error.message
      : typeof gatewayMessage === "string"
        ? gatewayMessage
        : `HTTP ${status}`;
  const details =
    error?.details && typeof error.details === "object" ? (error.details as Record<string, unknown>) : undefined;
  const metaId = envelope?.meta?.request_id;
  return new ApiError({
    status,
    code,
    message,
    details,
    requestId: typeof metaId === "string" ? metaId : headers.get("x-request-id"),
    correlationId: headers.get("x-correlation-id"),
    retryAfterSeconds: parseRetryAfter(headers.get("retry-after")),
  });
}
