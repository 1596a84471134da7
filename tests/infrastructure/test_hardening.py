"""template.yaml, operated: access logs, retention, tracing, concurrency, alarms, versioning, checkov skips.

What an on-call engineer relies on once the stack is deployed (docs/runbook.md), and the reasons the
template gives checkov for each check it skips.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local_api.cfn_template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
#: The retention values CloudWatch Logs accepts.
RETENTION_DAYS = {
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
}
#: Every alarm notifies this: the AlarmTopicArn parameter's topic when given, the stack's own otherwise.
THE_ALARM_TOPIC = [{"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}]
TOPIC = "arn:aws:sns:us-east-1:123456789012:on-call"
ROOT_PRINCIPAL = "arn:aws:iam::123456789012:root"


@pytest.fixture(scope="module")
def prod_stack() -> Stack:
    return Stack(load_template(), {"Environment": "prod"})


def raw(stack: Stack, logical_id: str) -> dict[str, Any]:
    """A resource's properties as written (intrinsic functions unresolved)."""
    return dict(stack.resources[logical_id].get("Properties", {}))


def access_log_settings(stack: Stack) -> dict[str, Any]:
    (stage_id,) = stack.of_type("AWS::ApiGatewayV2::Stage")
    return dict(raw(stack, stage_id)["AccessLogSettings"])


def alarms(stack: Stack) -> dict[str, dict[str, Any]]:
    return {logical_id: raw(stack, logical_id) for logical_id in stack.of_type("AWS::CloudWatch::Alarm")}


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics a metric-math alarm reads (not its expressions)."""
    return [query["MetricStat"] for query in alarm["Metrics"] if "MetricStat" in query]


def dimensions(metric_stat: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in metric_stat["Metric"]["Dimensions"]}


def the_expression(alarm: dict[str, Any]) -> dict[str, Any]:
    """The one query whose value the alarm compares with its threshold."""
    (query,) = [query for query in alarm["Metrics"] if query.get("ReturnData", True)]
    assert "Expression" in query, query
    return dict(query)


def function_timeout_ms(stack: Stack) -> int:
    return stack.function_timeout("ApiFunction") * 1000


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# -------------------------------------------------------------------------------------- access logs
#: What the issue asks each request's access log line to carry, and the API Gateway variable for it.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationRequestId": "$context.integration.requestId",
    "integrationErrorMessage": "$context.integrationErrorMessage",
    "errorMessage": "$context.error.message",
}


def test_api_access_logs_go_to_a_log_group_of_their_own(stack: Stack) -> None:
    settings = access_log_settings(stack)

    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert stack.resources["ApiAccessLogGroup"]["Type"] == "AWS::Logs::LogGroup"
    function_log_group = raw(stack, "ApiFunction")["LoggingConfig"]["LogGroup"]
    assert function_log_group != {"Ref": "ApiAccessLogGroup"}, "access logs and function logs are kept apart"


def test_api_access_log_line_is_one_json_object_with_the_request_fields(stack: Stack) -> None:
    log_format = access_log_settings(stack)["Format"]

    assert "\n" not in log_format, "one line per request"
    line = json.loads(log_format)  # API Gateway substitutes inside the quotes: the line stays JSON
    assert line.items() >= ACCESS_LOG_FIELDS.items()
    for field, variable in line.items():
        # Quoted: an absent value is "-", which unquoted would break the line's JSON.
        assert isinstance(variable, str), field
        assert re.fullmatch(r"\$context\.[A-Za-z.]+", variable), f"{field}: {variable!r}"


# ---------------------------------------------------------------------------------------- retention
def test_every_log_group_is_written_to_by_a_function_or_the_api(stack: Stack) -> None:
    """No log group is created implicitly (without retention) and none is left unused."""
    written = {
        *(raw(stack, f)["LoggingConfig"]["LogGroup"]["Ref"] for f in stack.of_type("AWS::Serverless::Function")),
        access_log_settings(stack)["DestinationArn"]["Fn::GetAtt"][0],
    }
    assert written == set(stack.of_type("AWS::Logs::LogGroup"))


def test_every_log_group_keeps_logs_for_a_bounded_time_longer_in_prod(stack: Stack, prod_stack: Stack) -> None:
    for logical_id in stack.of_type("AWS::Logs::LogGroup"):
        dev_days = stack.properties(logical_id)["RetentionInDays"]
        prod_days = prod_stack.properties(logical_id)["RetentionInDays"]

        assert {dev_days, prod_days} <= RETENTION_DAYS, logical_id
        assert 14 <= dev_days <= 30, logical_id
        assert prod_days >= 90, logical_id
        assert prod_days > dev_days, logical_id


def test_log_retention_depends_on_the_environment_alone(stack: Stack) -> None:
    """No parameter to forget: a prod deploy without samconfig.toml still keeps its logs 90 days."""
    assert "LogRetentionInDays" not in stack.template["Parameters"]
    prod_with_defaults = Stack(stack.template, {"Environment": "prod"})
    assert prod_with_defaults.properties("ApiFunctionLogGroup")["RetentionInDays"] == 90


# -------------------------------------------------------------------------------- tracing, concurrency
def test_every_function_is_traced_with_x_ray(stack: Stack) -> None:
    for function in stack.of_type("AWS::Serverless::Function"):
        assert raw(stack, function)["Tracing"] == "Active", function


def test_reserved_concurrency_is_optional_and_zero_means_none(stack: Stack) -> None:
    """A new account's concurrency quota is often 10, and Lambda keeps 100 unreserved: any reservation
    then fails the deploy. 0 (the default) reserves nothing; a reservation of 0 would stop the function."""
    parameter = stack.template["Parameters"]["ReservedConcurrency"]

    assert raw(stack, "ApiFunction")["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert stack.template["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, "0"]}]
    }
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 0, 0)
    # Lambda keeps 100 of an account's (default 1,000) concurrency unreserved.
    assert parameter["MaxValue"] <= 900
    assert "ReservedConcurrentExecutions" not in stack.properties("ApiFunction")
    reserved = Stack(stack.template, {"Environment": "prod", "ReservedConcurrency": "100"})
    assert reserved.properties("ApiFunction")["ReservedConcurrentExecutions"] == "100"


# ------------------------------------------------------------------------------------------- alarms
EXPECTED_ALARMS = {
    "Api5xxRateAlarm": "api-5xx-rate",
    "FunctionErrorsAlarm": "function-errors",
    "FunctionThrottlesAlarm": "function-throttles",
    "FunctionDurationAlarm": "function-duration-p99",
    "JobsTableThrottlesAlarm": "jobs-table-throttles",
    "PreviewCacheTableThrottlesAlarm": "preview-cache-table-throttles",
    "CanaryErrorsAlarm": "canary-errors",
    "CanaryApi5xxAlarm": "canary-api-5xx",
    "JobEventsIteratorAgeAlarm": "job-events-iterator-age",
    "JobEventsFailedAlarm": "job-events-failed",
    "JobEventsErrorsAlarm": "job-events-errors",
    "PipelineStartFailedAlarm": "pipeline-start-failed",
    "SweepErrorsAlarm": "sweep-errors",
}
#: The canary's rollback triggers, and how long the canary lasts (Canary10Percent5Minutes).
CANARY_ALARMS = ["CanaryErrorsAlarm", "CanaryApi5xxAlarm"]
CANARY_SECONDS = 300


def test_the_stack_has_exactly_the_documented_alarms(stack: Stack) -> None:
    assert set(alarms(stack)) == set(EXPECTED_ALARMS)


@pytest.mark.parametrize(("logical_id", "suffix"), EXPECTED_ALARMS.items())
def test_alarm_is_named_after_the_stack(stack: Stack, logical_id: str, suffix: str) -> None:
    assert alarms(stack)[logical_id]["AlarmName"] == {"Fn::Sub": f"${{AWS::StackName}}-{suffix}"}


@pytest.mark.parametrize("logical_id", EXPECTED_ALARMS)
def test_alarm_notifies_a_topic_on_alarm_and_on_ok(stack: Stack, logical_id: str) -> None:
    """Alarms that told nobody: every alarm notifies the stack's topic, or the one AlarmTopicArn names."""
    alarm = alarms(stack)[logical_id]
    with_topic = Stack(stack.template, {"Environment": "prod", "AlarmTopicArn": TOPIC}).properties(logical_id)
    own_topic = stack.properties(logical_id)

    assert alarm["AlarmActions"] == alarm["OKActions"] == THE_ALARM_TOPIC
    assert with_topic["AlarmActions"] == with_topic["OKActions"] == [TOPIC]
    assert own_topic["AlarmActions"] == own_topic["OKActions"] == [stack.ref("AlarmTopic")]
    assert alarm.get("ActionsEnabled", True) is True


def test_the_stack_has_its_own_alarm_topic_unless_one_is_given(stack: Stack) -> None:
    topic = stack.resources["AlarmTopic"]

    assert topic["Type"] == "AWS::SNS::Topic"
    assert stack.template["Conditions"]["CreateAlarmTopic"] == {"Fn::Not": [{"Condition": "HasAlarmTopic"}]}
    assert stack.condition("CreateAlarmTopic")
    assert not Stack(stack.template, {"Environment": "prod", "AlarmTopicArn": TOPIC}).condition("CreateAlarmTopic")
    for logical_id in ("AlarmTopic", "AlarmTopicPolicy", "AlarmTopicKey"):
        assert stack.resources[logical_id]["Condition"] == "CreateAlarmTopic", logical_id
    assert stack.properties("AlarmTopic")["TopicName"] == "location-detection-dev-alarms"
    outputs = stack.resolve(stack.template["Outputs"]["AlarmTopicArn"]["Value"])
    assert outputs == stack.ref("AlarmTopic")


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(stack: Stack) -> None:
    """Alarms cannot publish to a topic under the AWS managed key (aws/sns): its policy cannot be changed
    to let CloudWatch in. The topic's own key's policy lets cloudwatch.amazonaws.com encrypt for it."""
    assert raw(stack, "AlarmTopic")["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]}
    key = stack.properties("AlarmTopicKey")
    (for_cloudwatch,) = [s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") != {"AWS": ROOT_PRINCIPAL}]

    assert for_cloudwatch["Effect"] == "Allow"
    assert for_cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(for_cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert key["EnableKeyRotation"] is True


def test_only_this_accounts_alarms_may_publish_to_the_topic_and_only_over_tls(stack: Stack) -> None:
    policy = stack.properties("AlarmTopicPolicy")
    allow, deny = policy["PolicyDocument"]["Statement"]

    assert policy["Topics"] == [stack.ref("AlarmTopic")]
    assert (allow["Effect"], allow["Principal"], allow["Action"]) == (
        "Allow",
        {"Service": "cloudwatch.amazonaws.com"},
        "sns:Publish",
    )
    assert allow["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"},
    }
    assert (deny["Effect"], deny["Principal"], deny["Condition"]) == (
        "Deny",
        "*",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_an_optional_email_subscription(stack: Stack) -> None:
    parameter = stack.template["Parameters"]["AlarmEmail"]
    pattern = re.compile(parameter["AllowedPattern"])
    subscribed = Stack(stack.template, {"Environment": "prod", "AlarmEmail": "oncall@example.com"})
    elsewhere = Stack(stack.template, {"Environment": "prod", "AlarmEmail": "a@b.co", "AlarmTopicArn": TOPIC})

    assert parameter["Default"] == ""
    assert pattern.fullmatch("")
    assert pattern.fullmatch("oncall@example.com")
    assert not pattern.fullmatch("not an address")
    assert not pattern.fullmatch("a@b.co, c@d.co")
    assert stack.resources["AlarmTopicEmail"]["Condition"] == "HasAlarmEmail"
    assert not stack.condition("HasAlarmEmail")
    assert subscribed.condition("HasAlarmEmail")
    assert not elsewhere.condition("HasAlarmEmail"), "a topic of your own has its own subscriptions"
    assert subscribed.properties("AlarmTopicEmail") == {
        "TopicArn": subscribed.ref("AlarmTopic"),
        "Protocol": "email",
        "Endpoint": "oncall@example.com",
    }


def test_alarm_topic_parameter_takes_an_sns_arn_or_nothing(stack: Stack) -> None:
    parameter = stack.template["Parameters"]["AlarmTopicArn"]
    pattern = re.compile(parameter["AllowedPattern"])

    assert parameter["Default"] == ""
    assert pattern.fullmatch("")
    assert pattern.fullmatch(TOPIC)
    assert not pattern.fullmatch("arn:aws:sqs:us-east-1:123456789012:queue")
    assert not pattern.fullmatch("on-call")


@pytest.mark.parametrize("logical_id", EXPECTED_ALARMS)
def test_no_data_is_not_a_breach(stack: Stack, logical_id: str) -> None:
    """A quiet night (no requests, so no datapoints) must not wake anyone."""
    assert alarms(stack)[logical_id]["TreatMissingData"] == "notBreaching"


def test_api_5xx_alarm_is_the_rate_of_5xx_among_the_stages_requests(stack: Stack) -> None:
    alarm = alarms(stack)["Api5xxRateAlarm"]
    read = {stat["Metric"]["MetricName"]: stat for stat in metric_stats(alarm)}
    ids = {
        query["MetricStat"]["Metric"]["MetricName"]: query["Id"] for query in alarm["Metrics"] if "MetricStat" in query
    }
    expression = the_expression(alarm)["Expression"]

    assert set(read) == {"5xx", "Count"}
    for stat in read.values():
        assert stat["Metric"]["Namespace"] == "AWS/ApiGateway"
        assert dimensions(stat) == {"ApiId": {"Ref": "HttpApi"}, "Stage": "$default"}
        assert stat["Stat"] == "Sum"
    assert f"100 * FILL({ids['5xx']}, 0) / {ids['Count']}" in expression, "a percentage of requests"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 5)


@pytest.mark.parametrize(
    ("logical_id", "metric"), [("FunctionErrorsAlarm", "Errors"), ("FunctionThrottlesAlarm", "Throttles")]
)
def test_function_alarm_fires_on_the_first_failed_or_throttled_invocation(
    stack: Stack, logical_id: str, metric: str
) -> None:
    alarm = alarms(stack)[logical_id]

    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", metric, "Sum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ApiFunction"}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)


def test_duration_alarm_fires_at_80_percent_of_the_timeout(stack: Stack) -> None:
    alarm = alarms(stack)["FunctionDurationAlarm"]

    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Duration")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ApiFunction"}}]
    assert alarm["ExtendedStatistic"] == "p99"
    assert alarm["Unit"] == "Milliseconds"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0.8 * function_timeout_ms(stack)


@pytest.mark.parametrize(
    ("logical_id", "table_id"),
    [("JobsTableThrottlesAlarm", "JobsTable"), ("PreviewCacheTableThrottlesAlarm", "PreviewCacheTable")],
)
def test_dynamodb_alarm_counts_every_throttled_read_and_write_of_its_table_and_indexes(
    stack: Stack, logical_id: str, table_id: str
) -> None:
    alarm = alarms(stack)[logical_id]
    indexes = [index["IndexName"] for index in raw(stack, table_id).get("GlobalSecondaryIndexes", [])]
    read = {
        (stat["Metric"]["MetricName"], dimensions(stat).get("GlobalSecondaryIndexName")) for stat in metric_stats(alarm)
    }
    expression = the_expression(alarm)["Expression"]

    for stat in metric_stats(alarm):
        assert stat["Metric"]["Namespace"] == "AWS/DynamoDB"
        assert dimensions(stat)["TableName"] == {"Ref": table_id}
        assert stat["Stat"] == "Sum"
    assert read == {
        (metric, index) for metric in ("ReadThrottleEvents", "WriteThrottleEvents") for index in [None, *indexes]
    }
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            assert f"FILL({query['Id']}, 0)" in expression, "every metric read is summed"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


@pytest.mark.parametrize(("logical_id", "suffix"), EXPECTED_ALARMS.items())
def test_alarm_links_to_its_runbook_section(stack: Stack, logical_id: str, suffix: str) -> None:
    description = alarms(stack)[logical_id]["AlarmDescription"]
    link = re.search(r"docs/runbook\.md#([a-z0-9-]+)", description)
    assert link, f"{logical_id} does not link to the runbook"
    runbook = RUNBOOK.read_text(encoding="utf-8")
    sections = {github_anchor(m.group(1)): m.start() for m in re.finditer(r"^## (.+)$", runbook, re.MULTILINE)}

    assert link.group(1) in sections, f"docs/runbook.md has no section #{link.group(1)}"
    start = sections[link.group(1)]
    section = runbook[start : min([s for s in sections.values() if s > start], default=len(runbook))]
    assert suffix in section, f"the #{link.group(1)} section does not name the {suffix} alarm"


# ------------------------------------------------------------------------------------------- storage
@pytest.mark.parametrize("bucket_id", ["BlueprintsBucket", "CacheBucket"])
def test_bucket_is_versioned_and_every_noncurrent_version_expires_after_a_day(stack: Stack, bucket_id: str) -> None:
    """Issue 18: a version a delete or overwrite left behind holds personal data too; it goes after a day."""
    props = stack.properties(bucket_id)
    rules = props["LifecycleConfiguration"]["Rules"]

    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    whole_bucket = [rule for rule in rules if not rule.get("Prefix")]
    assert [rule["NoncurrentVersionExpiration"]["NoncurrentDays"] for rule in whole_bucket] == [1]
    for rule in rules:
        # With ExpirationInDays, S3 also removes the delete markers that expiry leaves behind.
        assert "ExpirationInDays" in rule, rule["Id"]
        assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1, rule["Id"]


def test_deleted_uploads_do_not_linger_as_old_versions(stack: Stack) -> None:
    (uploads,) = [
        rule
        for rule in stack.properties("BlueprintsBucket")["LifecycleConfiguration"]["Rules"]
        if rule.get("Prefix") == "uploads/"
    ]
    assert uploads["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_preview_cache_is_the_one_disposable_data_store(stack: Stack) -> None:
    resource = stack.resources["PreviewCacheTable"]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Delete", "Delete")
    assert "PointInTimeRecoverySpecification" not in resource["Properties"]


def test_secret_is_encrypted_with_its_own_rotating_key_administered_through_iam(stack: Stack) -> None:
    key = raw(stack, "ApiKeysSecretKey")
    (statement,) = key["KeyPolicy"]["Statement"]

    assert raw(stack, "ApiKeysSecret")["KmsKeyId"] == {"Fn::GetAtt": ["ApiKeysSecretKey", "Arn"]}
    assert key["EnableKeyRotation"] is True
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    # CloudFormation tags no KMS key (aws:cloudformation:* is missing): the deploy role recognises the
    # stack's keys by this tag, given at creation (tests/infrastructure/test_deploy_permissions.py).
    assert stack.properties("ApiKeysSecretKey")["Tags"] == [
        {"Key": "location-detection-stack", "Value": "location-detection-dev"}
    ]
    assert stack.properties("ApiKeysSecretKeyAlias")["AliasName"] == "alias/location-detection-dev-api-keys"


# ----------------------------------------------------------------------------------- checkov's skips
#: Every check the template tells checkov to skip, reviewed; a new skip must be added here on purpose.
REVIEWED_SKIPS = {
    ("ApiAccessLogGroup", "CKV_AWS_158"),
    ("ApiFunctionLogGroup", "CKV_AWS_158"),
    ("ApiFunction", "CKV_AWS_116"),
    ("ApiFunction", "CKV_AWS_117"),
    ("ApiFunction", "CKV_AWS_173"),
    ("SweepFunctionLogGroup", "CKV_AWS_158"),
    ("SweepFunction", "CKV_AWS_115"),
    ("SweepFunction", "CKV_AWS_116"),
    ("SweepFunction", "CKV_AWS_117"),
    ("SweepFunction", "CKV_AWS_173"),
    ("JobsTable", "CKV_AWS_119"),
    ("PreviewCacheTable", "CKV_AWS_28"),
    ("PreviewCacheTable", "CKV_AWS_119"),
    ("BlueprintsBucket", "CKV_AWS_18"),
    ("CacheBucket", "CKV_AWS_18"),
    *(
        (function, check)
        for function in ("JobEventsFunction", "PipelineTaskFunction")
        for check in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173")
    ),
    ("JobEventsFunctionLogGroup", "CKV_AWS_158"),
    ("PipelineTaskFunctionLogGroup", "CKV_AWS_158"),
    ("JobEventsFailedQueue", "CKV_AWS_27"),
    ("PipelineStartFailedQueue", "CKV_AWS_27"),
}


def checkov_skips(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical_id, skip)
        for logical_id, resource in stack.resources.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_every_checkov_skip_gives_a_one_line_reason(stack: Stack) -> None:
    skips = checkov_skips(stack)
    assert skips

    for logical_id, skip in skips:
        assert set(skip) == {"id", "comment"}, (logical_id, skip)
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        reason = skip["comment"]
        assert isinstance(reason, str), (logical_id, skip)
        assert "\n" not in reason, (logical_id, skip)
        assert 30 <= len(reason) <= 160, f"{logical_id} {skip['id']}: a reason, on one line"


def test_checkov_skips_are_exactly_the_reviewed_ones(stack: Stack) -> None:
    skipped = [(logical_id, skip["id"]) for logical_id, skip in checkov_skips(stack)]

    assert len(skipped) == len(set(skipped)), "a check skipped twice on one resource"
    assert set(skipped) == REVIEWED_SKIPS


# ----------------------------------------------------------------------------- gradual deploys
def test_every_deploy_moves_the_live_alias_through_codedeploy(stack: Stack, prod_stack: Stack) -> None:
    """A canary in prod (10% for 5 minutes), all at once in dev; from the mapping, so no override can
    skip prod's canary by mistake."""
    function = raw(stack, "ApiFunction")
    preference = function["DeploymentPreference"]

    assert function["AutoPublishAlias"] == "live"
    assert preference["Type"] == {"Fn::FindInMap": ["EnvironmentSettings", {"Ref": "Environment"}, "DeploymentType"]}
    assert stack.resolve(preference["Type"]) == "AllAtOnce"
    assert prod_stack.resolve(preference["Type"]) == "Canary10Percent5Minutes"
    assert preference["Role"] == {"Fn::GetAtt": ["DeploymentRole", "Arn"]}
    assert "Enabled" not in preference or preference["Enabled"] is True


def test_the_canary_rolls_back_on_one_minute_alarms_that_fire_within_it(stack: Stack) -> None:
    preference = raw(stack, "ApiFunction")["DeploymentPreference"]
    assert preference["Alarms"] == [{"Ref": logical_id} for logical_id in CANARY_ALARMS]
    for logical_id in CANARY_ALARMS:
        alarm = alarms(stack)[logical_id]
        periods = [q["MetricStat"]["Period"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        period = alarm.get("Period") or max(periods)
        assert period == 60, logical_id
        assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (1, 1), logical_id
        assert period * alarm["EvaluationPeriods"] < CANARY_SECONDS, f"{logical_id} must be able to fire in time"


def test_the_canary_errors_alarm_watches_the_alias(stack: Stack) -> None:
    """Alias-scoped: the live alias's invocations (the canary's share among them), not $LATEST's."""
    alarm = alarms(stack)["CanaryErrorsAlarm"]
    alias = raw(stack, "ApiFunction")["AutoPublishAlias"]

    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert alarm["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "ApiFunction"}},
        {"Name": "Resource", "Value": {"Fn::Sub": f"${{ApiFunction}}:{alias}"}},
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)


def test_the_canary_5xx_alarm_sees_the_500s_the_handler_answers(stack: Stack) -> None:
    """The handler turns exceptions into 500 responses, which Lambda does not count as errors: the API's
    5xx rate over one minute catches a version that answers them (10% of requests during the canary)."""
    alarm = alarms(stack)["CanaryApi5xxAlarm"]
    read = {stat["Metric"]["MetricName"] for stat in metric_stats(alarm)}

    assert read == {"5xx", "Count"}
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 5)
    assert "100 * FILL(errors, 0) / requests" in the_expression(alarm)["Expression"]


def test_codedeploy_may_move_the_alias_and_read_the_alarms_and_nothing_else() -> None:
    stack = Stack(load_template(), {"Environment": "prod"})
    role = stack.properties("DeploymentRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    (policy,) = role["Policies"]
    statements = policy["PolicyDocument"]["Statement"]

    assert trust["Principal"] == {"Service": "codedeploy.amazonaws.com"}
    assert {a for s in statements for a in s["Action"] if isinstance(s["Action"], list)} | {
        s["Action"] for s in statements if isinstance(s["Action"], str)
    } == {
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:GetProvisionedConcurrencyConfig",
        "cloudwatch:DescribeAlarms",
    }
    resources = [r for s in statements for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert "*" not in resources
    assert all("location-detection-prod" in r for r in resources), resources
