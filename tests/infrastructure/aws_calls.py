"""Record the AWS calls code makes, and say which IAM authorizations each one needs.

``recording()`` patches botocore's one funnel for every operation and presigned URL
(``BaseClient._emit_api_params``, where the ``provide-client-params`` event fires) and the presigned-POST
builder (``S3PostPresigner.generate_presigned_post``, which never reaches an operation), so every client
the code creates, however and whenever, is seen, under moto as in AWS.

``iam_requests(call, stack)`` maps one call to the IAM requests AWS evaluates for it: the action and the
resource ARN (with the real names, resolved against the translated template's ``Stack``) and the context
keys the service adds. A presigned URL or POST is the function's authorization too: S3 checks the
signer's permissions when the client uses it. A (service, operation) not in the tables below fails the
test that recorded it: add its mapping (with the IAM action from the Service Authorization Reference).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.signers import S3PostPresigner

from local_api.cfn_template import Stack
from tests.infrastructure.iam_simulator import Request


@dataclass(frozen=True)
class Call:
    service: str  # botocore's service name: dynamodb, s3, ssm, secretsmanager, ...
    operation: str  # the API operation: GetItem, PutObject, PresignedPost, ...
    params: dict[str, Any]
    region: str
    presigned: bool = False


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)


@contextmanager
def recording() -> Iterator[Recorder]:
    recorder = Recorder()
    original_emit = BaseClient._emit_api_params
    original_post = S3PostPresigner.generate_presigned_post

    def emit(self: BaseClient, api_params: dict[str, Any], operation_model: Any, context: dict[str, Any]) -> Any:
        params = original_emit(self, api_params, operation_model, context)
        presign = bool(context.get("is_presign_request"))
        # A presigned POST borrows CreateBucket's model to build its URL: the POST itself is recorded below.
        if not (presign and operation_model.name == "CreateBucket"):
            name = self.meta.service_model.service_name
            recorder.calls.append(Call(name, operation_model.name, dict(params), self.meta.region_name, presign))
        return params

    def presigned_post(
        self: S3PostPresigner, request_dict: dict[str, Any], fields: Any = None, conditions: Any = None, **kwargs: Any
    ) -> Any:
        bucket = next(c["bucket"] for c in conditions or [] if isinstance(c, dict) and "bucket" in c)
        key = (fields or {}).get("key", "")
        region = kwargs.get("region_name") or self._request_signer.region_name
        recorder.calls.append(Call("s3", "PresignedPost", {"Bucket": bucket, "Key": key}, region, True))
        return original_post(self, request_dict, fields=fields, conditions=conditions, **kwargs)

    BaseClient._emit_api_params = emit  # type: ignore[method-assign]
    S3PostPresigner.generate_presigned_post = presigned_post  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        BaseClient._emit_api_params = original_emit  # type: ignore[method-assign]
        S3PostPresigner.generate_presigned_post = original_post  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------ mapping
def _table(call: Call, account: str, name: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{call.region}:{account}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(call: Call, account: str, stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    p, op = call.params, call.operation
    if op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Scan", "DescribeTable", "ConditionCheckItem"):
        return [(f"dynamodb:{op}", _table(call, account, p["TableName"]), {})]
    if op == "Query":
        return [("dynamodb:Query", _table(call, account, p["TableName"], p.get("IndexName")), {})]
    if op in ("TransactWriteItems", "TransactGetItems"):
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
            "Get": "GetItem",
        }
        return [
            (f"dynamodb:{kinds[kind]}", _table(call, account, item[kind]["TableName"]), {})
            for item in p["TransactItems"]
            for kind in item
        ]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{op}", _table(call, account, table), {}) for table in p["RequestItems"]]
    raise KeyError(op)


def _object(p: dict[str, Any]) -> str:
    return f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"


def _copy_source(p: dict[str, Any]) -> str:
    source = p["CopySource"]
    if isinstance(source, str):
        source = dict(zip(("Bucket", "Key"), source.lstrip("/").split("/", 1), strict=True))
    return _object(source)


#: S3 operation -> its IAM action on the object (a versioned call needs the *Version action).
_S3_OBJECT = {
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
    **dict.fromkeys(
        ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "PresignedPost"),
        ("s3:PutObject", "s3:PutObject"),
    ),
}
_S3_BUCKET = {"ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket"}
_S3_BUCKET["ListObjectVersions"] = "s3:ListBucketVersions"


def _s3(call: Call, account: str, stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    p, op = call.params, call.operation
    bucket = f"arn:aws:s3:::{p['Bucket']}"
    if op in _S3_OBJECT:
        action = _S3_OBJECT[op][1 if p.get("VersionId") else 0]
        requests = [(action, _object(p), {})]
        # S3 answers 404 for a missing key only to a caller who may list the bucket (403 otherwise): the
        # code tells "absent" from "refused" by it.
        if op in ("GetObject", "HeadObject"):
            requests.append(("s3:ListBucket", bucket, {}))
        return requests
    if op in ("CopyObject", "UploadPartCopy"):
        return [("s3:GetObject", _copy_source(p), {}), ("s3:PutObject", _object(p), {})]
    if op == "DeleteObjects":
        # Authorized per object, as each one's DeleteObject (Service Authorization Reference: DeleteObjects
        # "requires s3:DeleteObject"; with a version id, s3:DeleteObjectVersion).
        return [
            ("s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject", _object({**p, "Key": o["Key"]}), {})
            for o in p["Delete"]["Objects"]
        ]
    # A listing's prefix is the s3:prefix condition key (absent when the listing names none).
    context = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
    return [(_S3_BUCKET[op], bucket, context)]


def _ssm(call: Call, account: str, stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    p, op = call.params, call.operation
    arn = f"arn:aws:ssm:{call.region}:{account}:parameter/"
    if op == "GetParametersByPath":
        return [("ssm:GetParametersByPath", arn + p["Path"].lstrip("/"), {})]
    if op == "GetParameter":
        return [("ssm:GetParameter", arn + p["Name"].lstrip("/"), {})]
    if op == "GetParameters":
        return [("ssm:GetParameters", arn + name.lstrip("/"), {}) for name in p["Names"]]
    raise KeyError(op)


def _secret(stack: Stack, secret_id: str) -> str:
    """The ARN of the template's secret with this name (or ARN)."""
    for logical_id in stack.of_type("AWS::SecretsManager::Secret"):
        arn = stack.ref(logical_id)
        if secret_id in (arn, stack.properties(logical_id)["Name"]):
            return arn
    raise KeyError(f"no secret {secret_id} in the template")


def _secretsmanager(call: Call, account: str, stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    if call.operation != "GetSecretValue":
        raise KeyError(call.operation)
    secret = _secret(stack, call.params["SecretId"])
    (logical_id,) = [i for i in stack.of_type("AWS::SecretsManager::Secret") if stack.ref(i) == secret]
    key = stack.properties(logical_id)["KmsKeyId"]
    # Secrets Manager decrypts the secret with the caller's permission on its key (kms:ViaService).
    via = {"kms:ViaService": f"secretsmanager.{call.region}.amazonaws.com", "kms:CallerAccount": account}
    return [("secretsmanager:GetSecretValue", secret, {}), ("kms:Decrypt", key, via)]


def _sts(call: Call, account: str, stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    if call.operation == "GetCallerIdentity":
        return []  # needs no permission (IAM User Guide: GetCallerIdentity)
    raise KeyError(call.operation)


def _events(call: Call, account: str, stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    if call.operation != "PutEvents":
        raise KeyError(call.operation)
    buses = {entry.get("EventBusName", "default") for entry in call.params["Entries"]}
    arn = f"arn:aws:events:{call.region}:{account}:event-bus/"
    return [("events:PutEvents", bus if bus.startswith("arn:") else arn + bus, {}) for bus in sorted(buses)]


def _stream_arn(call: Call) -> str:
    """The stream a streams call is on. GetRecords names only an iterator: AWS's are opaque, moto's start
    with the stream's ARN (``ARN|1|id``), which is what the recorded scenarios run on."""
    if "StreamArn" in call.params:
        return str(call.params["StreamArn"])
    arn = str(call.params["ShardIterator"]).split("|", 1)[0]
    if not arn.startswith("arn:aws:dynamodb:"):
        raise KeyError("a shard iterator that does not name its stream")
    return arn


def _dynamodbstreams(call: Call, account: str, stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    if call.operation in ("DescribeStream", "GetShardIterator", "GetRecords"):
        return [(f"dynamodb:{call.operation}", _stream_arn(call), {})]
    if call.operation == "ListStreams":
        return [("dynamodb:ListStreams", f"{_table(call, account, call.params['TableName'])}/stream/*", {})]
    raise KeyError(call.operation)


def _sqs(call: Call, account: str, stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    actions = {"SendMessage": "sqs:SendMessage", "SendMessageBatch": "sqs:SendMessage"}
    if call.operation not in actions:
        raise KeyError(call.operation)
    name = str(call.params["QueueUrl"]).rstrip("/").rsplit("/", 1)[1]
    return [(actions[call.operation], f"arn:aws:sqs:{call.region}:{account}:{name}", {})]


MAPPINGS: dict[str, Callable[[Call, str, Stack], list[tuple[str, str, dict[str, Any]]]]] = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "ssm": _ssm,
    "secretsmanager": _secretsmanager,
    "sts": _sts,
    "events": _events,
    "dynamodbstreams": _dynamodbstreams,
    "sqs": _sqs,
}


def iam_requests(call: Call, account: str, stack: Stack, why: str) -> list[Request]:
    try:
        mapped = MAPPINGS[call.service](call, account, stack)
    except KeyError as missing:
        raise AssertionError(
            f"no IAM mapping for {call.service}:{call.operation} ({missing}): add it to aws_calls"
        ) from None
    return [Request(action, resource, context, why=why) for action, resource, context in mapped]


def lambda_runtime_requests(stack: Stack, function_id: str, account: str, region: str) -> list[Request]:
    """What Lambda itself does with the function's role: its log lines and, when traced, X-Ray segments."""
    props = stack.properties(function_id)
    log_group = props.get("LoggingConfig", {}).get("LogGroup", f"/aws/lambda/{props['FunctionName']}")
    stream = f"arn:aws:logs:{region}:{account}:log-group:{log_group}:log-stream:2026/12/01/[$LATEST]0123456789abcdef"
    requests = [
        Request("logs:CreateLogStream", stream, why="the Lambda runtime"),
        Request("logs:PutLogEvents", stream, why="the Lambda runtime"),
    ]
    if props.get("TracingConfig", {}).get("Mode") == "Active":
        requests += [
            Request(a, "*", why="Tracing: Active") for a in ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
        ]
    return requests
