/**
 * The explorer page (`GET /` of the local API): a key, uploads with progress, the caller's jobs kept
 * fresh by polling with backoff, cancel, and a completed job's rooms drawn over its blueprint. Built on
 * the TypeScript client, no framework; `npm run bundle` inlines it into one HTML document.
 *
 * The API has no blueprint download, so the page keeps each file dropped here in memory (by job id) to
 * draw on; for a job from an earlier session, or a PDF, it draws the rooms on a blank sheet instead.
 */
import * as ld from "../src/index.js";
import {
  ApiError,
  type Job,
  type JobResult,
  type LocationDetectionClient,
  LocationDetectionError,
  type UploadProgress,
  createClient,
  isFinal,
} from "../src/index.js";
import { roomsSvg, sheetFrame } from "./overlay.js";

const KEY_STORAGE = "ld-explorer-api-key";
const POLL_FIRST_MS = 1_000;
const POLL_MAX_MS = 10_000;
const POLL_IDLE_MS = 15_000;

const $ = <T extends HTMLElement = HTMLElement>(selector: string): T => {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`missing ${selector}`);
  return found;
};

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

let client: LocationDetectionClient | null = null;
let jobs: Job[] = [];
const blueprints = new Map<string, Blob>();
let pollTimer: ReturnType<typeof setTimeout> | undefined;
let pollDelay = POLL_FIRST_MS;
let lastSignature = "";

function describe(error: unknown): string {
  if (error instanceof ApiError) {
    return `${error.code} (${error.status}): ${error.message}${error.requestId ? ` — request ${error.requestId}` : ""}`;
  }
  if (error instanceof LocationDetectionError) return error.message;
  return String(error);
}

function say(text: string): void {
  $("#message").textContent = text;
}

function seconds(from: string, to: string | number): string {
  const end = typeof to === "number" ? to : Date.parse(to);
  return `${Math.max(0, Math.round((end - Date.parse(from)) / 1000))} s`;
}

function timing(job: Job): string {
  if (!job.started_at) return job.status === "pending" ? `waiting ${seconds(job.created_at, Date.now())}` : "—";
  if (job.finished_at) return `ran ${seconds(job.started_at, job.finished_at)}`;
  return `running ${seconds(job.started_at, Date.now())}`;
}

function progressCell(job: Job): HTMLTableCellElement {
  const cell = el("td", { "data-testid": "progress" });
  if (typeof job.progress === "number") {
    cell.append(el("progress", { max: "100", value: String(job.progress) }), ` ${job.progress}%`);
  }
  if (job.stage) cell.append(" ", el("span", { class: "muted" }, job.stage));
  if (!cell.childNodes.length) cell.append("—");
  return cell;
}

function jobRow(job: Job): HTMLTableRowElement {
  const actions = el("td");
  if (job.status === "pending" || job.status === "processing") {
    const cancel = el("button", { type: "button", class: "small danger", "data-action": "cancel" }, "Cancel");
    cancel.addEventListener("click", () => void cancelJob(job.job_id));
    actions.append(cancel);
  }
  if (job.status === "completed") {
    const open = el("button", { type: "button", class: "small secondary", "data-action": "result" }, "Result");
    open.addEventListener("click", () => void showResult(job.job_id));
    actions.append(open);
  }
  if (job.status === "failed" && job.error) actions.append(el("span", { class: "muted" }, `${job.error.code}: ${job.error.message}`));
  const created = new Date(job.created_at).toLocaleString();
  return el(
    "tr",
    { "data-job-id": job.job_id, "data-status": job.status },
    el("td", { title: job.job_id }, job.blueprint_filename, el("br"), el("code", { class: "muted" }, job.job_id)),
    el("td", {}, el("span", { class: `status ${job.status}`, "data-testid": "status" }, job.status)),
    el("td", {}, created),
    el("td", { "data-testid": "timing" }, timing(job)),
    progressCell(job),
    actions,
  );
}

function renderJobs(): void {
  $("#jobs tbody").replaceChildren(...jobs.map(jobRow));
  $("#no-jobs").hidden = jobs.length > 0;
}

function schedule(changed: boolean): void {
  clearTimeout(pollTimer);
  const active = jobs.some((job) => !isFinal(job.status));
  pollDelay = !active ? POLL_IDLE_MS : changed ? POLL_FIRST_MS : Math.min(POLL_MAX_MS, pollDelay * 1.5);
  $("#poll").textContent = `refreshing every ${Math.round(pollDelay / 100) / 10} s${active ? "" : " (no job running)"}`;
  pollTimer = setTimeout(() => void refresh(), pollDelay);
}

async function refresh(): Promise<void> {
  if (!client) return;
  try {
    const page = await client.listJobsPage({ pageSize: 50 });
    jobs = page.jobs;
    const signature = jobs.map((j) => `${j.job_id}:${j.status}:${j.progress ?? ""}:${j.stage ?? ""}`).join(",");
    const changed = signature !== lastSignature;
    lastSignature = signature;
    renderJobs();
    schedule(changed);
  } catch (error) {
    say(describe(error));
    if (error instanceof ApiError && error.status === 401) {
      clearTimeout(pollTimer);
      $("#poll").textContent = "stopped: the key was refused";
      return;
    }
    schedule(false);
  }
}

function useKey(key: string): void {
  sessionStorage.setItem(KEY_STORAGE, key);
  client = createClient({ baseUrl: window.location.origin, apiKey: key });
  say("");
  lastSignature = "";
  void refresh();
}

function uploadRow(file: File): { row: HTMLLIElement; update: (p: UploadProgress) => void; state: (t: string) => void } {
  const bar = el("progress", { max: String(Math.max(1, file.size)), value: "0" });
  const state = el("span", { class: "muted", "data-testid": "upload-state" }, "starting…");
  const size = file.size < 1024 ? `${file.size} B` : file.size < 1 << 20 ? `${(file.size / 1024).toFixed(0)} KB` : `${(file.size / (1 << 20)).toFixed(1)} MB`;
  const row = el("li", { "data-file": file.name }, el("span", {}, `${file.name} (${size})`), bar, state);
  return {
    row,
    update: (p) => {
      bar.value = p.loaded;
      const phase = p.phase === "uploading" ? `uploading (${p.path})` : p.phase === "creating" ? "creating the job" : "done";
      state.textContent = `${phase} ${Math.round((100 * p.loaded) / Math.max(1, p.total))}%`;
      row.dataset.path = p.path;
    },
    state: (text) => {
      state.textContent = text;
    },
  };
}

async function upload(files: FileList | File[]): Promise<void> {
  if (!client) {
    say("Paste an API key first.");
    return;
  }
  const current = client;
  await Promise.all(
    Array.from(files).map(async (file) => {
      const view = uploadRow(file);
      $("#uploads").prepend(view.row);
      try {
        const created = await current.createJob(file, { onProgress: view.update });
        blueprints.set(created.job.job_id, file);
        view.row.dataset.jobId = created.job.job_id;
        view.state(`created ${created.job.job_id}${created.replayed ? " (replayed)" : ""}`);
        lastSignature = "";
        void refresh();
      } catch (error) {
        view.row.dataset.error = error instanceof ApiError ? error.code : "error";
        view.state(describe(error));
      }
    }),
  );
}

async function cancelJob(jobId: string): Promise<void> {
  if (!client) return;
  try {
    await client.cancelJob(jobId);
  } catch (error) {
    say(describe(error));
  }
  void refresh();
}

function imageFrame(blob: Blob, result: JobResult): Promise<HTMLElement> {
  return new Promise((resolve, reject) => {
    const img = el("img", { alt: "the blueprint" });
    img.onload = () => {
      const frame = { width: img.naturalWidth, height: img.naturalHeight };
      resolve(el("div", { class: "figure" }, img, roomsSvg(result, frame, "overlay")));
    };
    img.onerror = () => reject(new Error("the browser could not decode the blueprint"));
    img.src = URL.createObjectURL(blob);
  });
}

async function showResult(jobId: string): Promise<void> {
  if (!client) return;
  try {
    const job = await client.getJob(jobId);
    const result = await client.getResult(job);
    const blob = blueprints.get(jobId);
    const view = $("#result-view");
    view.replaceChildren();
    let note: string;
    if (blob && job.blueprint_format !== "pdf") {
      view.append(await imageFrame(blob, result));
      note = "Rooms drawn over the blueprint you dropped in this page.";
    } else {
      view.append(roomsSvg(result, sheetFrame(result.rooms), "sheet"));
      if (blob && navigator.pdfViewerEnabled) {
        view.append(el("object", { class: "pdf", type: "application/pdf", data: URL.createObjectURL(blob) }));
        note = "A PDF cannot be drawn on by the page: the rooms on a sheet, the PDF beside them.";
      } else {
        note = blob
          ? "This browser cannot show the PDF: the rooms on a sheet, and as a table."
          : "The blueprint was not dropped in this page (the API has no blueprint download): the rooms on a sheet.";
      }
    }
    $("#result-title").textContent = `Result of ${job.blueprint_filename} — ${result.model_version}`;
    $("#result-note").textContent = note;
    $("#rooms tbody").replaceChildren(
      ...result.rooms.map((room) =>
        el(
          "tr",
          {},
          el("td", {}, String(room.id ?? "")),
          el("td", {}, String(room.label ?? "")),
          el("td", {}, room.area_m2 === undefined ? "—" : String(room.area_m2)),
          el("td", {}, String(Array.isArray(room.polygon) ? room.polygon.length : 0)),
        ),
      ),
    );
    const section = $("#result");
    section.hidden = false;
    section.dataset.jobId = jobId;
    section.scrollIntoView({ block: "nearest" });
  } catch (error) {
    say(describe(error));
  }
}

async function showHealth(): Promise<void> {
  const target = $("#health");
  try {
    const health = await createClient({ baseUrl: window.location.origin, apiKey: "" }).health();
    target.textContent = `API ${health.status}`;
  } catch (error) {
    target.textContent = `health: ${describe(error)}`;
  }
}

function start(): void {
  const keyInput = $<HTMLInputElement>("#api-key");
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (keyInput.value.trim()) useKey(keyInput.value.trim());
  });
  const drop = $("#drop");
  const input = $<HTMLInputElement>("#files");
  input.addEventListener("change", () => {
    if (input.files?.length) void upload(Array.from(input.files)).finally(() => (input.value = ""));
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer?.files.length) void upload(event.dataTransfer.files);
  });
  $("#refresh").addEventListener("click", () => {
    lastSignature = "";
    void refresh();
  });
  $("#close-result").addEventListener("click", () => {
    $("#result").hidden = true;
  });
  void showHealth();
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) {
    keyInput.value = saved;
    useKey(saved);
  }
}

// The client itself, for the devtools console: `const c = ld.createClient({baseUrl: location.origin, apiKey: "ldk_..."})`.
Object.assign(window, { ld });
start();
