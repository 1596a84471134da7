"""New jobs: checking a file, storing it, recording the job, never one without the other.

A direct create (the file in the request) goes through ``create_job``; a finished upload becomes a job
through ``services.upload_service``, which uses the same steps (``new_job``, ``record_or_roll_back``,
``created``). Metrics: JobsCreated (by Format) and UploadBytes once a job is recorded.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from models.errors import Conflict
from models.ids import JOB_ID
from models.job import API_VERSION, JOB_TTL_SECONDS, Job, JobStatus, JobView, RequestInfo
from services import blueprints, retention
from services.blueprints import CONTENT_TYPES, sanitise_filename
from services.file_structure import Read, bytes_reader
from services.ids import new_id
from services.previews import PreviewService
from services.runtime_config import RuntimeConfig
from storage.blueprint_store import BlueprintKeyTaken, BlueprintStore, blueprint_key
from storage.jobs_table import JobIdTaken, JobsTable
from utils import metrics
from utils.clock import WallClock, iso_utc, wall_time
from utils.logging import bind, get_logger
from utils.metrics import Unit

#: The job lines keep the logger name they have always had (log queries select on it).
logger = get_logger("job_service")

#: How many fresh job ids to draw if one is taken (64 random bits: a second draw never happens).
ID_ATTEMPTS = 3


@dataclass(frozen=True)
class BlueprintFile:
    """A file as a client sent it: bytes plus what the client claims about them."""

    content: bytes
    declared_format: str | None = None
    filename: str | None = None


class JobCreation:
    def __init__(
        self,
        jobs_table: JobsTable,
        blueprints: BlueprintStore,
        previews: PreviewService,
        config: RuntimeConfig,
        *,
        clock: WallClock = wall_time,
        random_hex: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self.jobs_table = jobs_table
        self.blueprints = blueprints
        self.previews = previews
        self.config = config
        self._clock = clock
        self._random_hex = random_hex

    def check_size(self, size: int, field: str = "blueprint.file") -> None:
        blueprints.check_size(size, self.config.max_upload_bytes, field)

    def resolve_format(self, declared: str | None, read: Read, size: int) -> str:
        """The file's format: detected from its bytes, allowed by config, agreeing with ``declared`` and
        well-formed (``read``: the file's bytes by range)."""
        return blueprints.resolve_format(declared, read, size, self.config.allowed_formats)

    def create_job(self, blueprint: BlueprintFile, request: RequestInfo) -> JobView:
        """Validate and store the file, then record the job. Never leaves one without the other."""
        self.check_size(len(blueprint.content))
        fmt = self.resolve_format(blueprint.declared_format, bytes_reader(blueprint.content), len(blueprint.content))
        digest = hashlib.sha256(blueprint.content).digest()
        filename = sanitise_filename(blueprint.filename, fmt)
        for _ in range(ID_ATTEMPTS):
            job = self.new_job(
                self.new_job_id(),
                fmt,
                sha256_hex=digest.hex(),
                size=len(blueprint.content),
                filename=filename,
                request=request,
            )
            try:
                self.blueprints.put_new(job.blueprint_s3_key, blueprint.content, CONTENT_TYPES[fmt], digest)
            except BlueprintKeyTaken:
                continue
            if self.record_or_roll_back(job):
                return self.created(job)
        raise Conflict("Could not allocate a job id; retry the request")

    def new_job_id(self) -> str:
        return new_id(JOB_ID, self._clock(), self._random_hex())

    def new_job(
        self,
        job_id: str,
        fmt: str,
        *,
        sha256_hex: str,
        size: int,
        filename: str,
        request: RequestInfo,
        upload_id: str | None = None,
    ) -> Job:
        now = self._clock()
        stamp = iso_utc(now)
        expires_at = int(now) + JOB_TTL_SECONDS
        entry = retention.at_creation(expires_at)
        return Job(
            job_id=job_id,
            status=JobStatus.PENDING,
            created_at=stamp,
            updated_at=stamp,
            blueprint_s3_key=blueprint_key(job_id, filename),
            blueprint_format=fmt,
            blueprint_hash=sha256_hex,
            blueprint_size=size,
            blueprint_filename=filename,
            request_id=request.request_id,
            correlation_id=request.correlation_id,
            owner_id=request.client_id,
            api_version=API_VERSION,
            expires_at=expires_at,
            upload_id=upload_id,
            idempotency_record=request.idempotency_record,
            lookup_key=entry["lookup_key"],
            lookup_at=entry["lookup_at"],
        )

    def record_or_roll_back(self, job: Job) -> bool:
        """Write the record; on any failure delete the stored file first, then re-raise.

        Returns False only when the id was taken (the caller draws a new one).
        """
        try:
            self.jobs_table.put_new(job)
            return True
        except BaseException as exc:
            self._delete_orphan(job.blueprint_s3_key, exc)
            if isinstance(exc, JobIdTaken):
                return False
            raise

    def _delete_orphan(self, key: str, cause: BaseException) -> None:
        try:
            self.blueprints.delete(key)
        except Exception:
            # The bucket's 30-day lifecycle rule is the backstop; say loudly which object is left.
            logger.exception("could not delete the blueprint of an unrecorded job", extra={"s3_key": key})
        else:
            logger.warning(
                "job record not written; blueprint deleted", extra={"s3_key": key, "cause": type(cause).__name__}
            )

    def created(self, job: Job) -> JobView:
        """Log and count the new job and return it with any live preview of the same blueprint."""
        bind(job_id=job.job_id)
        logger.info("job created", extra={"format": job.blueprint_format, "size": job.blueprint_size})
        metrics.add("JobsCreated", 1, Format=job.blueprint_format)
        metrics.add("UploadBytes", job.blueprint_size, Unit.BYTES)
        return JobView(job, preview=self.previews.lookup(job.owner_id, job.blueprint_hash, self._clock()))
