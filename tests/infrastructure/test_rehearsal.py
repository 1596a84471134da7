"""The first deploy, rehearsed: the SAM transform CloudFormation runs, then the stack created in moto.

The translated template (``rehearsal.translated``) is what CloudFormation receives from ``sam deploy``;
these tests assert on it for every resource, per parameter set (each environment's samconfig.toml
overrides, with and without JWT). Then ``create_in_moto`` creates it in moto's CloudFormation with the
code zip in a moto bucket, and the tests check that what CloudFormation created is what the code and
API_CONTRACT.md expect: names, keys, indexes, TTLs, bucket settings, the function's settings and
environment (every name in it exists), its role, the keys and their tags, the parameters, the log groups.
Types moto cannot create are listed in ``rehearsal.MOTO_SKIPPED`` with the reason; an unlisted skip fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from services.runtime_config import RuntimeConfig, parse_parameters
from tests.infrastructure import rehearsal
from tests.infrastructure.rehearsal import ACCOUNT, REGION, MotoStack

#: Every resource the translated template has, by logical id (a new resource must be added here, on
#: purpose, with the assertions it needs), in all parameter sets; JWT_ONLY and PROD_ONLY where they differ.
EXPECTED_RESOURCES = {
    "HttpApi": "AWS::ApiGatewayV2::Api",
    "HttpApiStage": "AWS::ApiGatewayV2::Stage",
    "ApiIntegration": "AWS::ApiGatewayV2::Integration",
    **dict.fromkeys(
        ("HealthRoute", "OpenApiRoute", "RootRoute", "ProxyRoute", "ApiRoutes", "ApiPreflightRoute"),
        "AWS::ApiGatewayV2::Route",
    ),
    "ApiInvokePermission": "AWS::Lambda::Permission",
    "ApiAccessLogGroup": "AWS::Logs::LogGroup",
    "ApiFunctionLogGroup": "AWS::Logs::LogGroup",
    "ApiFunctionRole": "AWS::IAM::Role",
    "ApiFunction": "AWS::Lambda::Function",
    # AutoPublishAlias and DeploymentPreference: a version per deploy (its logical id ends in a hash of
    # the code, hence the *), the alias API Gateway calls, and CodeDeploy's application and group.
    "ApiFunctionVersion*": "AWS::Lambda::Version",
    "ApiFunctionAliaslive": "AWS::Lambda::Alias",
    "ServerlessDeploymentApplication": "AWS::CodeDeploy::Application",
    "ApiFunctionDeploymentGroup": "AWS::CodeDeploy::DeploymentGroup",
    "DeploymentRole": "AWS::IAM::Role",
    # The hourly sweep: its function, role and log group; SAM's Schedule event becomes an EventBridge rule
    # and the permission for EventBridge to invoke the function.
    "SweepFunction": "AWS::Lambda::Function",
    "SweepFunctionRole": "AWS::IAM::Role",
    "SweepFunctionLogGroup": "AWS::Logs::LogGroup",
    "SweepFunctionHourly": "AWS::Events::Rule",
    "SweepFunctionHourlyPermission": "AWS::Lambda::Permission",
    "JobsTable": "AWS::DynamoDB::Table",
    "PreviewCacheTable": "AWS::DynamoDB::Table",
    "BlueprintsBucket": "AWS::S3::Bucket",
    "BlueprintsBucketPolicy": "AWS::S3::BucketPolicy",
    "CacheBucket": "AWS::S3::Bucket",
    "CacheBucketPolicy": "AWS::S3::BucketPolicy",
    "ApiKeysSecret": "AWS::SecretsManager::Secret",
    "ApiKeysSecretKey": "AWS::KMS::Key",
    "ApiKeysSecretKeyAlias": "AWS::KMS::Alias",
    **dict.fromkeys(
        (
            "MaxUploadBytesParameter",
            "AllowedFormatsParameter",
            "CorsAllowedOriginsParameter",
            "PresignExpiryParameter",
            "DefaultPageSizeParameter",
            "RateLimitPerMinuteParameter",
            "RateLimitBurstParameter",
        ),
        "AWS::SSM::Parameter",
    ),
    "AlarmTopic": "AWS::SNS::Topic",
    "AlarmTopicPolicy": "AWS::SNS::TopicPolicy",
    "AlarmTopicKey": "AWS::KMS::Key",
    **dict.fromkeys(
        (
            "Api5xxRateAlarm",
            "FunctionErrorsAlarm",
            "FunctionThrottlesAlarm",
            "FunctionDurationAlarm",
            "JobsTableThrottlesAlarm",
            "PreviewCacheTableThrottlesAlarm",
            "CanaryErrorsAlarm",
            "CanaryApi5xxAlarm",
            "JobEventsIteratorAgeAlarm",
            "JobEventsFailedAlarm",
            "JobEventsErrorsAlarm",
            "SweepErrorsAlarm",
        ),
        "AWS::CloudWatch::Alarm",
    ),
    # Job events: the bus, the stream consumer and its mapping and failure queue; the pipeline's task handler.
    "EventBus": "AWS::Events::EventBus",
    "JobEventsFunctionLogGroup": "AWS::Logs::LogGroup",
    "JobEventsFunctionRole": "AWS::IAM::Role",
    "JobEventsFunction": "AWS::Lambda::Function",
    "JobEventsMapping": "AWS::Lambda::EventSourceMapping",
    "JobEventsFailedQueue": "AWS::SQS::Queue",
    "JobEventsFailedQueuePolicy": "AWS::SQS::QueuePolicy",
    "PipelineTaskFunctionLogGroup": "AWS::Logs::LogGroup",
    "PipelineTaskFunctionRole": "AWS::IAM::Role",
    "PipelineTaskFunction": "AWS::Lambda::Function",
}
JWT_ONLY = {"JwtAuthorizer": "AWS::ApiGatewayV2::Authorizer"}
#: Only with PipelineStateMachineArn (rehearsal.WITH_PIPELINE).
PIPELINE_ONLY = {
    "PipelineStartRule": "AWS::Events::Rule",
    "PipelineStartRole": "AWS::IAM::Role",
    "PipelineStartFailedQueue": "AWS::SQS::Queue",
    "PipelineStartFailedQueuePolicy": "AWS::SQS::QueuePolicy",
    "PipelineStartFailedAlarm": "AWS::CloudWatch::Alarm",
}
#: Conditional resources none of the parameter sets creates (the e-mail subscription needs AlarmEmail).
NEVER_PRESENT = {"AlarmTopicEmail": "AWS::SNS::Subscription"}
OWNER_TAG = "location-detection-stack"
#: moto repeats its "not supported" warning on later calls; create_in_moto has recorded the first ones.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse .* but it.s not supported:UserWarning")


def version_id(logical_ids: Any) -> str:
    (found,) = [i for i in logical_ids if i.startswith("ApiFunctionVersion")]
    return str(found)


def normalised(resources: dict[str, str]) -> dict[str, str]:
    """Logical ids with the version's hash replaced by * (as in EXPECTED_RESOURCES)."""
    return {("ApiFunctionVersion*" if i.startswith("ApiFunctionVersion") else i): t for i, t in resources.items()}


def expected(name: str) -> dict[str, str]:
    _, jwt = rehearsal.PARAMETER_SETS[name]
    pipeline = PIPELINE_ONLY if name in rehearsal.WITH_PIPELINE else {}
    return {**EXPECTED_RESOURCES, **(JWT_ONLY if jwt else {}), **pipeline}


def contract(environment: str) -> dict[str, str]:
    """API_CONTRACT.md's Storage table, for this account and region."""
    prefix = f"location-detection-{environment}"
    return {
        "JOBS_TABLE": f"{prefix}-jobs",
        "PREVIEW_CACHE_TABLE": f"{prefix}-preview_cache",
        "BLUEPRINTS_BUCKET": f"{prefix}-blueprints-{ACCOUNT}-{REGION}",
        "CACHE_BUCKET": f"{prefix}-cache-{ACCOUNT}-{REGION}",
        "CONFIG_PATH": f"/location-detection/{environment}/",
        "API_KEYS_SECRET_NAME": f"location-detection/{environment}/api-keys",
    }


# --------------------------------------------------------------------------- the translated template
@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_the_translated_template_has_exactly_the_expected_resources(name: str) -> None:
    present = rehearsal.deployed(name).present()
    resources = {logical_id: r["Type"] for logical_id, r in present.items()}
    everything = {i: r["Type"] for i, r in rehearsal.translated(name)["Resources"].items()}

    assert normalised(resources) == expected(name)
    assert normalised(everything) == {**EXPECTED_RESOURCES, **JWT_ONLY, **PIPELINE_ONLY, **NEVER_PRESENT}
    assert not [t for t in resources.values() if t.startswith("AWS::Serverless::")], "SAM translated them all"


@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_the_function_is_translated_with_its_code_role_and_settings(name: str) -> None:
    stack = rehearsal.deployed(name)
    environment = rehearsal.environment_of(name)
    props = stack.properties("ApiFunction")
    bucket, key = rehearsal.CODE_URIS["ApiFunction"].removeprefix("s3://").split("/", 1)

    assert props["Code"] == {"S3Bucket": bucket, "S3Key": key}
    assert props["Role"] == stack.arn("ApiFunctionRole")
    assert (props["Runtime"], props["Handler"], props["Architectures"]) == (
        "python3.11",
        "api.rest_api.lambda_handler",
        ["arm64"],
    )
    assert (props["MemorySize"], props["Timeout"], props["TracingConfig"]) == (1024, 25, {"Mode": "Active"})
    assert props["LoggingConfig"]["LogGroup"] == f"/aws/lambda/location-detection-{environment}-api"
    assert props["Environment"]["Variables"].items() >= contract(environment).items()
    reserved = rehearsal.parameters(name)["ReservedConcurrency"]
    assert props.get("ReservedConcurrentExecutions", "0") == reserved


@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_the_api_has_no_generated_body_and_every_route_of_its_own(name: str) -> None:
    stack = rehearsal.deployed(name)
    api = stack.properties("HttpApi")
    routes = {stack.properties(i)["RouteKey"]: stack.properties(i) for i in stack.of_type("AWS::ApiGatewayV2::Route")}
    _, jwt = rehearsal.PARAMETER_SETS[name]

    assert not {"Body", "BodyS3Location"} & set(api), "no body to re-import and drop routes with"
    assert len(routes) == 6
    for route in routes.values():
        assert route["ApiId"] == stack.ref("HttpApi")
        assert route["Target"] == f"integrations/{stack.ref('ApiIntegration')}"
    guarded = routes["ANY /api/{proxy+}"]
    if jwt:
        assert (guarded["AuthorizationType"], guarded["AuthorizerId"]) == ("JWT", stack.ref("JwtAuthorizer"))
        assert stack.properties("JwtAuthorizer")["JwtConfiguration"] == {
            "Issuer": rehearsal.JWT["JwtIssuer"],
            "Audience": [rehearsal.JWT["JwtAudience"]],
        }
    else:
        assert guarded["AuthorizationType"] == "NONE"
        assert "AuthorizerId" not in guarded
    assert [r["AuthorizationType"] for key, r in routes.items() if key != "ANY /api/{proxy+}"] == ["NONE"] * 5


@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_the_api_calls_the_live_alias_which_codedeploy_moves_to_each_new_version(name: str) -> None:
    stack = rehearsal.deployed(name)
    alias = stack.properties("ApiFunctionAliaslive")
    version = version_id(stack.resources)
    update = stack.resolve(stack.resources["ApiFunctionAliaslive"]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"])

    assert (alias["Name"], alias["FunctionName"]) == ("live", stack.ref("ApiFunction"))
    assert stack.resources["ApiFunctionAliaslive"]["Properties"]["FunctionVersion"] == {
        "Fn::GetAtt": [version, "Version"]
    }
    assert stack.resources[version]["DeletionPolicy"] == "Retain", "CodeDeploy rolls back to the old version"
    assert update == {
        "ApplicationName": stack.ref("ServerlessDeploymentApplication"),
        "DeploymentGroupName": stack.ref("ApiFunctionDeploymentGroup"),
    }
    assert stack.properties("ApiIntegration")["IntegrationUri"] == stack.ref("ApiFunctionAliaslive")
    assert stack.properties("ApiInvokePermission")["FunctionName"] == stack.ref("ApiFunctionAliaslive")


@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_prod_deploys_by_canary_and_dev_all_at_once_rolled_back_by_the_canary_alarms(name: str) -> None:
    stack = rehearsal.deployed(name)
    group = stack.properties("ApiFunctionDeploymentGroup")
    canary = {"dev": "AllAtOnce", "prod": "Canary10Percent5Minutes"}[rehearsal.environment_of(name)]

    assert group["DeploymentConfigName"] == f"CodeDeployDefault.Lambda{canary}"
    assert group["AlarmConfiguration"] == {
        "Enabled": True,
        "Alarms": [{"Name": stack.ref("CanaryErrorsAlarm")}, {"Name": stack.ref("CanaryApi5xxAlarm")}],
    }
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    assert {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"} <= set(group["AutoRollbackConfiguration"]["Events"])
    assert group["ServiceRoleArn"] == stack.arn("DeploymentRole")
    assert stack.properties("ServerlessDeploymentApplication") == {"ComputePlatform": "Lambda"}


@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_every_alarm_notifies_the_stacks_topic(name: str) -> None:
    stack = rehearsal.deployed(name)
    topic = stack.ref("AlarmTopic")
    for logical_id in stack.of_type("AWS::CloudWatch::Alarm"):
        props = stack.properties(logical_id)
        assert props["AlarmActions"] == props["OKActions"] == [topic], logical_id


#: What moto does not apply (rehearsal.MOTO_DROPS), as the translated template must carry it.
DROPPED = {
    "JobsTable": {
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    },
    "PreviewCacheTable": {
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        "SSESpecification": {"SSEEnabled": True},
    },
    **{
        bucket: {
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": dict.fromkeys(
                ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
            ),
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        }
        for bucket in ("BlueprintsBucket", "CacheBucket")
    },
    "ApiFunction": {"Architectures": ["arm64"], "TracingConfig": {"Mode": "Active"}},
}


@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_what_moto_does_not_apply_is_in_the_translated_template(name: str) -> None:
    stack = rehearsal.deployed(name)
    environment = rehearsal.environment_of(name)
    for logical_id, properties in DROPPED.items():
        props = stack.properties(logical_id)
        assert set(properties) <= set(rehearsal.MOTO_DROPS[stack.resources[logical_id]["Type"]]), logical_id
        for key, value in properties.items():
            assert props[key] == value, f"{logical_id}.{key}"
    for bucket in ("BlueprintsBucket", "CacheBucket"):
        rules = {r["Id"]: r for r in stack.properties(bucket)["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-objects"]["ExpirationInDays"] == 30
    (cors,) = stack.properties("BlueprintsBucket")["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST"]
    log_group = stack.properties("ApiFunction")["LoggingConfig"]["LogGroup"]
    assert (
        log_group
        == stack.properties("ApiFunctionLogGroup")["LogGroupName"]
        == f"/aws/lambda/location-detection-{environment}-api"
    )


@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_the_secret_moto_cannot_create_is_translated_with_its_name_and_key(name: str) -> None:
    stack = rehearsal.deployed(name)
    environment = rehearsal.environment_of(name)
    secret = stack.properties("ApiKeysSecret")

    assert secret["Name"] == contract(environment)["API_KEYS_SECRET_NAME"]
    assert secret["KmsKeyId"] == stack.arn("ApiKeysSecretKey")
    assert json.loads(secret["SecretString"]) == {"keys": {}}


# ------------------------------------------------------------------------------ created in moto
@pytest.fixture(scope="module", params=["dev", "prod", "dev-pipeline"])
def created(request: pytest.FixtureRequest) -> Iterator[MotoStack]:
    """The parameter set's stack, created in moto (kept for the module: one create_stack per set)."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            env.setenv(key, value)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            yield rehearsal.create_in_moto(str(request.param))


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def physical_id(created: MotoStack, logical_id: str) -> str:
    return str(created.resources[logical_id]["PhysicalResourceId"])


def environment(created: MotoStack) -> str:
    return rehearsal.environment_of(created.name)


def test_the_stack_is_created_and_moto_skips_only_the_listed_types(created: MotoStack) -> None:
    types = set(expected(created.name).values())
    assert "AWS::Lambda::Version" in types

    assert created.status == "CREATE_COMPLETE"
    assert created.skipped == types & set(rehearsal.MOTO_SKIPPED), "list a skipped type in MOTO_SKIPPED, with why"
    present = set(rehearsal.deployed(created.name).present())
    created_here = {
        i for i in present if rehearsal.deployed(created.name).resources[i]["Type"] not in rehearsal.MOTO_SKIPPED
    }
    assert len(created_here) >= 20
    for logical_id in created_here:
        summary = created.resources[logical_id]
        assert summary["ResourceStatus"] == "CREATE_COMPLETE", logical_id
        assert summary["ResourceType"] == normalised({logical_id: summary["ResourceType"]}).popitem()[1], logical_id
        if "(physical id)" not in rehearsal.MOTO_DROPS.get(summary["ResourceType"], ()):
            assert summary["PhysicalResourceId"], logical_id


def test_api_gateway_may_invoke_the_function(created: MotoStack) -> None:
    policy = client("lambda").get_policy(FunctionName=f"location-detection-{environment(created)}-api")
    (statement,) = json.loads(policy["Policy"])["Statement"]

    assert (statement["Action"], statement["Principal"]) == (
        "lambda:InvokeFunction",
        {"Service": "apigateway.amazonaws.com"},
    )
    # moto skipped the API, so its id stays unresolved here; the translated template has the real one.
    source = statement["Condition"]["ArnLike"]["AWS:SourceArn"]
    assert source == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:${{HttpApi}}/*"


def test_the_tables_have_the_contracts_keys_index_and_billing(created: MotoStack) -> None:
    dynamodb = client("dynamodb")
    names = contract(environment(created))
    jobs = dynamodb.describe_table(TableName=names["JOBS_TABLE"])["Table"]
    cache = dynamodb.describe_table(TableName=names["PREVIEW_CACHE_TABLE"])["Table"]

    assert physical_id(created, "JobsTable") == names["JOBS_TABLE"]
    assert jobs["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    assert cache["KeySchema"] == [{"AttributeName": "blueprint_hash", "KeyType": "HASH"}]
    indexes = {index["IndexName"]: index for index in jobs["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"owner-created-index", "lookup-index"}
    assert indexes["owner-created-index"]["KeySchema"] == [
        {"AttributeName": "owner_id", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert indexes["owner-created-index"]["Projection"] == {"ProjectionType": "ALL"}
    # What the sweep and a client's erasure find without a Scan (src/storage/lookups.py).
    assert indexes["lookup-index"]["KeySchema"] == [
        {"AttributeName": "lookup_key", "KeyType": "HASH"},
        {"AttributeName": "lookup_at", "KeyType": "RANGE"},
    ]
    assert indexes["lookup-index"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    types = {a["AttributeName"]: a["AttributeType"] for a in jobs["AttributeDefinitions"]}
    assert (types["lookup_key"], types["lookup_at"]) == ("S", "N")
    for table in (jobs, cache):
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


@pytest.mark.parametrize("variable", ["BLUEPRINTS_BUCKET", "CACHE_BUCKET"])
def test_the_buckets_are_named_for_the_account_and_region_and_encrypted(created: MotoStack, variable: str) -> None:
    s3 = client("s3")
    name = contract(environment(created))[variable]
    logical_id = {"BLUEPRINTS_BUCKET": "BlueprintsBucket", "CACHE_BUCKET": "CacheBucket"}[variable]

    assert physical_id(created, logical_id) == name
    assert len(name) <= 63
    (rule,) = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_the_function_is_configured_as_the_code_expects_and_every_name_it_gets_exists(created: MotoStack) -> None:
    env_name = environment(created)
    config = client("lambda").get_function_configuration(FunctionName=f"location-detection-{env_name}-api")
    variables = config["Environment"]["Variables"]

    assert physical_id(created, "ApiFunction") == config["FunctionName"]
    assert (config["Runtime"], config["Handler"]) == ("python3.11", "api.rest_api.lambda_handler")
    assert (config["MemorySize"], config["Timeout"]) == (1024, 25)
    assert config["Role"].endswith("/" + physical_id(created, "ApiFunctionRole"))
    assert variables.items() >= contract(env_name).items()
    assert "AWS_ENDPOINT_URL" not in variables
    # Every name the function gets names something the stack created.
    client("dynamodb").describe_table(TableName=variables["JOBS_TABLE"])
    client("dynamodb").describe_table(TableName=variables["PREVIEW_CACHE_TABLE"])
    client("s3").head_bucket(Bucket=variables["BLUEPRINTS_BUCKET"])
    client("s3").head_bucket(Bucket=variables["CACHE_BUCKET"])
    assert rehearsal.deployed(created.name).properties("ApiKeysSecret")["Name"] == variables["API_KEYS_SECRET_NAME"]
    versions = client("lambda").list_versions_by_function(FunctionName=config["FunctionName"])["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"], "the deploy published a version"
    concurrency = client("lambda").get_function_concurrency(FunctionName=config["FunctionName"])
    reserved = int(rehearsal.parameters(created.name)["ReservedConcurrency"])
    assert concurrency.get("ReservedConcurrentExecutions", 0) == reserved


def test_the_runtime_parameters_exist_under_the_functions_path_and_parse(created: MotoStack) -> None:
    path = contract(environment(created))["CONFIG_PATH"]
    found = client("ssm").get_parameters_by_path(Path=path)["Parameters"]
    raw = {p["Name"][len(path) :]: p["Value"] for p in found}

    config, problems = parse_parameters(raw, RuntimeConfig())
    assert problems == []
    assert len(raw) == 7
    assert config.allowed_formats == ("png", "jpg", "pdf")
    assert (config.rate_limit_per_minute, config.rate_limit_burst) == (60, 20)


def test_the_functions_role_is_lambdas_with_its_inline_policies_on_the_created_resources(created: MotoStack) -> None:
    iam = client("iam")
    name = physical_id(created, "ApiFunctionRole")
    role = iam.get_role(RoleName=name)["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    policies = iam.list_role_policies(RoleName=name)["PolicyNames"]
    documents = json.dumps([iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"] for p in policies])
    names = contract(environment(created))

    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert sorted(policies) == ["jobs-data", "write-own-logs", "write-traces"]
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    for resource in (
        names["JOBS_TABLE"],
        names["PREVIEW_CACHE_TABLE"],
        names["BLUEPRINTS_BUCKET"],
        names["CACHE_BUCKET"],
    ):
        assert resource in documents, resource
    assert physical_id(created, "ApiKeysSecretKey") in documents, "decrypts with the secret's own key"


def test_the_keys_carry_the_stacks_tag_and_rotate_and_the_alias_points_at_the_secrets_key(created: MotoStack) -> None:
    kms = client("kms")
    owner = f"location-detection-{environment(created)}"
    for logical_id in ("ApiKeysSecretKey", "AlarmTopicKey"):
        key_id = physical_id(created, logical_id)
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
        assert tags[OWNER_TAG] == owner, logical_id
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True, logical_id
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases[f"alias/location-detection-{environment(created)}-api-keys"] == physical_id(
        created, "ApiKeysSecretKey"
    )


def test_the_alarm_topic_is_encrypted_with_its_own_key(created: MotoStack) -> None:
    topic_arn = physical_id(created, "AlarmTopic")
    attributes = client("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"]

    assert topic_arn.endswith(f":location-detection-{environment(created)}-alarms")
    assert physical_id(created, "AlarmTopicKey") in attributes["KmsMasterKeyId"]


def test_the_log_groups_keep_logs_for_their_environments_time(created: MotoStack) -> None:
    groups = {g["logGroupName"]: g for g in client("logs").describe_log_groups()["logGroups"]}
    days = {"dev": 14, "prod": 90}[environment(created)]
    for logical_id in (
        "ApiFunctionLogGroup",
        "ApiAccessLogGroup",
        "JobEventsFunctionLogGroup",
        "PipelineTaskFunctionLogGroup",
        "SweepFunctionLogGroup",
    ):
        assert groups[physical_id(created, logical_id)]["retentionInDays"] == days, logical_id


# ------------------------------------------------------------------------------------------ job events
@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
def test_the_workers_are_translated_with_the_shared_package_their_own_roles_and_no_alias(name: str) -> None:
    stack = rehearsal.deployed(name)
    environment = rehearsal.environment_of(name)
    bucket, key = rehearsal.PACKAGE_URI.removeprefix("s3://").split("/", 1)
    for function, handler, role in (
        ("JobEventsFunction", "workers.stream_consumer.lambda_handler", "JobEventsFunctionRole"),
        ("PipelineTaskFunction", "workers.pipeline_task.lambda_handler", "PipelineTaskFunctionRole"),
        ("SweepFunction", "workers.sweep.lambda_handler", "SweepFunctionRole"),
    ):
        props = stack.properties(function)
        assert props["Code"] == {"S3Bucket": bucket, "S3Key": key}, "one package, the API's"
        assert (props["Handler"], props["Role"]) == (handler, stack.arn(role))
        assert (props["Runtime"], props["Architectures"], props["TracingConfig"]) == (
            "python3.11",
            ["arm64"],
            {"Mode": "Active"},
        )
        assert props["Environment"]["Variables"]["ENVIRONMENT"] == environment
        assert not [i for i in stack.resources if i.startswith(f"{function}Version")], "no versions: no canary"


def test_the_stack_created_the_stream_mapping_with_its_failure_handling(created: MotoStack) -> None:
    environment_name = environment(created)
    (mapping,) = client("lambda").list_event_source_mappings(
        FunctionName=f"location-detection-{environment_name}-job-events"
    )["EventSourceMappings"]
    stream = client("dynamodb").describe_table(TableName=contract(environment_name)["JOBS_TABLE"])["Table"]

    assert physical_id(created, "JobEventsMapping") == mapping["UUID"]
    assert mapping["EventSourceArn"] == stream["LatestStreamArn"]
    assert stream["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (mapping["BisectBatchOnFunctionError"], mapping["MaximumRetryAttempts"]) == (True, 10)
    assert mapping["MaximumRecordAgeInSeconds"] == 6 * 3600
    (pattern,) = mapping["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == {"dynamodb": {"Keys": {"job_id": {"S": [{"prefix": "job_"}]}}}}
    queue_arn = client("sqs").get_queue_attributes(
        QueueUrl=physical_id(created, "JobEventsFailedQueue"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}


def test_the_stack_created_the_bus_the_consumer_is_told_of(created: MotoStack) -> None:
    name = f"location-detection-{environment(created)}"
    config = client("lambda").get_function_configuration(FunctionName=f"{name}-job-events")

    assert client("events").describe_event_bus(Name=name)["Name"] == name
    assert config["Environment"]["Variables"]["EVENT_BUS_NAME"] == name
    assert config["Role"].endswith("/" + physical_id(created, "JobEventsFunctionRole"))


def test_the_pipeline_rule_exists_only_with_a_pipeline_and_starts_it_through_its_role(created: MotoStack) -> None:
    bus = f"location-detection-{environment(created)}"
    rules = client("events").list_rules(EventBusName=bus)["Rules"]
    if created.name not in rehearsal.WITH_PIPELINE:
        assert rules == []
        return
    (rule,) = rules
    (target,) = client("events").list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
    assert json.loads(rule["EventPattern"])["detail"] == {"type": ["job.created"]}
    assert target["Arn"] == rehearsal.PIPELINE["PipelineStateMachineArn"]
    assert target["RoleArn"].endswith("/" + physical_id(created, "PipelineStartRole"))
    assert target["DeadLetterConfig"]["Arn"].endswith(f":{bus}-pipeline-start-failed")
    role = client("iam").get_role(RoleName=physical_id(created, "PipelineStartRole"))["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceArn"] == rule["Arn"]


def test_the_sweep_runs_hourly_with_its_own_role_and_the_stacks_names(created: MotoStack) -> None:
    env_name = environment(created)
    config = client("lambda").get_function_configuration(FunctionName=f"location-detection-{env_name}-sweep")
    variables = config["Environment"]["Variables"]
    rule = client("events").describe_rule(Name=f"location-detection-{env_name}-sweep")
    (target,) = client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
    policy = client("lambda").get_policy(FunctionName=config["FunctionName"])
    (statement,) = json.loads(policy["Policy"])["Statement"]

    assert (config["Handler"], config["Runtime"], config["Timeout"]) == (
        "workers.sweep.lambda_handler",
        "python3.11",
        300,
    )
    assert config["Role"].endswith("/" + physical_id(created, "SweepFunctionRole"))
    data = ("JOBS_TABLE", "PREVIEW_CACHE_TABLE", "BLUEPRINTS_BUCKET", "CACHE_BUCKET")
    assert {name: variables[name] for name in data} == {name: contract(env_name)[name] for name in data}
    assert str(variables["BLUEPRINT_RETENTION_DAYS"]) == "7"  # moto keeps the number a number
    assert (rule["ScheduleExpression"], rule["State"]) == ("rate(1 hour)", "ENABLED")
    assert target["Arn"] == config["FunctionArn"]
    assert (statement["Principal"], statement["Condition"]["ArnLike"]["AWS:SourceArn"]) == (
        {"Service": "events.amazonaws.com"},
        rule["Arn"],
    )
