"""local_api.provision: the emulated account gets the template's stores, configured as the template says."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_api.cfn_template import Stack, load_template
from local_api.provision import initial_secret_string, provision, provision_api_keys


def buckets(stack: Stack) -> dict[str, dict[str, Any]]:
    """Bucket name -> resolved properties, for every bucket of the template."""
    return {props["BucketName"]: props for props in map(stack.properties, stack.of_type("AWS::S3::Bucket"))}


def test_buckets_are_versioned_with_the_templates_lifecycle(aws: Stack) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")

    for name, props in buckets(aws).items():
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == props["VersioningConfiguration"]["Status"]
        rules = {rule["ID"]: rule for rule in s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]}
        for expected in props["LifecycleConfiguration"]["Rules"]:
            noncurrent = expected["NoncurrentVersionExpiration"]["NoncurrentDays"]
            assert rules[expected["Id"]]["NoncurrentVersionExpiration"] == {"NoncurrentDays": noncurrent}


def test_a_deleted_object_stays_recoverable_as_a_noncurrent_version(aws: Stack) -> None:
    """What versioning buys: the function's DeleteObject leaves the bytes behind (until the lifecycle)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = aws.function_environment()["CACHE_BUCKET"]
    s3.put_object(Bucket=bucket, Key="feedback/job_x/fb_1.json", Body=b"{}")

    s3.delete_object(Bucket=bucket, Key="feedback/job_x/fb_1.json")

    versions = s3.list_object_versions(Bucket=bucket, Prefix="feedback/job_x/")
    assert [v["IsLatest"] for v in versions["Versions"]] == [False]
    assert [m["IsLatest"] for m in versions["DeleteMarkers"]] == [True]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_every_environment_provisions_and_provisioning_twice_changes_nothing(environment: str) -> None:
    stack = Stack(load_template(), {"Environment": environment})
    session = boto3.session.Session(region_name="us-east-1")

    with mock_aws():
        provision(stack, session)
        provision(stack, session)  # idempotent: `make run` against an emulator that already has them

        s3 = session.client("s3")
        dynamodb = session.client("dynamodb")
        assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == set(buckets(stack))
        assert set(dynamodb.list_tables()["TableNames"]) == {
            f"location-detection-{environment}-jobs",
            f"location-detection-{environment}-preview_cache",
        }


def test_a_generated_secret_is_made_as_cloudformation_makes_it() -> None:
    spec = {
        "SecretStringTemplate": '{"keys": {}}',
        "GenerateStringKey": "cursor_signing_key",
        "PasswordLength": 64,
        "ExcludePunctuation": True,
    }
    values = [json.loads(initial_secret_string({"GenerateSecretString": spec})) for _ in range(2)]

    for value in values:
        assert value["keys"] == {}
        assert len(value["cursor_signing_key"]) == 64
        assert value["cursor_signing_key"].isalnum()
    assert values[0]["cursor_signing_key"] != values[1]["cursor_signing_key"], "random, not derived"
    assert initial_secret_string({"SecretString": '{"keys": {}}'}) == '{"keys": {}}'


def test_provisioning_keys_keeps_the_secrets_other_fields() -> None:
    stack = Stack(load_template(), {"Environment": "dev"})
    session = boto3.session.Session(region_name="us-east-1")
    with mock_aws():
        provision(stack, session)
        client = session.client("secretsmanager")
        name = "location-detection/dev/api-keys"
        client.put_secret_value(SecretId=name, SecretString=json.dumps({"keys": {}, "cursor_signing_key": "k" * 64}))

        provision_api_keys(stack, {"ldk_one": ("cli_one", "one")}, session)

        value = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
        assert value["cursor_signing_key"] == "k" * 64
        assert [entry["client_id"] for entry in value["keys"].values()] == ["cli_one"]
