/** When and how long to wait before trying again. */
import { ApiError, NetworkError } from "./errors.js";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The first backoff, doubled each time (with full jitter), at most `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited for: the error is thrown. */
  maxRetryAfterSeconds: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 8_000, maxRetryAfterSeconds: 60 };

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function backoffMs(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * Which failures a request may repeat: `idempotent` (GET, DELETE, and creates carrying an
 * `Idempotency-Key`) retries network errors, 5xx and 409 `CONFLICT`; `resumable` (an erasure, which the
 * next call finishes) only an answered 503 or 409 `CONFLICT`, never a lost answer or a 500 (the job may be
 * gone, and the retry would read 404); `once` only what the API refused before doing anything (429, 409
 * `IDEMPOTENCY_IN_PROGRESS`), as every kind does.
 */
export type Retries = "idempotent" | "resumable" | "once";

export function isRetryable(error: unknown, retries: Retries): boolean {
  if (error instanceof NetworkError) return retries === "idempotent";
  if (!(error instanceof ApiError)) return false;
  if (error.status === 429 || error.code === "IDEMPOTENCY_IN_PROGRESS") return true;
  if (error.code === "CONFLICT") return retries !== "once"; // "a concurrent update won; safe to retry"
  if (retries === "resumable") return error.status === 503;
  return retries === "idempotent" && [500, 502, 503, 504].includes(error.status);
}

/** The wait before the next attempt: the server's `Retry-After` when it gave one, else our backoff. */
export function delayBeforeRetry(error: unknown, attempt: number, policy: RetryPolicy): number | null {
  const retryAfter = error instanceof ApiError ? error.retryAfterSeconds : null;
  if (retryAfter !== null) return retryAfter > policy.maxRetryAfterSeconds ? null : retryAfter * 1000;
  return backoffMs(attempt, policy);
}

export async function withRetries<T>(
  operation: (attempt: number) => Promise<T>,
  options: { policy: RetryPolicy; retries: Retries; signal?: AbortSignal | undefined },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= options.policy.attempts || !isRetryable(error, options.retries)) throw error;
      const delay = delayBeforeRetry(error, attempt, options.policy);
      if (delay === null) throw error;
      await sleep(delay, options.signal);
    }
  }
}
