"""Large blueprints through S3: presigned uploads, and turning a finished upload into a job.

    POST /api/v1/uploads        -> create_upload: an id and a presigned POST (1 byte .. max, 15 minutes)
    client POSTs the file to S3
    POST /api/v1/jobs {upload_id} -> finalise: check, claim, hash, copy, record, remove the upload

Every check is made again on the object itself (size, magic bytes, content type): S3 emulators do not
enforce POST policies, and we never trust one check. The claim (a conditional put) makes an upload create
at most one job even when two finalisations race; a finalisation that fails for a reason a retry may fix
gives the claim back (one that cannot — its Lambda died — leaves a claim that lapses after two minutes:
``CLAIM_LAPSE_SECONDS``), one that fails because the file is bad deletes the upload.
"""

from __future__ import annotations

from typing import Any

from models.errors import Conflict, FileTooLarge, InvalidFileFormat, UploadNotFound
from models.ids import UPLOAD_ID, is_valid_upload_id
from models.job import JobView, RequestInfo
from services.blueprints import CONTENT_TYPES, FORMATS_BY_CONTENT_TYPE, normalise_format, sanitise_filename
from services.file_structure import with_cached_head
from services.ids import new_id
from services.job_creation import JobCreation
from services.runtime_config import RuntimeConfig
from storage.upload_claims import UploadClaims
from storage.upload_store import ObjectChanged, UploadedObject, UploadStore, upload_prefix
from utils.clock import WallClock, iso_utc, wall_time
from utils.errors import InvalidRequest
from utils.logging import get_logger

logger = get_logger("upload_service")

#: A claim outlives the upload it guards (the bucket expires ``uploads/`` after one day).
CLAIM_TTL_SECONDS = 2 * 24 * 3600
#: A claim whose job was never recorded lapses after this long, far beyond any invocation (the function's
#: timeout is 25 s): its finaliser is certainly gone and can no longer record its job.
CLAIM_LAPSE_SECONDS = 120
#: The object metadata that records the size the upload declared (``x-amz-meta-declared-size``).
DECLARED_SIZE = "declared-size"
#: What makes an upload unusable for good (it is deleted); anything else leaves it for a retry.
_BAD_FILE = (FileTooLarge, InvalidFileFormat, InvalidRequest)


class UploadService:
    def __init__(
        self,
        creation: JobCreation,
        uploads: UploadStore,
        claims: UploadClaims,
        config: RuntimeConfig,
        *,
        clock: WallClock = wall_time,
    ) -> None:
        self.creation = creation
        self.uploads = uploads
        self.claims = claims
        self.config = config
        self._clock = clock

    def create_upload(
        self, filename: str | None, declared_format: str, size: int, owner_id: str | None = None
    ) -> dict[str, Any]:
        """An upload id and the presigned POST that sends the file to ``uploads/{upload_id}/{filename}``."""
        fmt = normalise_format(declared_format)
        if fmt is None or fmt not in self.config.allowed_formats:
            raise InvalidFileFormat(
                details={"received_format": declared_format, "allowed_formats": list(self.config.allowed_formats)}
            )
        self.creation.check_size(size, field="size")
        now = self._clock()
        upload_id = new_id(UPLOAD_ID, now)
        key = upload_prefix(upload_id) + sanitise_filename(filename, fmt)
        expires_in = self.config.presign_expiry_seconds
        # The owner and the declared size ride in the object's metadata, pinned by the POST policy: only its
        # client finalises it, and only a file of the size it declared (the policy pins that too, in S3).
        metadata = {DECLARED_SIZE: str(size), **({"owner": owner_id} if owner_id else {})}
        post = self.uploads.presign_post(key, CONTENT_TYPES[fmt], size, expires_in, metadata)
        return {
            "upload_id": upload_id,
            "url": post["url"],
            "fields": post["fields"],
            "method": "POST",
            "expires_at": iso_utc(now + expires_in),
            "max_bytes": self.config.max_upload_bytes,
        }

    def finalise(self, upload_id: str, request: RequestInfo) -> JobView:
        """Create the job for a finished upload (at most one job per upload)."""
        if not is_valid_upload_id(upload_id):
            raise InvalidRequest("blueprint.upload_id is not an upload id", details={"field": "blueprint.upload_id"})
        upload = self.uploads.find(upload_id)
        if upload is None or (request.client_id is not None and upload.metadata.get("owner") != request.client_id):
            raise UploadNotFound(details={"upload_id": upload_id})
        try:
            fmt = self._checked_format(upload)
        except ObjectChanged:  # removed (or replaced) since it was found: as good as never there
            raise UploadNotFound(details={"upload_id": upload_id}) from None
        job_id = self.creation.new_job_id()
        now = int(self._clock())
        claimed = self.claims.take(
            upload_id, job_id, now=now, expires_at=now + CLAIM_TTL_SECONDS, lapse_seconds=CLAIM_LAPSE_SECONDS
        )
        if not claimed:
            raise UploadNotFound("This upload has already been used", details={"upload_id": upload_id})
        try:
            view = self._create(upload, fmt, job_id, request)
        except ObjectChanged:
            self.claims.release(upload_id, job_id)
            raise Conflict("The upload changed while it was being checked; retry") from None
        except _BAD_FILE:
            self._discard(upload)
            self.claims.release(upload_id, job_id)
            raise
        except BaseException:
            self.claims.release(upload_id, job_id)
            raise
        self._discard(upload)
        return view

    def _checked_format(self, upload: UploadedObject) -> str:
        """Size (the declared one, and the limit), magic bytes and structure, checked on the object before
        anything is claimed or copied; the structure from ranged reads of its head (and a PDF's tail)."""
        try:
            _check_declared_size(upload)
            self.creation.check_size(upload.size)
            read = with_cached_head(lambda offset, length: self.uploads.read_range(upload, offset, length))
            return self.creation.resolve_format(_declared_format(upload), read, upload.size)
        except _BAD_FILE:
            self._discard(upload)  # it can never become a job
            raise

    def _create(self, upload: UploadedObject, fmt: str, job_id: str, request: RequestInfo) -> JobView:
        digest, size = self.uploads.sha256(upload, self.config.max_upload_bytes)
        self.creation.check_size(size)
        filename = sanitise_filename(upload.filename, fmt)
        job = self.creation.new_job(
            job_id,
            fmt,
            sha256_hex=digest.hex(),
            size=size,
            filename=filename,
            request=request,
            upload_id=upload.upload_id,
        )
        self.uploads.copy(upload, job.blueprint_s3_key, CONTENT_TYPES[fmt], digest.hex())
        if not self.creation.record_or_roll_back(job):
            raise Conflict("Could not allocate a job id; retry the request")
        return self.creation.created(job)

    def _discard(self, upload: UploadedObject) -> None:
        try:
            self.uploads.delete(upload.key)
        except Exception:  # the bucket's one-day rule for uploads/ is the backstop
            logger.warning("could not delete an upload", exc_info=True, extra={"s3_key": upload.key})


def _check_declared_size(upload: UploadedObject) -> None:
    """The object is the size its upload declared (S3 enforces the policy's content-length-range; moto
    does not, and we never trust one check). Uploads created before the size was recorded carry none."""
    declared = upload.metadata.get(DECLARED_SIZE)
    if declared is not None and declared != str(upload.size):
        raise InvalidRequest(
            f"The uploaded file has {upload.size} bytes, not the {declared[:20]} its upload declared",
            details={"field": "size"},
        )


def _declared_format(upload: UploadedObject) -> str | None:
    """The format the upload was created for: its key's extension, which this service chose (the
    presigned policy pins the key and the content type in AWS; an emulator lets a client change both,
    so the bytes are checked against it anyway). Falls back to the object's content type."""
    extension = upload.filename.rsplit(".", 1)[-1] if "." in upload.filename else ""
    by_extension = normalise_format(extension)
    if by_extension is not None:
        return by_extension
    return FORMATS_BY_CONTENT_TYPE.get((upload.content_type or "").split(";")[0].strip().lower())
