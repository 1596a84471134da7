"""The warm benchmark's reference point: our three routes as a Powertools user would write them.

``APIGatewayHttpResolver`` routes, a Powertools ``Logger`` (JSON lines, context injected, correlation id
from the event, state cleared per request), CORS from the resolver, an exception handler for the error
envelope, ``Metrics`` (EMF: Latency by route, ColdStart, JobsCreated, UploadBytes, JobsCancelled, as
``src/`` records them). The same boto3 calls as ``src/`` for each route, with the validation a careful
minimal service needs (API key, job id shape, body fields, PNG/JPG/PDF magic bytes, owner, expiry,
state) — but none of our extras (request-id generation, retry layer, settings objects, idempotency).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from typing import IO, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

JOB_ID = re.compile(r"job_[0-9]{8}T[0-9]{6}_[0-9a-f]{16}")
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "pdf": b"%PDF-"}
MIME = {"png": "image/png", "jpg": "image/jpeg", "pdf": "application/pdf"}
MAX_BYTES = 50 * 1024 * 1024
WEEK = 7 * 24 * 3600
RETENTION_DAYS = 7  # BlueprintRetentionDays' default

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class JobsApp:
    """The three routes on a resolver; ``api_keys`` maps the SHA-256 hex of a key to its client id."""

    def __init__(
        self,
        *,
        dynamodb: Any,
        s3: Any,
        jobs_table: str,
        preview_table: str,
        bucket: str,
        api_keys: dict[str, str],
        log_stream: IO[str],
    ) -> None:
        self.dynamodb, self.s3 = dynamodb, s3
        self.jobs_table, self.preview_table, self.bucket = jobs_table, preview_table, bucket
        self.api_keys = api_keys
        self.serializer, self.deserializer = TypeSerializer(), TypeDeserializer()
        self.logger = Logger(service="powertools-bench", stream=log_stream)
        self.metrics = Metrics(namespace="LocationDetection", service="powertools-bench")  # EMF on stdout
        self.metrics.set_default_dimensions(Environment="dev")
        self.app = APIGatewayHttpResolver(
            cors=CORSConfig(
                allow_origin="*",
                allow_headers=["Content-Type", "X-API-Key", "Authorization", "Idempotency-Key", "X-Correlation-ID"],
                expose_headers=["X-Request-ID", "X-Correlation-ID", "Location", "Retry-After"],
                max_age=600,
            )
        )
        self.app.get("/api/v1/jobs/<job_id>")(self.get_job)
        self.app.delete("/api/v1/jobs/<job_id>")(self.cancel_job)
        self.app.post("/api/v1/jobs")(self.create_job)
        self.app.exception_handler(HttpError)(self.http_error)

    def handler(self) -> LambdaHandler:
        """The Lambda entry point, decorated as the Powertools documentation shows."""
        app, logger, metrics = self.app, self.logger, self.metrics

        @metrics.log_metrics(capture_cold_start_metric=True)
        @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
        def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            started = time.perf_counter()
            response = app.resolve(event, context)
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            metrics.add_dimension(name="Route", value=app.current_event.route_key)
            metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
            logger.info(
                "request completed",
                extra={
                    "route": app.current_event.route_key,
                    "status": response["statusCode"],
                    "latency_ms": latency_ms,
                },
            )
            return response

        return lambda_handler  # type: ignore[no-any-return]

    # ------------------------------------------------------------------------------------------ helpers
    def client_id(self) -> str:
        presented = (self.app.current_event.headers or {}).get("x-api-key") or ""
        digest = hashlib.sha256(presented.encode()).hexdigest().encode()
        found = None
        for stored, owner in self.api_keys.items():
            if hmac.compare_digest(digest, stored.encode()):
                found = owner
        if found is None:
            raise HttpError(401, "UNAUTHORIZED", "A valid X-API-Key is required")
        return found

    def read_job(self, job_id: str, owner: str) -> dict[str, Any]:
        if not JOB_ID.fullmatch(job_id):
            raise HttpError(400, "INVALID_JOB_ID", "Not a job id")
        key = {"job_id": {"S": job_id}}
        item = self.dynamodb.get_item(TableName=self.jobs_table, Key=key, ConsistentRead=True).get("Item")
        job = {k: self.deserializer.deserialize(v) for k, v in (item or {}).items()}
        if not job or job.get("owner_id") != owner or int(job["expires_at"]) <= time.time():
            raise HttpError(404, "JOB_NOT_FOUND", "No such job")
        return job

    @staticmethod
    def envelope(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
        body = {"status": "success", "data": data, "meta": {"api_version": "v1"}}
        return Response(status_code=status, content_type="application/json", body=body, headers=headers)

    @staticmethod
    def http_error(exc: HttpError) -> Response[Any]:
        body = {"status": "error", "error": {"code": exc.code, "message": exc.message}}
        return Response(status_code=exc.status, content_type="application/json", body=body)

    # ------------------------------------------------------------------------------------------- routes
    def get_job(self, job_id: str) -> Response[Any]:
        self.logger.append_keys(job_id=job_id)
        return self.envelope(_public(self.read_job(job_id, self.client_id())))

    def cancel_job(self, job_id: str) -> Response[Any]:
        self.logger.append_keys(job_id=job_id)
        job = self.read_job(job_id, self.client_id())
        if job["status"] == "cancelled":
            return self.envelope(_public(job))
        if job["status"] not in ("pending", "processing"):
            raise HttpError(409, "JOB_ALREADY_COMPLETED", "The job can no longer be cancelled")
        now = time.time()
        stamp = _iso(now)
        # A final state: finished_at, the retention entry brought forward and the blueprint tagged for the
        # lifecycle rule, as src/ does (docs/erasure.md, "Retention").
        due = min(int(now) + RETENTION_DAYS * 24 * 3600 - 3600, int(job["expires_at"]))
        try:
            updated = self.dynamodb.update_item(
                TableName=self.jobs_table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET #status = :cancelled, updated_at = :now, finished_at = :now, "
                "lookup_key = :lookup, lookup_at = :due, #version = #version + :one",
                ConditionExpression="#status = :status AND #version = :version",
                ExpressionAttributeNames={"#status": "status", "#version": "version"},
                ExpressionAttributeValues={
                    ":cancelled": {"S": "cancelled"},
                    ":now": {"S": stamp},
                    ":lookup": {"S": "sweep#retention"},
                    ":due": {"N": str(due)},
                    ":one": {"N": "1"},
                    ":status": {"S": job["status"]},
                    ":version": {"N": str(job["version"])},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as exc:
            raise HttpError(409, "CONFLICT", "The job changed; retry") from exc
        self.s3.put_object_tagging(
            Bucket=self.bucket,
            Key=updated["blueprint_s3_key"]["S"],
            Tagging={"TagSet": [{"Key": "retention", "Value": "final"}]},
        )
        self.logger.info("job status changed", extra={"from": job["status"], "to": "cancelled"})
        self.metrics.add_metric(name="JobsCancelled", unit=MetricUnit.Count, value=1)
        return self.envelope(_public({k: self.deserializer.deserialize(v) for k, v in updated.items()}))

    def create_job(self) -> Response[Any]:
        owner = self.client_id()
        content, fmt, filename = self.parse_blueprint()
        digest = hashlib.sha256(content).digest()
        now = time.time()
        job_id = f"job_{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}_{secrets.token_hex(8)}"
        key = f"blueprints/{job_id}/{filename}"
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=content,
            ContentType=MIME[fmt],
            ChecksumSHA256=base64.b64encode(digest).decode(),
            Metadata={"sha256": digest.hex()},
            IfNoneMatch="*",
        )
        stamp = _iso(now)
        request_id = self.app.current_event.request_context.request_id
        job = {
            "job_id": job_id,
            "status": "pending",
            "created_at": stamp,
            "updated_at": stamp,
            "blueprint_s3_key": key,
            "blueprint_format": fmt,
            "blueprint_hash": digest.hex(),
            "blueprint_size": len(content),
            "blueprint_filename": filename,
            "request_id": request_id,
            "correlation_id": request_id,
            "expires_at": int(now) + WEEK,
            "api_version": "v1",
            "version": 1,
            "feedback_count": 0,
            "owner_id": owner,
        }
        self.dynamodb.put_item(
            TableName=self.jobs_table,
            Item={k: self.serializer.serialize(v) for k, v in job.items()},
            ConditionExpression="attribute_not_exists(job_id)",
        )
        self.logger.append_keys(job_id=job_id)
        self.logger.info("job created", extra={"format": fmt, "size": len(content)})
        self.metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(name="UploadBytes", unit=MetricUnit.Bytes, value=len(content))
        preview_key = {"blueprint_hash": {"S": digest.hex()}}
        preview = self.dynamodb.get_item(TableName=self.preview_table, Key=preview_key).get("Item")
        data = _public(job)
        if preview:
            data["preview"] = {k: self.deserializer.deserialize(v) for k, v in preview.items()}
        return self.envelope(data, 201, {"Location": f"/api/v1/jobs/{job_id}"})

    def parse_blueprint(self) -> tuple[bytes, str, str]:
        """The file, its format and a safe filename from ``{"blueprint": {"file", "format", "filename"}}``."""
        body = self.app.current_event.json_body
        blueprint = body.get("blueprint") if isinstance(body, dict) else None
        if not isinstance(blueprint, dict) or not isinstance(blueprint.get("file"), str):
            raise HttpError(400, "INVALID_REQUEST", "blueprint.file is required")
        try:
            content = base64.b64decode(blueprint["file"], validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, "INVALID_REQUEST", "blueprint.file is not base64") from None
        fmt = str(blueprint.get("format", "")).lower().replace("jpeg", "jpg")
        if fmt not in MAGIC or not content.startswith(MAGIC[fmt]) or not 0 < len(content) <= MAX_BYTES:
            raise HttpError(400, "INVALID_FILE_FORMAT", "Not a PNG, JPG or PDF of at most 50 MB")
        filename = re.sub(r"[^\w.-]", "_", str(blueprint.get("filename") or f"blueprint.{fmt}"))[:255]
        return content, fmt, filename


def build(
    *,
    dynamodb: Any,
    s3: Any,
    jobs_table: str,
    preview_table: str,
    bucket: str,
    api_keys: dict[str, str],
    log_stream: IO[str],
) -> LambdaHandler:
    """The Powertools variant's Lambda handler."""
    app = JobsApp(
        dynamodb=dynamodb,
        s3=s3,
        jobs_table=jobs_table,
        preview_table=preview_table,
        bucket=bucket,
        api_keys=api_keys,
        log_stream=log_stream,
    )
    return app.handler()


def _public(job: dict[str, Any]) -> dict[str, Any]:
    hidden = ("owner_id", "expires_at", "version")
    return {k: int(v) if k in ("blueprint_size", "feedback_count") else v for k, v in job.items() if k not in hidden}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
