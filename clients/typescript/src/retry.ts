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
 * Whether a failed attempt may be repeated. `idempotent` requests (GET, DELETE, and creates carrying an
 * `Idempotency-Key`) retry network errors and 5xx too; anything else only what the API refused before
 * doing anything (429, 409 `IDEMPOTENCY_IN_PROGRESS`).
 */
export function isRetryable(error: unknown, idempotent: boolean): boolean {
  if (error instanceof NetworkError) return idempotent;
  if (!(error instanceof ApiError)) return false;
  if (error.status === 429 || error.code === "IDEMPOTENCY_IN_PROGRESS") return true;
  if (error.code === "CONFLICT") return idempotent; // "a concurrent update won; safe to retry"
  return idempotent && [500, 502, 503, 504].includes(error.status);
}

/** The wait before the next attempt: the server's `Retry-After` when it gave one, else our backoff. */
export function delayBeforeRetry(error: unknown, attempt: number, policy: RetryPolicy): number | null {
  const retryAfter = error instanceof ApiError ? error.retryAfterSeconds : null;
  if (retryAfter !== null) return retryAfter > policy.maxRetryAfterSeconds ? null : retryAfter * 1000;
  return backoffMs(attempt, policy);
}

export async function withRetries<T>(
  operation: (attempt: number) => Promise<T>,
  options: { policy: RetryPolicy; idempotent: boolean; signal?: AbortSignal | undefined },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= options.policy.attempts || !isRetryable(error, options.idempotent)) throw error;
      const delay = delayBeforeRetry(error, attempt, options.policy);
      if (delay === null) throw error;
      await sleep(delay, options.signal);
    }
  }
}
