/**
 * The public types of the client. Everything the OpenAPI document describes comes from the generated
 * `schema.d.ts` (`npm run generate`); what the contract promises but the API does not serve yet (job
 * timing and progress, webhooks) is written here by hand from `shared/API_CONTRACT.md`, and gives way to
 * the generated types once `src/api/openapi.json` carries it (as erasure did).
 */
import type { components } from "./schema.js";

type Schemas = components["schemas"];

export type JobStatus = Schemas["JobStatus"];
export type ErrorCode = Schemas["ErrorCode"];
export type BlueprintFormat = "png" | "jpg" | "pdf";

/** Set by the pipeline (contract, "Timing and progress"); absent or null until the API sets them. */
export interface JobTiming {
  started_at?: string | null;
  finished_at?: string | null;
  /** 0..100, never goes down, 100 when completed. */
  progress?: number | null;
  /** A short pipeline-defined name such as "preprocessing". */
  stage?: string | null;
}

export type Job = Schemas["Job"] & JobTiming;
export type CreatedJob = Schemas["CreatedJob"] & JobTiming;
export type JobList = { jobs: Job[]; next_cursor: string | null };
export type Upload = Schemas["Upload"];
export type Feedback = Schemas["Feedback"];
export type FeedbackRequest = Schemas["FeedbackRequest"];
export type Health = Schemas["Health"];
export type Preview = Schemas["Preview"];

/** `POST /api/v1/jobs/{job_id}/erase` (contract, "Erasure"). */
export type ErasedJob = Schemas["ErasedJob"];

export type WebhookEventType =
  | "job.created"
  | "job.processing"
  | "job.progress"
  | "job.completed"
  | "job.failed"
  | "job.cancelled"
  | "job.erased";

/** A webhook as the contract's `GET /api/v1/webhooks` lists it (`secret` only in the create answer). */
export interface Webhook {
  webhook_id: string;
  url: string;
  events: WebhookEventType[];
  description?: string | null;
  created_at: string;
  secret?: string;
}

/** The body of a webhook delivery (Standard Webhooks: `{type, timestamp, data}`). */
export interface WebhookEvent {
  type: WebhookEventType;
  timestamp: string;
  data: { job: Partial<Job> & { job_id: string } };
}

export const FINAL_STATUSES: readonly JobStatus[] = ["completed", "failed", "cancelled"];

export function isFinal(status: JobStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

/** A room of a pipeline result (`examples/result.json`); other keys are kept as they come. */
export interface Room {
  id?: string;
  label?: string;
  polygon?: [number, number][];
  area_m2?: number;
  [key: string]: unknown;
}

export interface JobResult {
  model_version: string;
  rooms: Room[];
  [key: string]: unknown;
}
