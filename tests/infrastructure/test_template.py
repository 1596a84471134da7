"""template.yaml: the resources the contract promises, named per environment, scoped, encrypted, retained.

Most tests read the template as written (``stack.template``) to check its structure, and resolve it with
``Stack`` (dev and prod) where the deployed values matter: names, ARNs in policies, environment variables.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_api.cfn_template import LOCAL_ACCOUNT_ID, Stack, load_template
from services.runtime_config import PARAMETERS, RuntimeConfig, parse_parameters

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "prod")
REGION = "us-east-1"
NAME_PROPERTIES = ("TableName", "BucketName", "Name", "FunctionName", "LogGroupName", "AliasName", "TopicName")
#: Every region name, as botocore 1.44.5 lists them (botocore/data/partitions.json: aws, aws-cn, aws-us-gov,
#: aws-iso*, aws-eusc; the "*-global" endpoints are not regions). A region botocore adds later fails
#: test_the_region_list_is_botocores until it is added here. The longest, us-isof-south-1, has 15
#: characters; the longest bucket name (prod's blueprints) then has exactly S3's maximum, 63.
REGION_NAMES = (
    *("us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1", "mx-central-1"),
    *("sa-east-1", "sa-west-1", "af-south-1", "me-south-1", "me-central-1", "me-west-1", "il-central-1"),
    *("eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1"),
    "eu-south-2",
    *("ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3"),
    *("ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6"),
    "ap-southeast-7",
    *("cn-north-1", "cn-northwest-1", "us-gov-east-1", "us-gov-west-1", "us-iso-east-1", "us-iso-west-1"),
    *("us-isob-east-1", "us-isob-west-1", "us-isof-east-1", "us-isof-south-1", "eu-isoe-west-1", "eusc-de-east-1"),
)
RUNTIME_PARAMETERS = (
    "max-upload-bytes",
    "allowed-formats",
    "cors-allowed-origins",
    "presign-expiry-seconds",
    "default-page-size",
    "rate-limit-per-minute",
    "rate-limit-burst",
)


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def prod_stack() -> Stack:
    return Stack(load_template(), {"Environment": "prod"})


@pytest.fixture(params=ENVIRONMENTS)
def env_stack(request: pytest.FixtureRequest, stack: Stack, prod_stack: Stack) -> Stack:
    """The template resolved for each environment in turn."""
    return {"dev": stack, "prod": prod_stack}[request.param]


def env_of(stack: Stack) -> str:
    return stack.parameters["Environment"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def only_resource(stack: Stack, resource_type: str) -> tuple[str, dict[str, Any]]:
    """The one resource of a type (logical id, resource as written); fails if there are none or several."""
    found = stack.of_type(resource_type)
    assert len(found) == 1, f"expected exactly one {resource_type}, found {sorted(found)}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource


def raw_properties(stack: Stack, logical_id: str) -> dict[str, Any]:
    """A resource's properties as written in the template (intrinsic functions unresolved)."""
    return dict(stack.resources[logical_id].get("Properties", {}))


def function_properties(stack: Stack, logical_id: str = "ApiFunction") -> dict[str, Any]:
    """The API's function (the workers' functions: test_events_template.py)."""
    assert stack.resources[logical_id]["Type"] == "AWS::Serverless::Function"
    return raw_properties(stack, logical_id)


def contract_names(environment: str, account: str = LOCAL_ACCOUNT_ID, region: str = REGION) -> dict[str, str]:
    """The names API_CONTRACT.md's Storage table gives each resource, by the variable that carries it."""
    prefix = f"location-detection-{environment}"
    return {
        "ENVIRONMENT": environment,
        "JOBS_TABLE": f"{prefix}-jobs",
        "PREVIEW_CACHE_TABLE": f"{prefix}-preview_cache",
        "BLUEPRINTS_BUCKET": f"{prefix}-blueprints-{account}-{region}",
        "CACHE_BUCKET": f"{prefix}-cache-{account}-{region}",
        "CONFIG_PATH": f"/location-detection/{environment}/",
        "API_KEYS_SECRET_NAME": f"location-detection/{environment}/api-keys",
    }


def role_statements(stack: Stack, role: str = "ApiFunctionRole") -> list[dict[str, Any]]:
    """Every statement of every inline policy of the role, as written."""
    statements: list[dict[str, Any]] = []
    for policy in raw_properties(stack, role).get("Policies", []):
        statements.extend(as_list(policy["PolicyDocument"]["Statement"]))
    return statements


def arn_of(stack: Stack, logical_id: str) -> str:
    return str(stack.resolve({"Fn::GetAtt": [logical_id, "Arn"]}))


def bucket_ids(stack: Stack) -> list[str]:
    return sorted(stack.of_type("AWS::S3::Bucket"))


def table_ids(stack: Stack) -> list[str]:
    return sorted(stack.of_type("AWS::DynamoDB::Table"))


def table_named(stack: Stack, suffix: str) -> dict[str, Any]:
    """The resolved properties of the table ``location-detection-{env}-{suffix}``."""
    name = f"location-detection-{env_of(stack)}-{suffix}"
    for logical_id in table_ids(stack):
        props = stack.properties(logical_id)
        if props["TableName"] == name:
            return props
    raise AssertionError(f"no DynamoDB table named {name}")


def bucket_id_named(stack: Stack, suffix: str) -> str:
    name = f"location-detection-{env_of(stack)}-{suffix}-{stack.account_id}-{stack.region}"
    for logical_id in bucket_ids(stack):
        if stack.properties(logical_id)["BucketName"] == name:
            return logical_id
    raise AssertionError(f"no S3 bucket named {name}")


def lifecycle_rules(stack: Stack, bucket_id: str) -> list[dict[str, Any]]:
    rules = stack.properties(bucket_id)["LifecycleConfiguration"]["Rules"]
    assert all(rule["Status"] == "Enabled" for rule in rules), f"{bucket_id} has a disabled lifecycle rule"
    return list(rules)


def ssm_parameters(stack: Stack) -> dict[str, Any]:
    """Parameter Store parameters by resolved name -> resolved value."""
    return {
        props["Name"]: props["Value"]
        for props in (stack.properties(logical_id) for logical_id in stack.of_type("AWS::SSM::Parameter"))
    }


# ----------------------------------------------------------------------------------------- the basics
def test_template_is_a_2010_09_09_sam_template(stack: Stack) -> None:
    assert stack.template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert stack.template["Transform"] == "AWS::Serverless-2016-10-31"


def test_environment_parameter_allows_exactly_dev_and_prod(stack: Stack) -> None:
    environment = stack.template["Parameters"]["Environment"]
    assert environment["Type"] == "String"
    assert environment["AllowedValues"] == ["dev", "prod"]


def test_cfn_lint_with_informational_checks_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), "--include-checks", "I", "--", "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# ------------------------------------------------------------------------------------------- HTTP API
#: Every route of the API: API Gateway forwards all of them to the one integration (the router decides).
ROUTE_KEYS = {
    "HealthRoute": "GET /health",
    "OpenApiRoute": "GET /api/v1/openapi.json",
    "RootRoute": "ANY /",
    "ProxyRoute": "ANY /{proxy+}",
    "ApiRoutes": "ANY /api/{proxy+}",
    "ApiPreflightRoute": "OPTIONS /api/{proxy+}",
}


def test_one_http_api_with_no_generated_body(stack: Stack) -> None:
    """Routes defined twice: SAM's generated OpenAPI body, re-imported on each update, dropped the routes
    that lived beside it. There is no body to re-import: the API is a plain resource, every route its own."""
    _, api = only_resource(stack, "AWS::ApiGatewayV2::Api")

    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert not {"Body", "BodyS3Location"} & set(api["Properties"])
    assert stack.of_type("AWS::Serverless::HttpApi") == {}
    assert stack.of_type("AWS::Serverless::Api") == {}
    for function in stack.of_type("AWS::Serverless::Function"):
        events = function_properties(stack, function).get("Events", {})
        kinds = {event["Type"] for event in events.values()}
        assert not kinds & {"Api", "HttpApi"}, f"{function}: API events make SAM generate a body"
    assert "Events" not in function_properties(stack), "the API function has no events at all"


def test_the_default_stage_deploys_itself_and_is_throttled_by_parameters(stack: Stack) -> None:
    _, stage = only_resource(stack, "AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]

    assert props["ApiId"] == {"Ref": "HttpApi"}
    assert (props["StageName"], props["AutoDeploy"]) == ("$default", True)
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    for parameter in ("ApiThrottlingRateLimit", "ApiThrottlingBurstLimit"):
        assert stack.template["Parameters"][parameter]["Type"] == "Number"
        assert int(stack.parameters[parameter]) >= 1


def test_every_route_goes_to_the_one_lambda_integration_with_payload_2_0(stack: Stack) -> None:
    routes = stack.of_type("AWS::ApiGatewayV2::Route")
    (integration_id, integration), *others = stack.of_type("AWS::ApiGatewayV2::Integration").items()

    assert others == []
    assert {logical_id: r["Properties"]["RouteKey"] for logical_id, r in routes.items()} == ROUTE_KEYS
    for logical_id, route in routes.items():
        assert route["Properties"]["ApiId"] == {"Ref": "HttpApi"}, logical_id
        assert route["Properties"]["Target"] == {"Fn::Sub": f"integrations/${{{integration_id}}}"}, logical_id
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    # The alias, never $LATEST: what CodeDeploy shifts gradually is what API Gateway calls.
    assert integration["Properties"]["IntegrationUri"] == {"Ref": "ApiFunction.Alias"}


def test_only_the_api_routes_can_require_a_token(stack: Stack) -> None:
    routes = stack.of_type("AWS::ApiGatewayV2::Route")
    open_routes = {logical_id for logical_id, r in routes.items() if r["Properties"]["AuthorizationType"] == "NONE"}
    assert open_routes == set(ROUTE_KEYS) - {"ApiRoutes"}


def test_api_gateway_may_invoke_the_function_from_this_api_only(env_stack: Stack) -> None:
    (permission_id, _), *others = env_stack.of_type("AWS::Lambda::Permission").items()
    props = env_stack.properties(permission_id)
    api_id = env_stack.ref("HttpApi")

    assert others == []
    assert (props["Action"], props["Principal"]) == ("lambda:InvokeFunction", "apigateway.amazonaws.com")
    assert props["FunctionName"] == env_stack.alias("ApiFunction")
    assert props["FunctionName"].endswith(":live")
    assert props["SourceArn"] == f"arn:aws:execute-api:{REGION}:{LOCAL_ACCOUNT_ID}:{api_id}/*"


# ------------------------------------------------------------------------------------------- function
def test_the_api_function_arm64_python311_with_the_router_handler(stack: Stack) -> None:
    props = function_properties(stack)

    assert props["Runtime"] == "python3.11"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "api.rest_api.lambda_handler"
    assert props["CodeUri"] == "src/"
    assert (ROOT / props["CodeUri"] / "api" / "rest_api.py").is_file()


def test_function_answers_before_api_gateway_times_out_and_has_memory(stack: Stack) -> None:
    props = function_properties(stack)

    assert props["Timeout"] < 30, "API Gateway's integration timeout is 30 s; the function must answer first"
    assert props["MemorySize"] >= 512


def test_function_uses_the_explicit_least_privilege_role(stack: Stack) -> None:
    props = function_properties(stack)

    assert props["Role"] == {"Fn::GetAtt": ["ApiFunctionRole", "Arn"]}
    assert "Policies" not in props, "SAM policy templates would be ignored next to an explicit Role"
    assert stack.resources["ApiFunctionRole"]["Type"] == "AWS::IAM::Role"


def test_function_environment_names_the_contracts_resources(env_stack: Stack) -> None:
    environment = env_of(env_stack)
    variables = env_stack.function_environment()

    assert {"LOG_LEVEL", *contract_names(environment)} <= variables.keys()
    for name, expected in contract_names(environment).items():
        assert variables[name] == expected, name
    assert variables["LOG_LEVEL"] in env_stack.template["Parameters"]["LogLevel"]["AllowedValues"]


def test_function_logs_to_its_own_log_group_with_retention_by_environment(env_stack: Stack) -> None:
    log_groups = env_stack.of_type("AWS::Logs::LogGroup")
    props = function_properties(env_stack)
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]

    assert log_group_id in log_groups
    assert raw_properties(env_stack, log_group_id)["RetentionInDays"] == {
        "Fn::FindInMap": ["EnvironmentSettings", {"Ref": "Environment"}, "LogRetentionInDays"]
    }
    # Lambda writes to /aws/lambda/<function name> unless told otherwise: keep the two in step.
    function_name = env_stack.resolve(props["FunctionName"])
    assert env_stack.properties(log_group_id)["LogGroupName"] == f"/aws/lambda/{function_name}"


# ------------------------------------------------------------------------------------- resource names
def test_every_named_resource_carries_its_environment(env_stack: Stack) -> None:
    environment = env_of(env_stack)
    other = {"dev": "prod", "prod": "dev"}[environment]
    names = {
        f"{logical_id}.{key}": env_stack.resolve(resource["Properties"][key])
        for logical_id, resource in env_stack.resources.items()
        for key in NAME_PROPERTIES
        if key in resource.get("Properties", {})
    }

    assert len(names) >= 12, names  # tables, buckets, API, function, log group, secret, parameters
    for where, name in names.items():
        assert isinstance(name, str), where
        assert environment in name, f"{where} = {name!r} does not name {environment}"
        assert other not in name, f"{where} = {name!r} names {other}"


# ----------------------------------------------------------------------------------------- DynamoDB
@pytest.mark.parametrize(("suffix", "key"), [("jobs", "job_id"), ("preview_cache", "blueprint_hash")])
def test_table_key_schema(env_stack: Stack, suffix: str, key: str) -> None:
    table = table_named(env_stack, suffix)

    assert table["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    assert {"AttributeName": key, "AttributeType": "S"} in table["AttributeDefinitions"]


@pytest.mark.parametrize("suffix", ["jobs", "preview_cache"])
def test_table_is_on_demand_encrypted_and_expires_items(env_stack: Stack, suffix: str) -> None:
    table = table_named(env_stack, suffix)

    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_jobs_table_has_point_in_time_recovery_in_every_environment(env_stack: Stack) -> None:
    table = table_named(env_stack, "jobs")
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_exactly_the_two_contract_tables(env_stack: Stack) -> None:
    names = {env_stack.properties(logical_id)["TableName"] for logical_id in table_ids(env_stack)}
    environment = env_of(env_stack)
    assert names == {f"location-detection-{environment}-jobs", f"location-detection-{environment}-preview_cache"}


# ---------------------------------------------------------------------------------------------- S3
def test_exactly_the_two_contract_buckets(env_stack: Stack) -> None:
    names = {env_stack.properties(logical_id)["BucketName"] for logical_id in bucket_ids(env_stack)}
    expected = contract_names(env_of(env_stack))
    assert names == {expected["BLUEPRINTS_BUCKET"], expected["CACHE_BUCKET"]}


def test_the_region_list_is_botocores() -> None:
    import botocore

    partitions = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    regions = {name for p in partitions["partitions"] for name in p["regions"] if not name.endswith("-global")}
    assert regions <= set(REGION_NAMES), f"add {sorted(regions - set(REGION_NAMES))} to REGION_NAMES"


@pytest.mark.parametrize("account", ["123456789012", "000000000000"])
def test_bucket_names_are_unique_across_accounts_and_regions_and_fit_s3s_limit(account: str) -> None:
    """Bucket names are global: the account and the region make them unique. S3 allows 3 to 63
    characters (lower-case letters, digits, dots, hyphens); every region name must fit."""
    template = load_template()
    names = {
        (environment, region): {
            Stack(template, {"Environment": environment}, region=region, account_id=account).properties(b)["BucketName"]
            for b in ("BlueprintsBucket", "CacheBucket")
        }
        for environment in ENVIRONMENTS
        for region in REGION_NAMES
    }
    longest = max((name for found in names.values() for name in found), key=len)

    assert len(longest) <= 63, longest
    assert longest == f"location-detection-prod-blueprints-{account}-us-isof-south-1"
    for (environment, region), found in names.items():
        assert found == {contract_names(environment, account, region)[k] for k in ("BLUEPRINTS_BUCKET", "CACHE_BUCKET")}
        for name in found:
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name), name
    assert len({name for found in names.values() for name in found}) == 2 * len(names), "no two stacks share one"


@pytest.mark.parametrize("suffix", ["blueprints", "cache"])
def test_bucket_is_encrypted_private_and_owner_enforced(stack: Stack, suffix: str) -> None:
    props = stack.properties(bucket_id_named(stack, suffix))

    encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert [rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in encryption] == ["AES256"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


@pytest.mark.parametrize("suffix", ["blueprints", "cache"])
def test_bucket_expires_everything_after_30_days_and_aborts_uploads_after_1(stack: Stack, suffix: str) -> None:
    rules = lifecycle_rules(stack, bucket_id_named(stack, suffix))
    whole_bucket = [rule for rule in rules if not rule.get("Prefix") and "TagFilters" not in rule]

    assert len(whole_bucket) == 1, rules
    assert whole_bucket[0]["ExpirationInDays"] == 30
    assert whole_bucket[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_blueprints_bucket_expires_unused_uploads_after_1_day(stack: Stack) -> None:
    rules = lifecycle_rules(stack, bucket_id_named(stack, "blueprints"))
    uploads = [rule for rule in rules if rule.get("Prefix") == "uploads/"]

    assert len(uploads) == 1, rules
    assert uploads[0]["ExpirationInDays"] == 1


@pytest.mark.parametrize("suffix", ["blueprints", "cache"])
def test_bucket_policy_denies_every_request_without_tls(env_stack: Stack, suffix: str) -> None:
    bucket_id = bucket_id_named(env_stack, suffix)
    policies = [
        logical_id
        for logical_id, resource in env_stack.of_type("AWS::S3::BucketPolicy").items()
        if resource["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    assert len(policies) == 1, f"{bucket_id} needs exactly one bucket policy, found {policies}"
    statements = as_list(env_stack.properties(policies[0])["PolicyDocument"]["Statement"])
    bucket_arn = arn_of(env_stack, bucket_id)

    deny_plain_http = [
        statement
        for statement in statements
        if statement["Effect"] == "Deny"
        and statement["Principal"] == "*"
        and as_list(statement["Action"]) == ["s3:*"]
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(deny_plain_http) == 1, statements
    assert set(as_list(deny_plain_http[0]["Resource"])) == {bucket_arn, f"{bucket_arn}/*"}
    assert bucket_arn == f"arn:aws:s3:::location-detection-{env_of(env_stack)}-{suffix}-{LOCAL_ACCOUNT_ID}-{REGION}"


# --------------------------------------------------------------------------------------------- IAM
def test_function_role_is_assumable_by_lambda_only_and_has_no_managed_policies(stack: Stack) -> None:
    props = raw_properties(stack, "ApiFunctionRole")
    (trust,) = as_list(props["AssumeRolePolicyDocument"]["Statement"])

    assert trust == {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    assert "ManagedPolicyArns" not in props, "managed policies (even AWSLambdaBasicExecutionRole) grant on *"


#: X-Ray has no resource-level permissions: its two write actions are the only ones allowed on "*".
XRAY_WRITE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_function_role_grants_no_wildcard_resource_or_action(stack: Stack) -> None:
    statements = role_statements(stack)
    assert statements

    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement, statement
        assert "NotResource" not in statement, statement
        actions = as_list(statement["Action"])
        for action in actions:
            assert action != "*", f"wildcard action in {statement.get('Sid', statement)}"
            assert not action.endswith(":*"), f"service-wide action {action!r}"
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= XRAY_WRITE_ACTIONS, f"wildcard resource in {statement.get('Sid', statement)}"


def test_function_role_may_write_traces_and_nothing_else_of_x_ray(stack: Stack) -> None:
    xray = [action for statement in role_statements(stack) for action in as_list(statement["Action"])]
    assert {action for action in xray if action.startswith("xray:")} == XRAY_WRITE_ACTIONS


#: Where an erasure deletes versions: a job's (or an upload's) objects, and nothing else of the buckets.
ERASURE_PREFIXES = {
    "BlueprintsBucket": ("blueprints/", "uploads/"),
    "CacheBucket": ("cache/results/", "feedback/"),
}
ERASURE_LISTINGS = ["blueprints/job_*/", "uploads/upl_*/", "cache/results/job_*/", "feedback/job_*/"]


@pytest.mark.parametrize("role", ["ApiFunctionRole", "SweepFunctionRole"])
def test_function_roles_destroy_versions_only_of_job_objects_and_never_bucket_settings(
    env_stack: Stack, role: str
) -> None:
    """Erasure deletes every version of a job's objects (docs/erasure.md): the role may do that under the job
    prefixes only, list versions only one job's or upload's prefix at a time, and change no bucket setting
    (versioning, lifecycle, policy)."""
    statements = env_stack.resolve(role_statements(env_stack, role))
    by_action: dict[str, list[dict[str, Any]]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, []).append(statement)
    s3_actions = {action for action in by_action if action.startswith("s3:")}
    erasure = {"s3:ListBucketVersions", "s3:DeleteObjectVersion"}

    expected = erasure | (
        {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:PutObjectTagging"}
        if role == "ApiFunctionRole"
        else set()
    )
    assert s3_actions == expected
    (deletes,) = by_action["s3:DeleteObjectVersion"]
    assert sorted(as_list(deletes["Resource"])) == sorted(
        f"{arn_of(env_stack, bucket)}/{prefix}*" for bucket, prefixes in ERASURE_PREFIXES.items() for prefix in prefixes
    )
    (listing,) = by_action["s3:ListBucketVersions"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ERASURE_LISTINGS}}, "one job's prefix at a time"
    if role == "ApiFunctionRole":
        (tagging,) = by_action["s3:PutObjectTagging"]
        assert as_list(tagging["Resource"]) == [f"{arn_of(env_stack, 'BlueprintsBucket')}/blueprints/*"]


def test_function_role_decrypts_the_secret_key_only_through_secrets_manager(env_stack: Stack) -> None:
    (statement,) = [
        statement
        for statement in env_stack.resolve(role_statements(env_stack))
        if any(action.startswith("kms:") for action in as_list(statement["Action"]))
    ]

    assert as_list(statement["Action"]) == ["kms:Decrypt"]
    assert as_list(statement["Resource"]) == [arn_of(env_stack, "ApiKeysSecretKey")]
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


def test_function_role_reaches_only_its_own_tables_buckets_parameters_secret_and_log_group(
    env_stack: Stack,
) -> None:
    environment = env_of(env_stack)
    prefix = f"location-detection-{environment}"
    buckets = {suffix: f"{prefix}-{suffix}-{LOCAL_ACCOUNT_ID}-{REGION}" for suffix in ("blueprints", "cache")}
    table = f"arn:aws:dynamodb:{env_stack.region}:{LOCAL_ACCOUNT_ID}:table/{prefix}"
    parameters = f"arn:aws:ssm:{env_stack.region}:{LOCAL_ACCOUNT_ID}:parameter/location-detection/{environment}"
    secret = env_stack.resolve({"Ref": "ApiKeysSecret"})
    secret_key = arn_of(env_stack, "ApiKeysSecretKey")
    log_group = arn_of(env_stack, "ApiFunctionLogGroup")
    prefixes = {"blueprints": ("blueprints/", "uploads/"), "cache": ("cache/results/", "feedback/")}
    erasure = {f"arn:aws:s3:::{buckets[suffix]}/{prefix}*" for suffix in prefixes for prefix in prefixes[suffix]}
    allowed = erasure | {
        "*",  # X-Ray's two write actions only (test_function_role_grants_no_wildcard_resource_or_action)
        f"{table}-jobs",
        f"{table}-jobs/index/*",
        f"{table}-preview_cache",
        f"arn:aws:s3:::{buckets['blueprints']}",
        f"arn:aws:s3:::{buckets['blueprints']}/*",
        f"arn:aws:s3:::{buckets['cache']}",
        f"arn:aws:s3:::{buckets['cache']}/*",
        parameters,
        f"{parameters}/*",
        secret,
        secret_key,
        log_group,
    }

    referenced = {
        resource
        for statement in env_stack.resolve(role_statements(env_stack))
        for resource in as_list(statement["Resource"])
    }

    assert referenced <= allowed, f"reaches beyond its own resources: {sorted(referenced - allowed)}"
    needed = {
        f"{table}-jobs",
        f"{table}-preview_cache",
        f"arn:aws:s3:::{buckets['blueprints']}/*",
        f"arn:aws:s3:::{buckets['cache']}/*",
        f"{parameters}/*",
        secret,
        log_group,
    }
    assert needed <= referenced, f"cannot reach {sorted(needed - referenced)}"
    # CloudFormation's own forms: a secret's ARN ends in a random suffix, a log group's in ":*".
    assert re.fullmatch(
        rf"arn:aws:secretsmanager:{REGION}:\d{{12}}:secret:location-detection/{environment}/api-keys-\w{{6}}", secret
    )
    assert log_group == f"arn:aws:logs:{REGION}:{LOCAL_ACCOUNT_ID}:log-group:/aws/lambda/{prefix}-api:*"


# --------------------------------------------------------------------------- configuration and secret
def test_runtime_parameters_live_under_the_environments_path(env_stack: Stack) -> None:
    path = f"/location-detection/{env_of(env_stack)}/"
    names = set(ssm_parameters(env_stack))

    assert names == {path + name for name in RUNTIME_PARAMETERS}
    assert set(RUNTIME_PARAMETERS) == set(PARAMETERS), "template and src/services/runtime_config.py disagree"


def test_runtime_parameter_defaults_parse_without_problems(env_stack: Stack) -> None:
    path = f"/location-detection/{env_of(env_stack)}/"
    raw = {name[len(path) :]: str(value) for name, value in ssm_parameters(env_stack).items()}

    config, problems = parse_parameters(raw, RuntimeConfig())

    assert problems == []
    assert config.max_upload_bytes == 50 * 1024 * 1024
    assert config.allowed_formats == ("png", "jpg", "pdf")
    assert config.cors_allowed_origins == ("*",)
    assert (config.rate_limit_per_minute, config.rate_limit_burst) == (60, 20), "the contract's defaults"


def test_api_keys_secret_is_named_per_environment(env_stack: Stack) -> None:
    logical_id, _ = only_resource(env_stack, "AWS::SecretsManager::Secret")
    assert env_stack.properties(logical_id)["Name"] == f"location-detection/{env_of(env_stack)}/api-keys"


# ------------------------------------------------------------------------------ outputs and retention
def test_outputs_name_the_api_url_tables_and_buckets(env_stack: Stack) -> None:
    outputs = {name: env_stack.resolve(output["Value"]) for name, output in env_stack.template["Outputs"].items()}
    names = contract_names(env_of(env_stack))

    assert outputs["ApiUrl"].startswith("https://")
    assert outputs["JobsTableName"] == names["JOBS_TABLE"]
    assert outputs["PreviewCacheTableName"] == names["PREVIEW_CACHE_TABLE"]
    assert outputs["BlueprintsBucketName"] == names["BLUEPRINTS_BUCKET"]
    assert outputs["CacheBucketName"] == names["CACHE_BUCKET"]


@pytest.mark.parametrize(
    "resource_type",
    ["AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup", "AWS::KMS::Key"],
)
def test_stateful_resources_state_their_deletion_and_replacement_policies(stack: Stack, resource_type: str) -> None:
    resources = stack.of_type(resource_type)
    assert resources
    for logical_id, resource in resources.items():
        assert resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate", "Delete", "Snapshot"), logical_id
        assert resource.get("UpdateReplacePolicy") in ("Retain", "Delete", "Snapshot"), logical_id


#: Retained by every stack deletion and replacement, but deleted when the stack's first create rolls back
#: (RetainExceptOnCreate): a plain Retain would leave them behind, and the next deploy would fail on
#: "already exists". UpdateReplacePolicy does not accept RetainExceptOnCreate, so it stays Retain.
RETAINED_EXCEPT_ON_CREATE = ("JobsTable", "BlueprintsBucket", "CacheBucket", "ApiKeysSecret", "ApiKeysSecretKey")


@pytest.mark.parametrize("logical_id", RETAINED_EXCEPT_ON_CREATE)
def test_data_is_retained_except_when_the_first_create_rolls_back(stack: Stack, logical_id: str) -> None:
    """In every environment (literal policies, no condition); the secret's key with the secret, which
    could never be read again without it."""
    resource = stack.resources[logical_id]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


def test_the_retained_resources_are_the_tables_buckets_secret_and_key_of_the_contract(stack: Stack) -> None:
    retained = {
        logical_id
        for logical_id, resource in stack.resources.items()
        if resource.get("DeletionPolicy", "Delete") != "Delete"
        or resource.get("UpdateReplacePolicy", "Delete") != "Delete"
    }
    assert retained == set(RETAINED_EXCEPT_ON_CREATE)
    assert {stack.resources[i]["Type"] for i in retained} == {
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::SecretsManager::Secret",
        "AWS::KMS::Key",
    }


def test_api_routes_take_an_optional_jwt_authorizer(stack: Stack) -> None:
    """/api/* has routes of its own: JWT-guarded when JwtIssuer is set, open (X-API-Key) otherwise;
    preflights never need a token; the authorizer exists only with an issuer."""
    resources = stack.resources
    assert resources["JwtAuthorizer"]["Condition"] == "HasJwt"
    api_routes = resources["ApiRoutes"]["Properties"]
    assert api_routes["RouteKey"] == "ANY /api/{proxy+}"
    assert api_routes["AuthorizationType"] == {"Fn::If": ["HasJwt", "JWT", "NONE"]}
    assert resources["ApiPreflightRoute"]["Properties"]["AuthorizationType"] == "NONE"
    assert resources["ApiIntegration"]["Properties"]["PayloadFormatVersion"] == "2.0"
    without = Stack(stack.template, {"Environment": "dev"})
    with_jwt = Stack(stack.template, {"Environment": "dev", "JwtIssuer": "https://issuer.example", "JwtAudience": "a"})
    assert without.properties("ApiRoutes")["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in without.properties("ApiRoutes")
    assert with_jwt.properties("ApiRoutes")["AuthorizationType"] == "JWT"
    assert with_jwt.properties("JwtAuthorizer")["JwtConfiguration"] == {
        "Issuer": "https://issuer.example",
        "Audience": ["a"],
    }


# ------------------------------------------------------------------------------------ retention (issue 18)
@pytest.mark.parametrize(("value", "dev_days", "prod_days"), [("0", 14, 90), ("30", 30, 30), ("1", 1, 1)])
def test_access_log_retention_is_a_parameter_defaulting_to_the_environments(
    stack: Stack, value: str, dev_days: int, prod_days: int
) -> None:
    """Access logs hold clients' IP addresses: how long they stay is the operator's to choose."""
    parameter = stack.template["Parameters"]["AccessLogRetentionDays"]
    assert (parameter["Type"], parameter["Default"]) == ("Number", 0)
    for environment, days in (("dev", dev_days), ("prod", prod_days)):
        chosen = Stack(stack.template, {"Environment": environment, "AccessLogRetentionDays": value})
        assert int(chosen.properties("ApiAccessLogGroup")["RetentionInDays"]) == days, environment
        assert chosen.properties("ApiFunctionLogGroup")["RetentionInDays"] == {"dev": 14, "prod": 90}[environment]


@pytest.mark.parametrize("days", ["7", "2"])
def test_finished_blueprints_expire_after_the_retention_parameter_and_the_functions_know_it(
    stack: Stack, days: str
) -> None:
    parameter = stack.template["Parameters"]["BlueprintRetentionDays"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (7, 1, 30)
    chosen = Stack(stack.template, {"Environment": "dev", "BlueprintRetentionDays": days})
    (final,) = [r for r in lifecycle_rules(chosen, "BlueprintsBucket") if r["Id"] == "expire-final-blueprints"]

    assert final["Prefix"] == "blueprints/"
    assert final["TagFilters"] == [{"Key": "retention", "Value": "final"}]
    assert int(final["ExpirationInDays"]) == int(days)
    assert final["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    # Every function that makes a final transition or runs the sweep computes the due date from it.
    for function in ("ApiFunction", "PipelineTaskFunction", "SweepFunction"):
        assert chosen.function_environment(function)["BLUEPRINT_RETENTION_DAYS"] == days, function


def test_results_expire_with_the_jobs_life(stack: Stack) -> None:
    (results,) = [r for r in lifecycle_rules(stack, "CacheBucket") if r.get("Prefix") == "cache/results/"]
    assert results["ExpirationInDays"] == 7
    assert results["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_the_sweep_runs_hourly_as_the_retention_assumes(stack: Stack) -> None:
    from services.retention import SWEEP_INTERVAL_SECONDS

    event = raw_properties(stack, "SweepFunction")["Events"]["Hourly"]
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == f"rate({SWEEP_INTERVAL_SECONDS // 3600} hour)"
