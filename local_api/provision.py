"""Create the template's tables (with their streams), buckets, parameters, secret, keys (those with an
alias), event bus, queues (with their redrive policies) and rules in an emulated account (moto, LocalStack).

Translates each resource's CloudFormation properties into the API calls that make the same resource,
so key schemas, TTLs, GSIs, lifecycle rules, encryption and policies come from ``template.yaml``
alone. Idempotent: a resource that already exists is left as it is.
"""

from __future__ import annotations

import json
import secrets as random_tokens
import string
from typing import Any

import boto3
from botocore.exceptions import ClientError

from local_api.cfn_template import Stack

_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")
#: SQS queue attributes the template sets, as the SQS API names them.
_QUEUE_ATTRIBUTES = ("MessageRetentionPeriod", "SqsManagedSseEnabled", "VisibilityTimeout")


def _exists_error(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in (
        "ResourceInUseException",
        "BucketAlreadyOwnedByYou",
        "BucketAlreadyExists",
        "ParameterAlreadyExists",
        "ResourceExistsException",
        "ResourceAlreadyExistsException",
        "QueueAlreadyExists",
    )


def provision(
    stack: Stack,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
    max_receive_counts: dict[str, int] | None = None,
) -> None:
    """Everything, idempotently. ``max_receive_counts``: a queue's (logical id) redrive count instead of the
    template's (``make run`` with ``WEBHOOK_RETRY_DELAYS`` attempts each delivery that many times)."""
    session = session or boto3.session.Session(region_name=stack.region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url, region_name=stack.region)  # type: ignore[call-overload]

    dynamodb, s3, ssm, secrets = client("dynamodb"), client("s3"), client("ssm"), client("secretsmanager")
    for logical_id in stack.of_type("AWS::DynamoDB::Table"):
        create_table(dynamodb, stack.properties(logical_id))
    for logical_id in stack.of_type("AWS::S3::Bucket"):
        create_bucket(s3, stack.properties(logical_id), stack.region)
    # Bucket policies are not applied: moto ignores a statement's Condition, so the TLS-only policy
    # (deny when aws:SecureTransport is false) would deny every request. tests/infrastructure checks it.
    for logical_id in stack.of_type("AWS::SSM::Parameter"):
        props = stack.properties(logical_id)
        _ignore_existing(lambda p=props: ssm.put_parameter(Name=p["Name"], Value=str(p["Value"]), Type=p["Type"]))
    for logical_id in stack.of_type("AWS::SecretsManager::Secret"):
        props = stack.properties(logical_id)
        _ignore_existing(lambda p=props: secrets.create_secret(Name=p["Name"], SecretString=initial_secret_string(p)))
    provision_keys(stack, client("kms"))
    provision_events(stack, client("events"), client("sqs"), max_receive_counts)


def initial_secret_string(props: dict[str, Any]) -> str:
    """The value CloudFormation gives a new secret: ``SecretString``, or ``GenerateSecretString``'s template
    with a random string under ``GenerateStringKey`` (as Secrets Manager's GetRandomPassword makes it)."""
    spec = props.get("GenerateSecretString")
    if spec is None:
        return str(props.get("SecretString", "{}"))
    alphabet = _password_alphabet(spec)
    generated = "".join(random_tokens.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if "SecretStringTemplate" not in spec:
        return generated
    document = json.loads(spec["SecretStringTemplate"])
    document[spec["GenerateStringKey"]] = generated
    return json.dumps(document)


def _password_alphabet(spec: dict[str, Any]) -> str:
    groups = {
        "ExcludeUppercase": string.ascii_uppercase,
        "ExcludeLowercase": string.ascii_lowercase,
        "ExcludeNumbers": string.digits,
        "ExcludePunctuation": string.punctuation,
    }
    alphabet = "".join(chars for flag, chars in groups.items() if not spec.get(flag))
    alphabet += " " if spec.get("IncludeSpace") else ""
    return "".join(ch for ch in alphabet if ch not in str(spec.get("ExcludeCharacters", "")))


def provision_keys(stack: Stack, kms: Any) -> None:
    """A key for each alias of the template (the code names keys by alias: AWS makes up a key's id)."""
    existing = {a["AliasName"] for a in kms.list_aliases().get("Aliases", [])}
    for logical_id in stack.of_type("AWS::KMS::Alias"):
        props = stack.properties(logical_id)
        if props["AliasName"] in existing:
            continue
        key_id = stack.resources[logical_id]["Properties"]["TargetKeyId"]["Ref"]
        key = stack.properties(key_id)
        tags = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in key.get("Tags", [])]
        created = kms.create_key(Description=key.get("Description", ""), Tags=tags)["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=props["AliasName"], TargetKeyId=created)


def queue_attributes(props: dict[str, Any], max_receive_count: int | None = None) -> dict[str, str]:
    """A queue's CloudFormation properties as the SQS API's attributes."""
    given = [k for k in _QUEUE_ATTRIBUTES if k in props]
    attributes = {k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k]) for k in given}
    if "RedrivePolicy" in props:
        policy = dict(props["RedrivePolicy"])
        policy["maxReceiveCount"] = str(max_receive_count or policy["maxReceiveCount"])
        attributes["RedrivePolicy"] = json.dumps(policy)
    return attributes


def provision_events(stack: Stack, events: Any, sqs: Any, max_receive_counts: dict[str, int] | None = None) -> None:
    """The event bus, the queues, and the rules these parameters create (with their targets)."""
    present = stack.present()
    for logical_id in (i for i in stack.of_type("AWS::Events::EventBus") if i in present):
        name = stack.properties(logical_id)["Name"]
        _ignore_existing(lambda n=name: events.create_event_bus(Name=n))
    queues = [i for i in stack.of_type("AWS::SQS::Queue") if i in present]
    # Dead-letter queues first: a redrive policy must name a queue that exists.
    for logical_id in sorted(queues, key=lambda i: "RedrivePolicy" in stack.resources[i]["Properties"]):
        props = stack.properties(logical_id)
        attributes = queue_attributes(props, (max_receive_counts or {}).get(logical_id))
        _ignore_existing(lambda p=props, a=attributes: sqs.create_queue(QueueName=p["QueueName"], Attributes=a))
    for logical_id in (i for i in stack.of_type("AWS::Events::Rule") if i in present):
        props = stack.properties(logical_id)
        bus = props.get("EventBusName", "default")
        events.put_rule(
            Name=props["Name"], EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]), State=props["State"]
        )
        events.put_targets(Rule=props["Name"], EventBusName=bus, Targets=props["Targets"])


def _ignore_existing(call: Any) -> None:
    try:
        call()
    except ClientError as exc:
        if not _exists_error(exc):
            raise


def create_table(dynamodb: Any, props: dict[str, Any]) -> None:
    name = props["TableName"]
    kwargs = {key: props[key] for key in _TABLE_KEYS if key in props}
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        kwargs["SSESpecification"] = {"Enabled": True}
    if "StreamSpecification" in props:
        view = props["StreamSpecification"]["StreamViewType"]
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    try:
        dynamodb.create_table(TableName=name, **kwargs)
    except ClientError as exc:
        if not _exists_error(exc):
            raise
        return
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]}
        )


def create_bucket(s3: Any, props: dict[str, Any], region: str) -> None:
    name = props["BucketName"]
    kwargs: dict[str, Any] = {}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(Bucket=name, **kwargs)
    except ClientError as exc:
        if not _exists_error(exc):
            raise
        return
    if "VersioningConfiguration" in props:
        status = props["VersioningConfiguration"]["Status"]
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
    if "BucketEncryption" in props:
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "LifecycleConfiguration" in props:
        rules = [lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if "CorsConfiguration" in props:
        rules = [cors_rule(rule) for rule in props["CorsConfiguration"]["CorsRules"]]
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})


def cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation CORS rule in the shape of the S3 API."""
    renamed = {"Id": "ID", "ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
    return {renamed.get(key, key): int(value) if key == "MaxAge" else value for key, value in rule.items()}


def lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of the S3 API."""
    prefix = rule.get("Prefix", "")
    tags = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in rule.get("TagFilters", [])]
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        # S3 takes a prefix with tags only under "And" (CloudFormation's Prefix + TagFilters).
        "Filter": {"And": {"Prefix": prefix, "Tags": tags}} if tags else {"Prefix": prefix},
    }
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    return converted


def api_keys_document(keys: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """The api-keys secret for ``{key: (client_id, name)}``: only hashes of the keys are kept."""
    from services.auth import hash_key

    return {"keys": {hash_key(key): {"client_id": client, "name": name} for key, (client, name) in keys.items()}}


def provision_api_keys(
    stack: Stack, keys: dict[str, tuple[str, str]], session: Any = None, endpoint_url: str | None = None
) -> None:
    """Replace the emulated api-keys secret's keys with these (its other fields, the cursor-signing key
    among them, are kept)."""
    session = session or boto3.session.Session(region_name=stack.region)
    client = session.client("secretsmanager", endpoint_url=endpoint_url, region_name=stack.region)
    (logical_id,) = stack.of_type("AWS::SecretsManager::Secret")
    name = stack.properties(logical_id)["Name"]
    current = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    document = {**(current if isinstance(current, dict) else {}), **api_keys_document(keys)}
    client.put_secret_value(SecretId=name, SecretString=json.dumps(document))


def merge_api_keys(
    stack: Stack, keys: dict[str, tuple[str, str]], replaced: list[str], endpoint_url: str | None = None
) -> None:
    """Put these keys in the emulated api-keys secret beside the ones it holds (a restored state's: keys
    made with ``ops keys create``), dropping the ``replaced`` keys (the previous run's printed keys)."""
    from services.auth import hash_key

    client = boto3.session.Session(region_name=stack.region).client(
        "secretsmanager", endpoint_url=endpoint_url, region_name=stack.region
    )
    (logical_id,) = stack.of_type("AWS::SecretsManager::Secret")
    name = stack.properties(logical_id)["Name"]
    current = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    document = current if isinstance(current, dict) else {}
    dropped = {hash_key(key) for key in replaced}
    kept = {digest: entry for digest, entry in dict(document.get("keys") or {}).items() if digest not in dropped}
    document["keys"] = {**kept, **api_keys_document(keys)["keys"]}
    client.put_secret_value(SecretId=name, SecretString=json.dumps(document))
