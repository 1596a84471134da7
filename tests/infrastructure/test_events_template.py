"""template.yaml's job events: the stream, the consumer and its mapping, the bus, the failure queue, the
optional pipeline rule (both states of ``PipelineStateMachineArn``), the pipeline's task function, the
iterator-age alarm, and what each role may do.

Where AWS evaluates something of ours, it is evaluated here too, with moto's implementation of the same
language: the mapping's filter (Lambda's filter syntax is EventBridge's pattern syntax) against real
stream records of each kind of item, and the pipeline target's input transformer against a real event.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from local_api.cfn_template import Stack, load_template
from models.events import DETAIL_TYPE, EVENT_TYPES, SOURCE
from services.job_events import event_of
from storage.items import to_item
from storage.job_stream import decode
from tests.unit.test_job_model import make_job
from workers.dependencies import WORKERS

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:location-detection-dev-pipeline"
PIPELINE_ONLY = {
    "PipelineStartRule",
    "PipelineStartRole",
    "PipelineStartFailedQueue",
    "PipelineStartFailedQueuePolicy",
    "PipelineStartFailedAlarm",
}
DAY = 24 * 3600


@pytest.fixture(scope="module")
def with_pipeline() -> Stack:
    return Stack(load_template(), {"Environment": "dev", "PipelineStateMachineArn": PIPELINE_ARN})


def raw(stack: Stack, logical_id: str) -> dict[str, Any]:
    return dict(stack.resources[logical_id]["Properties"])


def statements(stack: Stack, role: str) -> list[dict[str, Any]]:
    return [s for policy in stack.properties(role)["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def actions(stack: Stack, role: str) -> dict[str, list[str]]:
    """Action -> the resources it is granted on."""
    granted: dict[str, list[str]] = {}
    for statement in statements(stack, role):
        for action in [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            granted.setdefault(action, []).extend(resources)
    return granted


# ------------------------------------------------------------------------------------------- stream
def test_the_jobs_table_streams_new_and_old_images(stack: Stack) -> None:
    assert raw(stack, "JobsTable")["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_bus_is_named_for_the_environment_and_given_to_the_consumer(stack: Stack) -> None:
    assert stack.properties("EventBus")["Name"] == "location-detection-dev"
    assert stack.function_environment("JobEventsFunction")["EVENT_BUS_NAME"] == "location-detection-dev"
    assert raw(stack, "JobEventsFunction")["Environment"]["Variables"]["EVENT_BUS_NAME"] == {
        "Fn::GetAtt": ["EventBus", "Name"]
    }, "not !Ref: moto 5.2.5's CloudFormation resolves that wrongly"
    assert Stack(load_template(), {"Environment": "prod"}).properties("EventBus")["Name"] == "location-detection-prod"


@pytest.mark.parametrize(
    ("function", "handler"),
    [
        ("JobEventsFunction", "workers.stream_consumer.lambda_handler"),
        ("PipelineTaskFunction", "workers.pipeline_task.lambda_handler"),
    ],
)
def test_each_worker_shares_the_code_package_with_a_role_and_log_group_of_its_own(
    stack: Stack, function: str, handler: str
) -> None:
    props = raw(stack, function)
    module = handler.rsplit(".", 1)[0].replace(".", "/")

    assert (props["CodeUri"], props["Handler"], props["Runtime"], props["Architectures"]) == (
        "src/",
        handler,
        "python3.11",
        ["arm64"],
    )
    assert (stack.resources[function]["Type"], props["Tracing"]) == ("AWS::Serverless::Function", "Active")
    assert (ROOT / "src" / f"{module}.py").is_file()
    assert props["Role"] == {"Fn::GetAtt": [f"{function}Role", "Arn"]}
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": f"{function}LogGroup"}
    assert (
        stack.properties(f"{function}LogGroup")["LogGroupName"]
        == f"/aws/lambda/{stack.properties(function)['FunctionName']}"
    )
    assert "AutoPublishAlias" not in props
    assert "Events" not in props


@pytest.mark.parametrize(
    ("function", "worker", "optional"),
    [
        ("JobEventsFunction", "job_events", set()),
        ("PipelineTaskFunction", "job_service", set()),
        ("SweepFunction", "sweep", {"METRICS_SERVICE"}),  # its metrics' dimension: SweepErrorsAlarm reads it
    ],
)
def test_each_worker_is_given_exactly_the_settings_it_reads(
    stack: Stack, function: str, worker: str, optional: set[str]
) -> None:
    required, _ = WORKERS[worker]
    assert set(stack.function_environment(function)) == {"ENVIRONMENT", "LOG_LEVEL", *required, *optional}


def test_one_process_standing_for_every_function_keeps_the_apis_metric_dimensions(stack: Stack) -> None:
    """make run, the tests and the operator CLI run every function in one process: the workers' names are
    added to the API's, but the sweep's ``METRICS_SERVICE`` must not relabel the API's metrics."""
    merged = stack.process_environment()

    assert stack.function_environment("SweepFunction")["METRICS_SERVICE"] == "sweep"
    assert "METRICS_SERVICE" not in merged, "the API's default (job-api)"
    for function in stack.of_type("AWS::Serverless::Function"):
        own = {k: v for k, v in stack.function_environment(function).items() if k != "METRICS_SERVICE"}
        assert merged.items() >= own.items(), function
    sweep = stack.template["Resources"]["SweepFunction"]
    another = {**sweep, "Properties": {**sweep["Properties"], "Environment": {"Variables": {"JOBS_TABLE": "t"}}}}
    resources = {**stack.template["Resources"], "SweepFunction": another}
    with pytest.raises(ValueError, match="JOBS_TABLE"):
        Stack({**stack.template, "Resources": resources}, {"Environment": "dev"}).process_environment()


# -------------------------------------------------------------------------------------- the mapping
def test_the_mapping_reads_the_stream_from_its_start_and_reports_partial_failures(stack: Stack) -> None:
    props = raw(stack, "JobEventsMapping")

    assert props["EventSourceArn"] == {"Fn::GetAtt": ["JobsTable", "StreamArn"]}
    assert props["FunctionName"] == {"Ref": "JobEventsFunction"}
    assert props["StartingPosition"] == "TRIM_HORIZON", "records written before the mapping existed are not lost"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    # 100 records an invocation: ten PutEvents of ten (EventBridge's most per call), well inside the
    # function's timeout; bisect-on-error halves it down to the one poison record.
    assert props["BatchSize"] == 100
    assert props["ParallelizationFactor"] == 1
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": ["JobEventsFailedQueue", "Arn"]}}}


def test_the_mapping_gives_up_in_time_to_replay_from_the_stream(stack: Stack) -> None:
    """Bounded retries, and a record age bound that leaves most of the stream's 24 h to replay in."""
    props = raw(stack, "JobEventsMapping")
    # Ten retries (bisecting down to one record takes log2(100) ~ 7), then the failure queue.
    assert props["MaximumRetryAttempts"] == 10
    assert 0 < props["MaximumRecordAgeInSeconds"] <= DAY / 4


def lambda_record(key: str, image: dict[str, Any], name: str = "INSERT") -> dict[str, Any]:
    data = {"Keys": {"job_id": {"S": key}}, "NewImage": to_item(image), "SequenceNumber": "1", "SizeBytes": 10}
    return {"eventID": "1", "eventName": name, "eventSource": "aws:dynamodb", "dynamodb": data}


FILTERED_OUT = [
    "idem#0f1e2d3c",
    "claim#upl_20261121T231500_" + "ab" * 16,
    "rate#cli_alice",
    "webhook#wh_1",
    "__health_probe__",
]


def test_the_mappings_filter_passes_job_records_and_drops_every_typed_item(stack: Stack) -> None:
    (criteria,) = stack.properties("JobEventsMapping")["FilterCriteria"]["Filters"]
    pattern = EventPattern.load(criteria["Pattern"])
    job = make_job()

    assert pattern.matches_event(lambda_record(job.job_id, job.to_record()))
    assert pattern.matches_event(lambda_record(job.job_id, job.to_record(), "REMOVE"))
    for key in FILTERED_OUT:
        assert not pattern.matches_event(lambda_record(key, {"job_id": key})), key
        # ...and the consumer ignores them itself (locally there is no filter: defence in depth)
        assert event_of(decode(lambda_record(key, {"job_id": key}))) is None, key


# --------------------------------------------------------------------------------------- the queue
def test_the_failure_queue_keeps_messages_two_weeks_encrypted_and_tls_only(stack: Stack) -> None:
    queue = stack.properties("JobEventsFailedQueue")
    (deny,) = stack.properties("JobEventsFailedQueuePolicy")["PolicyDocument"]["Statement"]

    assert queue["QueueName"] == "location-detection-dev-job-events-failed"
    assert queue["MessageRetentionPeriod"] == 14 * DAY
    assert queue["SqsManagedSseEnabled"] is True
    assert stack.properties("JobEventsFailedQueuePolicy")["Queues"] == [stack.ref("JobEventsFailedQueue")]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# ------------------------------------------------------------------------------------------- alarms
def test_the_iterator_age_alarm_fires_well_before_records_expire(stack: Stack) -> None:
    alarm = stack.properties("JobEventsIteratorAgeAlarm")

    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "IteratorAge", "Maximum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": stack.ref("JobEventsFunction")}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Unit"] == "Milliseconds"
    assert alarm["Threshold"] <= DAY * 1000 / 12, "at most two hours behind: 22 h left to act"
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 900
    assert alarm["AlarmActions"] == alarm["OKActions"] == [stack.ref("AlarmTopic")]


def test_a_message_in_the_failure_queue_raises_an_alarm(stack: Stack) -> None:
    alarm = stack.properties("JobEventsFailedAlarm")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": "location-detection-dev-job-events-failed"}]
    assert (alarm["MetricName"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "GreaterThanThreshold",
        0,
    )


# ----------------------------------------------------------------------------------------- pipeline
def test_without_a_pipeline_nothing_of_it_exists(stack: Stack) -> None:
    assert stack.parameters["PipelineStateMachineArn"] == ""
    assert PIPELINE_ONLY.isdisjoint(stack.present())
    for logical_id in PIPELINE_ONLY:
        assert stack.resources[logical_id]["Condition"] == "HasPipeline", logical_id


def test_with_a_pipeline_job_created_starts_it_through_its_own_role(with_pipeline: Stack) -> None:
    assert set(with_pipeline.present()) >= PIPELINE_ONLY
    rule = with_pipeline.properties("PipelineStartRule")
    (target,) = rule["Targets"]

    assert raw(with_pipeline, "PipelineStartRule")["EventBusName"] == {"Fn::GetAtt": ["EventBus", "Name"]}
    assert rule["EventPattern"] == {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"type": ["job.created"]},
    }
    assert (rule["State"], target["Arn"]) == ("ENABLED", PIPELINE_ARN)
    assert target["RoleArn"] == with_pipeline.arn("PipelineStartRole")
    assert target["DeadLetterConfig"] == {"Arn": with_pipeline.arn("PipelineStartFailedQueue")}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == DAY


def test_the_rule_matches_job_created_only(with_pipeline: Stack) -> None:
    pattern = EventPattern.load(json.dumps(with_pipeline.properties("PipelineStartRule")["EventPattern"]))
    for kind in EVENT_TYPES:
        event = {"source": SOURCE, "detail-type": DETAIL_TYPE, "detail": {"type": kind}}
        assert pattern.matches_event(event) is (kind == "job.created"), kind
    assert not pattern.matches_event(
        {"source": "someone.else", "detail-type": DETAIL_TYPE, "detail": {"type": "job.created"}}
    )


def render(template: str, paths: dict[str, str], event: dict[str, Any]) -> Any:
    """EventBridge's input transformer for a JSON template whose placeholders are JSON values: each
    ``<name>`` becomes its path's value, JSON-encoded (API_InputTransformer: "valid JSON with variables in
    quotes or out"). moto's parser inserts strings raw, as a placeholder inside quotes would take them, so
    it cannot stand in here."""
    for name, path in paths.items():
        assert re.search(rf":\s*<{name}>\s*[,}}]", template), f"<{name}> is not a JSON value: not handled here"
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        template = template.replace(f"<{name}>", json.dumps(value))
    return json.loads(template)


def test_the_pipeline_gets_the_jobs_id_blueprint_key_hash_and_format(with_pipeline: Stack) -> None:
    job = make_job()
    event = event_of(decode(lambda_record(job.job_id, job.to_record())))
    assert event is not None
    (target,) = with_pipeline.properties("PipelineStartRule")["Targets"]
    transformer = target["InputTransformer"]
    delivered = {"source": SOURCE, "detail-type": DETAIL_TYPE, "detail": event.detail()}

    assert render(transformer["InputTemplate"], transformer["InputPathsMap"], delivered) == {
        "job_id": job.job_id,
        "blueprint_key": job.blueprint_s3_key,
        "hash": job.blueprint_hash,
        "format": job.blueprint_format,
        "event_id": f"{job.job_id}:1",
    }
    assert set(transformer["InputPathsMap"].values()) <= {f"$.detail.job.{f}" for f in job.to_public()} | {
        "$.detail.id"
    }, "every path is a field the event carries"


def test_the_pipeline_start_role_may_only_start_that_state_machine_for_that_rule(with_pipeline: Stack) -> None:
    role = with_pipeline.properties("PipelineStartRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {
        "aws:SourceAccount": with_pipeline.account_id,
        "aws:SourceArn": with_pipeline.arn("PipelineStartRule"),
    }
    assert actions(with_pipeline, "PipelineStartRole") == {"states:StartExecution": [PIPELINE_ARN]}


def test_the_pipeline_dead_letter_queue_takes_only_that_rules_events(with_pipeline: Stack) -> None:
    allow, deny = with_pipeline.properties("PipelineStartFailedQueuePolicy")["PolicyDocument"]["Statement"]
    assert (allow["Principal"], allow["Action"]) == ({"Service": "events.amazonaws.com"}, "sqs:SendMessage")
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": with_pipeline.arn("PipelineStartRule")}}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True),
        (PIPELINE_ARN, True),
        ("arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:p_1", True),
        ("arn:aws:lambda:us-east-1:123456789012:function:not-a-state-machine", False),
        ("arn:aws:states:us-east-1:123456789012:execution:p:x", False),
        ("location-detection-dev-pipeline", False),
    ],
)
def test_the_pipeline_parameter_takes_a_state_machine_arn_or_nothing(stack: Stack, value: str, valid: bool) -> None:
    pattern = stack.template["Parameters"]["PipelineStateMachineArn"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is valid


# ----------------------------------------------------------------------------------------------- IAM
def test_the_consumers_role_reads_the_stream_puts_on_the_bus_and_fills_the_failure_queue(stack: Stack) -> None:
    stream = f"{stack.arn('JobsTable')}/stream/*"
    assert actions(stack, "JobEventsFunctionRole") == {
        "logs:CreateLogStream": [stack.arn("JobEventsFunctionLogGroup")],
        "logs:PutLogEvents": [stack.arn("JobEventsFunctionLogGroup")],
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
        **{
            action: [stream]
            for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
        },
        "dynamodb:ListStreams": [stream],
        "events:PutEvents": [stack.arn("EventBus")],
        "sqs:SendMessage": [stack.arn("JobEventsFailedQueue")],
    }


def test_the_pipeline_tasks_role_reads_and_updates_jobs_writes_results_and_tags_blueprints_only(
    stack: Stack,
) -> None:
    results = f"{stack.arn('CacheBucket')}/cache/results/*"
    assert actions(stack, "PipelineTaskFunctionRole") == {
        "logs:CreateLogStream": [stack.arn("PipelineTaskFunctionLogGroup")],
        "logs:PutLogEvents": [stack.arn("PipelineTaskFunctionLogGroup")],
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
        "dynamodb:GetItem": [stack.arn("JobsTable")],
        "dynamodb:UpdateItem": [stack.arn("JobsTable")],
        # The preview's transaction checks that the job is not marked for erasure (docs/erasure.md).
        "dynamodb:ConditionCheckItem": [stack.arn("JobsTable")],
        "dynamodb:PutItem": [stack.arn("PreviewCacheTable")],
        "s3:PutObject": [results],
        "s3:DeleteObject": [results],
        "s3:DeleteObjectVersion": [results],
        # A final transition tags the blueprint for the lifecycle rule expire-final-blueprints.
        "s3:PutObjectTagging": [f"{stack.arn('BlueprintsBucket')}/blueprints/*"],
    }


@pytest.mark.parametrize("role", ["JobEventsFunctionRole", "PipelineTaskFunctionRole", "PipelineStartRole"])
def test_the_workers_roles_have_no_managed_policies_and_carry_the_boundary_when_asked(
    with_pipeline: Stack, role: str
) -> None:
    props = raw(with_pipeline, role)
    assert "ManagedPolicyArns" not in props
    assert props["PermissionsBoundary"] == {
        "Fn::If": ["HasRolesBoundary", {"Ref": "RolesPermissionsBoundary"}, {"Ref": "AWS::NoValue"}]
    }


def test_the_outputs_name_the_bus_the_failure_queue_and_the_task_function(stack: Stack) -> None:
    outputs = {name: stack.resolve(o["Value"]) for name, o in stack.template["Outputs"].items()}
    assert outputs["EventBusName"] == "location-detection-dev"
    assert outputs["EventBusArn"] == stack.arn("EventBus")
    assert outputs["JobEventsFailedQueueUrl"] == stack.ref("JobEventsFailedQueue")
    assert outputs["PipelineTaskFunctionArn"] == stack.arn("PipelineTaskFunction")
