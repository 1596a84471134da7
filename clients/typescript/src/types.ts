/**
 * The public types of the client. Everything the OpenAPI document describes comes from the generated
 * `schema.d.ts` (`npm run generate`), job timing and progress included; what the contract promises but
 * the OpenAPI document does not list yet (webhooks) is written here by hand from `shared/API_CONTRACT.md`,
 * and gives way to the generated types once `src/api/openapi.json` carries it (as erasure and timing did).
 */
import type { components } from "./schema.js";

type Schemas = components["schemas"];

export type JobStatus = Schemas["JobStatus"];
export type ErrorCode = Schemas["ErrorCode"];
export type BlueprintFormat = "png" | "jpg" | "pdf";

/** Set by the pipeline through the job service (contract, "Timing and progress"): null until set. */
export type JobTiming = Pick<Schemas["JobFields"], "started_at" | "finished_at" | "progress" | "stage">;

export type Job = Schemas["Job"];
export type CreatedJob = Schemas["CreatedJob"];
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
