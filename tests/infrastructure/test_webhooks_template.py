"""template.yaml's webhooks: the rule from the bus, the events, deliveries and dead-letter queues, the
fan-out and delivery functions with their mappings, the secrets' key, the dead-letter alarm, and what
each role may do (test_worker_permissions.py evaluates the roles with a policy engine; these read them).

Where AWS evaluates something of ours, it is evaluated here too: the rule's pattern by moto's
implementation of EventBridge's pattern language, against an event of every type.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from local_api.cfn_template import Stack, load_template
from models.events import DETAIL_TYPE, EVENT_TYPES, SOURCE
from services.webhook_delivery import DEFAULT_RETRY_DELAYS, MAX_DELAY_SECONDS, RetrySchedule
from storage.secret_box import PURPOSE
from workers.dependencies import WORKERS

QUEUES = ("WebhookEventsQueue", "WebhookDeliveriesQueue", "WebhookDeadLetterQueue")
FUNCTIONS = {
    "WebhookFanoutFunction": ("workers.webhook_fanout.lambda_handler", "webhook_fanout", "WebhookEventsQueue"),
    "WebhookDeliveryFunction": (
        "workers.webhook_delivery.lambda_handler",
        "webhook_delivery",
        "WebhookDeliveriesQueue",
    ),
}
DAY = 24 * 3600


def raw(stack: Stack, logical_id: str) -> dict[str, Any]:
    return dict(stack.resources[logical_id]["Properties"])


def granted(stack: Stack, role: str) -> dict[str, list[tuple[str, Any]]]:
    """Action -> (resource, condition) pairs the role's inline policies grant."""
    found: dict[str, list[tuple[str, Any]]] = {}
    for policy in stack.properties(role)["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                found.setdefault(action, []).extend((r, statement.get("Condition")) for r in resources)
    return found


# -------------------------------------------------------------------------------------------- the rule
def test_the_rule_takes_every_job_event_and_nothing_else_to_the_events_queue(stack: Stack) -> None:
    rule = stack.properties("WebhookEventsRule")
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    for kind in EVENT_TYPES:
        assert pattern.matches_event({"source": SOURCE, "detail-type": DETAIL_TYPE, "detail": {"type": kind}})
    assert not pattern.matches_event({"source": "aws.s3", "detail-type": DETAIL_TYPE, "detail": {"type": "x"}})
    assert rule["EventBusName"] == "location-detection-dev"
    (target,) = rule["Targets"]
    assert target["Arn"] == stack.arn("WebhookEventsQueue")
    assert "RoleArn" not in target, "SQS authorizes EventBridge by the queue's policy"
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": DAY, "MaximumRetryAttempts": 185}
    assert target["DeadLetterConfig"] == {"Arn": stack.arn("WebhookDeadLetterQueue")}


@pytest.mark.parametrize("queue", ["WebhookEventsQueue", "WebhookDeadLetterQueue"])
def test_only_the_rule_may_send_to_the_queues_it_targets(stack: Stack, queue: str) -> None:
    allow, deny = stack.properties(f"{queue}Policy")["PolicyDocument"]["Statement"]
    assert (allow["Principal"], allow["Action"], allow["Resource"]) == (
        {"Service": "events.amazonaws.com"},
        "sqs:SendMessage",
        stack.arn(queue),
    )
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": stack.arn("WebhookEventsRule")}}
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


# ------------------------------------------------------------------------------------------ the queues
@pytest.mark.parametrize("queue", QUEUES)
def test_each_queue_is_encrypted_tls_only_and_named_for_the_environment(stack: Stack, queue: str) -> None:
    props = stack.properties(queue)
    assert props["SqsManagedSseEnabled"] is True
    assert props["QueueName"].startswith("location-detection-dev-webhook-")
    statements = stack.properties(f"{queue}Policy")["PolicyDocument"]["Statement"]
    assert {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": stack.arn(queue)}.items() <= (
        statements[-1].items()
    )


def test_the_deliveries_queue_redrives_after_the_schedules_last_attempt(stack: Stack) -> None:
    redrive = stack.properties("WebhookDeliveriesQueue")["RedrivePolicy"]
    schedule = RetrySchedule.of(None)
    assert redrive == {"deadLetterTargetArn": stack.arn("WebhookDeadLetterQueue"), "maxReceiveCount": 8}
    assert schedule.attempts == redrive["maxReceiveCount"] >= 8
    assert sum(DEFAULT_RETRY_DELAYS) * 0.9 >= DAY, "at least 24 h of retries, even with the jitter taking 10 %"
    assert max(DEFAULT_RETRY_DELAYS) * 1.1 <= MAX_DELAY_SECONDS, "each delay fits SQS's visibility limit"


def test_messages_outlive_their_retries_and_the_dead_letter_queue_outlives_its_sources(stack: Stack) -> None:
    """SQS keeps a dead letter's first enqueue time: the dead-letter queue must keep messages longer."""
    retention = {queue: stack.properties(queue)["MessageRetentionPeriod"] for queue in QUEUES}
    assert retention["WebhookDeliveriesQueue"] > sum(DEFAULT_RETRY_DELAYS) * 1.1
    assert retention["WebhookDeadLetterQueue"] == 14 * DAY
    assert retention["WebhookDeadLetterQueue"] > max(
        retention["WebhookEventsQueue"], retention["WebhookDeliveriesQueue"]
    )
    assert stack.properties("WebhookEventsQueue")["RedrivePolicy"]["deadLetterTargetArn"] == stack.arn(
        "WebhookDeadLetterQueue"
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_mapping_reports_partial_failures_and_hides_messages_past_the_functions_timeout(
    stack: Stack, function: str
) -> None:
    _, _, queue = FUNCTIONS[function]
    (mapping,) = [m for m in stack.of_type("AWS::Lambda::EventSourceMapping") if m.startswith(function[:-8])]
    props = stack.properties(mapping)
    assert (props["EventSourceArn"], props["FunctionName"]) == (stack.arn(queue), stack.ref(function))
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    assert stack.properties(queue)["VisibilityTimeout"] >= 6 * stack.function_timeout(function)


# --------------------------------------------------------------------------------------- the functions
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_shares_the_package_has_its_own_role_and_log_group_and_reads_what_it_is_given(
    stack: Stack, function: str
) -> None:
    handler, worker, _ = FUNCTIONS[function]
    props = raw(stack, function)
    assert (props["CodeUri"], props["Handler"], props["Runtime"], props["Architectures"]) == (
        "src/",
        handler,
        "python3.11",
        ["arm64"],
    )
    assert props["Role"] == {"Fn::GetAtt": [f"{function}Role", "Arn"]}
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": f"{function}LogGroup"}
    required, _ = WORKERS[worker]
    assert set(stack.function_environment(function)) - {"ENVIRONMENT", "LOG_LEVEL"} == {*required} | (
        {"WEBHOOK_ALLOW_LOOPBACK"} if worker == "webhook_delivery" else set()
    )


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_no_deployed_function_may_send_to_loopback(environment: str) -> None:
    stack = Stack(load_template(), {"Environment": environment})
    for function in ("ApiFunction", "WebhookDeliveryFunction"):
        assert stack.function_environment(function)["WEBHOOK_ALLOW_LOOPBACK"] == "false"
        assert "WEBHOOK_RETRY_DELAYS" not in stack.function_environment(function), "the 24 h schedule"


def test_the_delivery_worker_can_finish_a_batch_of_ten_slow_endpoints_in_its_time(stack: Stack) -> None:
    """Ten attempts run in parallel, each 10 s at most: the timeout leaves room for the table, KMS, SQS."""
    assert stack.function_timeout("WebhookDeliveryFunction") >= 10 + 20


# ------------------------------------------------------------------------------------------- the key
def test_the_secrets_key_rotates_is_retained_and_only_ever_used_under_its_context(stack: Stack) -> None:
    key = stack.resources["WebhookSecretsKey"]
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert stack.properties("WebhookSecretsKey")["EnableKeyRotation"] is True
    assert stack.properties("WebhookSecretsKeyAlias")["AliasName"] == "alias/location-detection-dev-webhook-secrets"
    uses = {
        (role, action): conditions
        for role in ("ApiFunctionRole", "WebhookFanoutFunctionRole", "WebhookDeliveryFunctionRole")
        for action, conditions in granted(stack, role).items()
        if any(resource == stack.arn("WebhookSecretsKey") for resource, _ in conditions)
    }
    assert set(uses) == {("ApiFunctionRole", "kms:Encrypt"), ("WebhookDeliveryFunctionRole", "kms:Decrypt")}
    for conditions in uses.values():
        assert [c for _, c in conditions] == [{"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE}}]


# ------------------------------------------------------------------------------------------ the roles
def test_the_fan_out_reads_webhooks_and_queues_deliveries_only(stack: Stack) -> None:
    table = stack.arn("JobsTable")
    events, deliveries = stack.arn("WebhookEventsQueue"), stack.arn("WebhookDeliveriesQueue")
    webhooks_only = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["webhooks#*"]}}
    found = {
        a: v for a, v in granted(stack, "WebhookFanoutFunctionRole").items() if not a.startswith(("logs:", "xray:"))
    }
    assert found == {
        "sqs:ReceiveMessage": [(events, None)],
        "sqs:DeleteMessage": [(events, None)],
        "sqs:GetQueueAttributes": [(events, None)],
        "dynamodb:GetItem": [(table, webhooks_only)],
        "sqs:SendMessage": [(deliveries, None)],
    }


def test_the_delivery_worker_reads_webhooks_keeps_its_ledger_and_puts_deliveries_off_only(stack: Stack) -> None:
    table, deliveries = stack.arn("JobsTable"), stack.arn("WebhookDeliveriesQueue")
    typed = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["webhooks#*", "delivery#*"]}}
    found = {
        a: v for a, v in granted(stack, "WebhookDeliveryFunctionRole").items() if not a.startswith(("logs:", "xray:"))
    }
    key = (stack.arn("WebhookSecretsKey"), {"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE}})
    assert found == {
        **{
            action: [(deliveries, None)]
            for action in (
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
            )
        },
        "dynamodb:GetItem": [(table, typed)],
        "dynamodb:UpdateItem": [(table, typed)],
        "kms:Decrypt": [key],
    }


@pytest.mark.parametrize("role", ["WebhookFanoutFunctionRole", "WebhookDeliveryFunctionRole"])
def test_the_roles_have_no_managed_policies_and_carry_the_boundary_when_asked(stack: Stack, role: str) -> None:
    props = raw(stack, role)
    assert "ManagedPolicyArns" not in props
    assert props["PermissionsBoundary"] == {
        "Fn::If": ["HasRolesBoundary", {"Ref": "RolesPermissionsBoundary"}, {"Ref": "AWS::NoValue"}]
    }


# ------------------------------------------------------------------------------------------ the alarm
def test_a_dead_letter_raises_the_alarm_at_once(stack: Stack) -> None:
    alarm = stack.properties("WebhookDeadLettersAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": stack.properties("WebhookDeadLetterQueue")["QueueName"]}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["EvaluationPeriods"]) == (
        "GreaterThanThreshold",
        0,
        1,
    )
    assert (alarm["Statistic"], alarm["Period"], alarm["TreatMissingData"]) == ("Maximum", 300, "notBreaching")
