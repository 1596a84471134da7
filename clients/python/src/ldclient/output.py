"""What ldclient prints: rich tables and progress bars for people, JSON for scripts (``--json``).

Data goes to stdout; progress bars, job updates and errors to stderr, so ``--json`` output stays parseable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from ldclient.errors import ApiError, ClientError, UploadRefused

JOB_FIELDS = (
    "job_id",
    "status",
    "blueprint_filename",
    "blueprint_format",
    "blueprint_size",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "progress",
    "stage",
    "error",
    "feedback_count",
    "result_url",
)


class Bars:
    """One progress bar per file on stderr (none when stderr is not a terminal)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def track(self, name: str, size: int) -> Callable[[int, int], None] | None:
        progress = self._progress
        if progress is None:
            return None
        task = progress.add_task(name, total=max(1, size))
        return lambda sent, total: progress.update(task, completed=sent, total=max(1, total))


class Output:
    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        # Not a terminal (a pipe, a file): wide enough that job ids are never cut.
        self.out = Console(soft_wrap=False) if sys.stdout.isatty() else Console(width=200)
        # Not a terminal: one line per message, never wrapped at 80 columns (a script reads them line by line).
        self.err = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

    @contextmanager
    def progress(self, enabled: bool) -> Iterator[Bars]:
        if not (enabled and self.err.is_terminal):
            yield Bars(None)
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.err) as progress:
            yield Bars(progress)

    def describe(self, error: ClientError) -> dict[str, Any]:
        if isinstance(error, ApiError):
            return error.as_dict()
        if isinstance(error, UploadRefused):
            return {"status": error.status, "code": "UPLOAD_REFUSED", "message": str(error), "s3_code": error.s3_code}
        return {"code": type(error).__name__, "message": str(error)}

    def _print_json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2) + "\n")

    def submitted(self, results: list[dict[str, Any]]) -> None:
        if self.json_mode:
            self._print_json(results)
            return
        table = Table("file", "job_id", "status", "upload", "note")
        for result in results:
            job, error = result.get("job") or {}, result.get("error")
            note = f"{error['code']}: {error['message']}" if error else ("replayed" if result.get("replayed") else "")
            table.add_row(
                result["file"], job.get("job_id", "-"), job.get("status", "-"), result.get("upload", "-"), note
            )
        self.out.print(table)

    def job(self, job: dict[str, Any]) -> None:
        if self.json_mode:
            self._print_json(job)
            return
        table = Table("field", "value", show_header=False)
        for name in JOB_FIELDS:
            if name in job:
                table.add_row(name, "" if job[name] is None else json.dumps(job[name]).strip('"'))
        self.out.print(table)

    def jobs(self, jobs: list[dict[str, Any]]) -> None:
        if self.json_mode:
            self._print_json(jobs)
            return
        table = Table("job_id", "status", "created_at", "file", "size", "progress")
        for job in jobs:
            progress = " ".join(str(v) for v in (job.get("progress"), job.get("stage")) if v is not None)
            table.add_row(
                job["job_id"],
                job["status"],
                job["created_at"],
                job["blueprint_filename"],
                str(job["blueprint_size"]),
                progress or "-",
            )
        self.out.print(table)

    def record(self, data: dict[str, Any]) -> None:
        if self.json_mode:
            self._print_json(data)
            return
        table = Table("field", "value", show_header=False)
        for name, value in data.items():
            table.add_row(name, json.dumps(value).strip('"'))
        self.out.print(table)

    def job_update(self, job: dict[str, Any]) -> None:
        if not self.json_mode:
            extra = " ".join(str(v) for v in (job.get("progress"), job.get("stage")) if v is not None)
            self.err.print(f"{job['job_id']}: {job['status']}{f' ({extra})' if extra else ''}", highlight=False)

    def error(self, error: ClientError) -> None:
        described = self.describe(error)
        if self.json_mode:
            sys.stderr.write(json.dumps({"error": described}) + "\n")
            return
        request = f" (request {described['request_id']})" if described.get("request_id") else ""
        self.err.print(f"ldclient: {described['code']}: {described['message']}{request}", highlight=False, markup=False)

    def fail(self, message: str) -> None:
        if self.json_mode:
            sys.stderr.write(json.dumps({"error": {"code": "USAGE", "message": message}}) + "\n")
        else:
            self.err.print(f"ldclient: {message}", highlight=False, markup=False)
