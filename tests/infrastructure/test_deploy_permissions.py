"""docs/deploy-role.yaml's roles allow what a release needs, each no more, and no key takeover.

Every resource of the translated template (each parameter set of ``rehearsal.PARAMETER_SETS``), every
phase (create, update, delete: RetainExceptOnCreate resources are deleted when a first create rolls
back), every permission its handlers need (``cfn_permissions.HANDLERS``, each list with its source),
evaluated by a real IAM policy engine (``iam_simulator``) against the CloudFormation execution role, with
the request context CloudFormation supplies: the real names and ARNs, the stack's and the resource's
tags as ``aws:RequestTag`` when a call creates and tags at once, the resource's tags as
``aws:ResourceTag`` afterwards, and never an ``aws:cloudformation:*`` tag (KMS keys get none). The GitHub
roles (the deploy role, the change-set-only role) may run the release (.ci/release) and pass the
execution role to CloudFormation, and nothing else: no resource, no IAM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_api.cfn_template import Stack, load_template
from tests.infrastructure import rehearsal
from tests.infrastructure.cfn_permissions import HANDLERS, PHASES, Deployed, deploy_requests
from tests.infrastructure.iam_simulator import Policies, Request, Simulator, refused

ROOT = Path(__file__).resolve().parents[2]
ROLE_TEMPLATE = ROOT / "docs" / "deploy-role.yaml"
ACCOUNT, REGION = rehearsal.ACCOUNT, rehearsal.REGION
OWNER, REPOSITORY = "acme", "location-detection"
#: The tag the stack gives its KMS keys, and the deploy role's only way to tell them from anyone else's.
OWNER_TAG = "location-detection-stack"
#: iam-data has no resource type for a transform ARN (arn:aws:cloudformation:REGION:aws:transform/NAME),
#: which CloudFormation does authorize CreateChangeSet on when a template names a transform.
NO_TRANSFORM_TYPE = "iam-data lacks CloudFormation's transform resource type"


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator() as sim:
        yield sim


def role_stack(environment: str, **parameters: str) -> Stack:
    values = {"Environment": environment, "GitHubOwner": OWNER, "GitHubRepository": REPOSITORY, **parameters}
    return Stack(load_template(ROLE_TEMPLATE), values, region=REGION, account_id=ACCOUNT)


def managed_policies(stack: Stack, role: str) -> list[tuple[str, dict[str, Any]]]:
    arns = stack.properties(role)["ManagedPolicyArns"]
    by_arn = {stack.ref(i): i for i in stack.of_type("AWS::IAM::ManagedPolicy")}
    return [(by_arn[arn], stack.properties(by_arn[arn])["PolicyDocument"]) for arn in arns]


EXECUTION_ROLE, DEPLOY_ROLE, CHANGE_SET_ROLE = "CloudFormationExecutionRole", "DeployRole", "ChangeSetRole"


def deploy_role(
    environment: str, role: str = EXECUTION_ROLE, **parameters: str
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """A role of the environment's bootstrap stack (by default the one CloudFormation acts as), its policies."""
    stack = role_stack(environment, **parameters)
    return stack.arn(role), managed_policies(stack, role)


def resources(stack: Stack, environment: str) -> list[Deployed]:
    tags = rehearsal.stack_tags(environment)
    return [Deployed(stack, logical_id, tags) for logical_id in stack.present()]


def evaluate(simulator: Simulator, environment: str, stack: Stack, requests: list[Request]) -> list[str]:
    """Refused requests; those on a KMS key are also evaluated against the key's own policy."""
    principal, identity = deploy_role(environment)
    key_policies = {
        stack.arn(i): stack.properties(i)["KeyPolicy"] for i in stack.present() if i in stack.of_type("AWS::KMS::Key")
    }
    plain = [r for r in requests if r.resource not in key_policies]
    problems = refused(simulator.evaluate(principal, ACCOUNT, Policies(identity), plain))
    for key_arn, policy in key_policies.items():
        on_key = [r for r in requests if r.resource == key_arn]
        problems += refused(simulator.evaluate(principal, ACCOUNT, Policies(identity, resource=policy), on_key))
    return problems


# ------------------------------------------------------------------------------------- the tables
def test_every_resource_type_of_the_translated_template_has_its_handler_permissions() -> None:
    types = {r["Type"] for name in rehearsal.PARAMETER_SETS for r in rehearsal.translated(name)["Resources"].values()}
    assert types - HANDLERS.keys() == set(), "add these types to cfn_permissions.HANDLERS (with their source)"


@pytest.mark.parametrize("resource_type", sorted(HANDLERS))
def test_each_permission_list_says_where_it_comes_from(resource_type: str) -> None:
    handlers = HANDLERS[resource_type]
    listed = {*handlers.create, *handlers.read, *handlers.update, *handlers.delete}

    assert handlers.source.startswith(("github.com/aws-cloudformation/", "describe-type; https://docs.aws.amazon.com/"))
    if handlers.source.startswith("github.com/"):
        assert "@" in handlers.source, "name the commit the schema was read at"
    assert set(handlers.unused) <= listed, "only what the schema lists can be unused"
    assert all(handlers.unused.values()), "say which property would need it"
    assert handlers.create, "every type is created by some call"


# ------------------------------------------------------------------------------------- the deploy
@pytest.mark.parametrize("name", sorted(rehearsal.PARAMETER_SETS))
@pytest.mark.parametrize("phase", PHASES)
def test_the_execution_role_allows_every_call_of_every_handler(simulator: Simulator, name: str, phase: str) -> None:
    environment = rehearsal.environment_of(name)
    stack = rehearsal.deployed(name)
    requests = [
        request
        for resource in resources(stack, environment)
        for request in deploy_requests(resource, phase, rehearsal.stack_tags(environment))
    ]

    assert len(requests) > 100
    assert evaluate(simulator, environment, stack, requests) == []


STACK_ARN = "arn:aws:cloudformation:{region}:{account}:stack/location-detection-{env}/0f1e2d3c-4b5a"
TRANSFORM = f"arn:aws:cloudformation:{REGION}:aws:transform/Serverless-2016-10-31"
ARTIFACTS = f"arn:aws:s3:::{rehearsal.ARTIFACTS_BUCKET}"
PACKAGE = f"{ARTIFACTS}/location-detection/{rehearsal.COMMIT}/packaged.yaml"
#: .ci/release's calls, by the role that makes them.
CHANGE_SET_CALLS = ("CreateChangeSet", "DescribeChangeSet", "DescribeStacks", "ListChangeSets", "GetTemplateSummary")
DEPLOY_CALLS = (*CHANGE_SET_CALLS, "ExecuteChangeSet", "DeleteChangeSet", "DescribeStackEvents")
#: The recovery commands of docs/runbook.md, run with the deploy role.
RECOVERY_CALLS = ("CancelUpdateStack", "ContinueUpdateRollback", "RollbackStack", "DeleteChangeSet")


def release_requests(environment: str, actions: tuple[str, ...]) -> list[Request]:
    stack = STACK_ARN.format(region=REGION, account=ACCOUNT, env=environment)
    return [Request(f"cloudformation:{a}", stack, why=a) for a in actions]


def pass_execution_role(environment: str, service: str = "cloudformation") -> Request:
    role = f"arn:aws:iam::{ACCOUNT}:role/location-detection-cloudformation-{environment}"
    return Request("iam:PassRole", role, {"iam:PassedToService": f"{service}.amazonaws.com"}, why=f"pass to {service}")


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_deploy_role_runs_the_release_and_the_recovery_commands(simulator: Simulator, environment: str) -> None:
    packages_here = str(environment == "dev").lower()
    principal, identity = deploy_role(environment, DEPLOY_ROLE, CreateArtifactsBucket=packages_here)
    requests = [
        *release_requests(environment, DEPLOY_CALLS + RECOVERY_CALLS),
        Request("cloudformation:CreateChangeSet", TRANSFORM, why="the SAM transform", unvalidated=NO_TRANSFORM_TYPE),
        Request("s3:GetObject", PACKAGE, why="CloudFormation reads the package with the caller's credentials"),
        Request("s3:ListBucket", ARTIFACTS, why="a missing package is 404, not 403"),
        pass_execution_role(environment),
    ]
    written = Request("s3:PutObject", PACKAGE, why="sam package and the 'passed dev' mark")
    assert refused(simulator.evaluate(principal, ACCOUNT, Policies(identity), requests)) == []
    (put,) = simulator.evaluate(principal, ACCOUNT, Policies(identity), [written])
    assert put.allowed == (environment == "dev"), "only the account that packages writes packages"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_change_set_role_creates_change_sets_and_cannot_execute_them(
    simulator: Simulator, environment: str
) -> None:
    principal, identity = deploy_role(environment, CHANGE_SET_ROLE)
    allowed = [
        *release_requests(environment, CHANGE_SET_CALLS),
        Request("cloudformation:CreateChangeSet", TRANSFORM, why="the SAM transform", unvalidated=NO_TRANSFORM_TYPE),
        Request("s3:GetObject", PACKAGE, why="the package and the 'passed dev' mark"),
        pass_execution_role(environment),
    ]
    forbidden = [
        *release_requests(
            environment, ("ExecuteChangeSet", "DeleteChangeSet", "UpdateStack", "DeleteStack", "CreateStack")
        ),
        Request("s3:PutObject", PACKAGE, why="replace the package dev tested"),
    ]
    assert refused(simulator.evaluate(principal, ACCOUNT, Policies(identity), allowed)) == []
    decided = simulator.evaluate(principal, ACCOUNT, Policies(identity), forbidden)
    assert [d.request.describe() for d in decided if d.allowed] == []


@pytest.mark.parametrize("environment", ["dev", "prod"])
@pytest.mark.parametrize("role", [DEPLOY_ROLE, CHANGE_SET_ROLE])
def test_the_github_roles_cannot_create_iam_or_touch_resources_themselves(
    simulator: Simulator, environment: str, role: str
) -> None:
    """They pass the execution role to CloudFormation, and only to CloudFormation: what the stack's
    resources become is CloudFormation's doing, from the reviewed template."""
    principal, identity = deploy_role(environment, role)
    prefix = f"location-detection-{environment}"
    iam_role = f"arn:aws:iam::{ACCOUNT}:role/{prefix}-ApiFunctionRole-ABC"
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:location-detection/{environment}/api-keys-AbCdEf"
    forbidden = [
        *(
            Request(f"iam:{a}", iam_role, why=a)
            for a in ("CreateRole", "PutRolePolicy", "AttachRolePolicy", "UpdateAssumeRolePolicy", "DeleteRole")
        ),
        Request("iam:PassRole", iam_role, {"iam:PassedToService": "lambda.amazonaws.com"}, why="the function's role"),
        pass_execution_role(environment, "lambda"),
        Request("iam:CreatePolicyVersion", f"arn:aws:iam::{ACCOUNT}:policy/{prefix}-deploy-data", why="widen"),
        Request("lambda:UpdateFunctionCode", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{prefix}-api", why="code"),
        Request("dynamodb:DeleteTable", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{prefix}-jobs", why="jobs"),
        Request("s3:DeleteBucket", f"arn:aws:s3:::{prefix}-blueprints-{ACCOUNT}-{REGION}", why="files"),
        Request("kms:CreateKey", "*", {"aws:RequestTag/location-detection-stack": prefix}, why="a key"),
        Request("secretsmanager:GetSecretValue", secret, why="the secret"),
    ]
    decided = simulator.evaluate(principal, ACCOUNT, Policies(identity), forbidden)
    assert [d.request.describe() for d in decided if d.allowed] == []


def test_only_cloudformation_may_assume_the_execution_role_and_nothing_can_edit_it() -> None:
    stack = role_stack("prod")
    props = stack.properties(EXECUTION_ROLE)

    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Sid": "CloudFormationOnly",
            "Effect": "Allow",
            "Principal": {"Service": "cloudformation.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert props["RoleName"] == "location-detection-cloudformation-prod"
    assert not props["RoleName"].startswith("location-detection-prod-"), "outside the role names it may manage"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_execution_role_reads_no_data_and_invokes_nothing(simulator: Simulator, environment: str) -> None:
    """Configuration, not content: no table item, no object, no invocation, no decryption outside
    Secrets Manager, nothing of the other environment."""
    other = {"dev": "prod", "prod": "dev"}[environment]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/location-detection-{environment}-jobs"
    bucket = f"arn:aws:s3:::location-detection-{environment}-blueprints-{ACCOUNT}-{REGION}"
    principal, identity = deploy_role(environment)
    forbidden = [
        *(Request(f"dynamodb:{a}", table) for a in ("GetItem", "Query", "Scan", "PutItem", "DeleteItem")),
        Request("s3:GetObject", f"{bucket}/blueprints/job_1/plan.png"),
        Request("s3:PutObject", f"{bucket}/blueprints/job_1/plan.png"),
        Request("s3:DeleteObjectVersion", f"{bucket}/blueprints/job_1/plan.png"),
        Request(
            "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:location-detection-{environment}-api"
        ),
        Request("kms:Decrypt", key_arn(), {f"aws:ResourceTag/{OWNER_TAG}": f"location-detection-{environment}"}),
        Request("dynamodb:DeleteTable", table.replace(f"-{environment}-", f"-{other}-")),
        Request("s3:DeleteBucket", bucket.replace(f"-{environment}-", f"-{other}-")),
    ]
    decided = simulator.evaluate(principal, ACCOUNT, Policies(identity, resource=None), forbidden[:-3])
    decided += simulator.evaluate(
        principal, ACCOUNT, Policies(identity, resource=DELEGATING_KEY_POLICY), forbidden[-3:-2]
    )
    decided += simulator.evaluate(principal, ACCOUNT, Policies(identity), forbidden[-2:])
    assert [d.request.describe() for d in decided if d.allowed] == []


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_execution_role_reaches_only_its_own_bus_queues_rules_and_mappings(
    simulator: Simulator, environment: str
) -> None:
    """The job events' resources, by name for the bus, rules and queues; by the function they feed for the
    mappings (whose ARNs are random ids); and nothing of their data: no event put, no message read."""
    other = {"dev": "prod", "prod": "dev"}[environment]
    principal, identity = deploy_role(environment)
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
    mine = f"location-detection-{environment}"
    mapping = arn.format("lambda") + "event-source-mapping:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    allowed = [
        Request("events:CreateEventBus", arn.format("events") + f"event-bus/{mine}", why="the bus"),
        Request("sqs:CreateQueue", arn.format("sqs") + f"{mine}-job-events-failed", why="the failure queue"),
        Request(
            "lambda:UpdateEventSourceMapping",
            mapping,
            {"lambda:FunctionArn": arn.format("lambda") + f"function:{mine}-job-events"},
            why="the stream's mapping",
        ),
    ]
    forbidden = [
        Request("events:DeleteEventBus", arn.format("events") + f"event-bus/location-detection-{other}"),
        Request("events:DeleteEventBus", arn.format("events") + "event-bus/default"),
        Request("events:PutTargets", arn.format("events") + f"rule/location-detection-{other}/x"),
        Request("events:PutEvents", arn.format("events") + f"event-bus/{mine}", why="forge an event"),
        Request("sqs:DeleteQueue", arn.format("sqs") + f"location-detection-{other}-job-events-failed"),
        Request("sqs:ReceiveMessage", arn.format("sqs") + f"{mine}-job-events-failed", why="read the data"),
        Request(
            "lambda:DeleteEventSourceMapping",
            mapping,
            {"lambda:FunctionArn": arn.format("lambda") + "function:someone-elses-consumer"},
            why="another stack's mapping",
        ),
        Request(
            "lambda:CreateEventSourceMapping",
            "*",
            {"lambda:FunctionArn": arn.format("lambda") + f"function:location-detection-{other}-job-events"},
        ),
    ]
    assert refused(simulator.evaluate(principal, ACCOUNT, Policies(identity), allowed)) == []
    decided = simulator.evaluate(principal, ACCOUNT, Policies(identity), forbidden)
    assert [d.request.describe() for d in decided if d.allowed] == []


# --------------------------------------------------------------------------------- the KMS tag trap
def key_arn(key_id: str = "1234abcd-12ab-34cd-56ef-1234567890ab") -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"


#: The default key policy (AWS's, and every key's of this stack): the account's IAM policies decide.
DELEGATING_KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    ],
}


def decisions(simulator: Simulator, environment: str, requests: list[Request]) -> dict[str, str]:
    """Each request's decision, a key's under the default key policy (any key delegating to IAM)."""
    principal, identity = deploy_role(environment)
    found = {}
    for resource_policy, batch in (
        (None, [r for r in requests if r.resource == "*"]),
        (DELEGATING_KEY_POLICY, [r for r in requests if r.resource != "*"]),
    ):
        for d in simulator.evaluate(principal, ACCOUNT, Policies(identity, resource=resource_policy), batch):
            found[d.request.why] = d.decision
    return found


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_role_creates_and_manages_a_key_that_carries_the_stacks_tag(simulator: Simulator, environment: str) -> None:
    """CloudFormation tags no KMS key: the role recognises the stack's keys by the stack's own tag,
    given at creation (aws:RequestTag) and carried afterwards (aws:ResourceTag)."""
    ours = {OWNER_TAG: f"location-detection-{environment}"}
    at_creation = {f"aws:RequestTag/{OWNER_TAG}": ours[OWNER_TAG], "aws:TagKeys": [OWNER_TAG, "project"]}
    owned = {f"aws:ResourceTag/{OWNER_TAG}": ours[OWNER_TAG]}
    requests = [
        Request("kms:CreateKey", "*", at_creation, why="create with the tag"),
        Request("kms:TagResource", "*", at_creation, why="tag at creation"),
        *(
            Request(action, key_arn(), owned, why=action)
            for action in (
                *("kms:EnableKeyRotation", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy"),
                *("kms:ListResourceTags", "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion"),
            )
        ),
        Request(
            "kms:TagResource",
            key_arn(),
            {**owned, "aws:TagKeys": ["project"], "aws:RequestTag/project": "x"},
            why="retag own",
        ),
    ]
    assert set(decisions(simulator, environment, requests).values()) == {"Allowed"}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_role_cannot_create_a_key_without_the_stacks_tag(simulator: Simulator, environment: str) -> None:
    other = {"dev": "prod", "prod": "dev"}[environment]
    requests = [
        Request("kms:CreateKey", "*", {}, why="untagged"),
        Request(
            "kms:CreateKey",
            "*",
            {f"aws:RequestTag/{OWNER_TAG}": f"location-detection-{other}", "aws:TagKeys": [OWNER_TAG]},
            why="other env's tag",
        ),
        Request(
            "kms:TagResource", "*", {"aws:RequestTag/project": "x", "aws:TagKeys": ["project"]}, why="tag without ours"
        ),
    ]
    assert set(decisions(simulator, environment, requests).values()) == {"ImplicitlyDenied"}


@pytest.mark.parametrize("environment", ["dev", "prod"])
@pytest.mark.parametrize(
    "foreign",
    [{}, {"team": "payments"}, {OWNER_TAG: "location-detection-other"}, {OWNER_TAG: "location-detection-{other}"}],
    ids=["untagged", "someone-elses", "another-stacks", "the-other-environments"],
)
def test_the_role_cannot_take_over_a_key_the_stack_does_not_own(
    simulator: Simulator, environment: str, foreign: dict[str, str]
) -> None:
    """The trap: a role allowed kms:TagResource by aws:RequestTag alone could tag anyone's key with the
    stack's tag, and its aws:ResourceTag permissions would then cover that key."""
    other = {"dev": "prod", "prod": "dev"}[environment]
    resource_tags = {f"aws:ResourceTag/{k}": v.format(other=other) for k, v in foreign.items()}
    ours = {f"aws:RequestTag/{OWNER_TAG}": f"location-detection-{environment}", "aws:TagKeys": [OWNER_TAG]}
    requests = [
        Request("kms:TagResource", key_arn(), {**resource_tags, **ours}, why="tag it as ours"),
        Request("kms:UntagResource", key_arn(), {**resource_tags, "aws:TagKeys": [OWNER_TAG]}, why="untag it"),
        *(
            Request(action, key_arn(), resource_tags, why=action)
            for action in (
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:DisableKey",
                "kms:CreateGrant",
                "kms:Decrypt",
            )
        ),
        Request("kms:CreateAlias", key_arn(), resource_tags, why="point an alias at it"),
    ]
    found = decisions(simulator, environment, requests)
    assert {why: d for why, d in found.items() if d == "Allowed"} == {}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_role_cannot_give_its_key_to_another_stack(simulator: Simulator, environment: str) -> None:
    other = {"dev": "prod", "prod": "dev"}[environment]
    owned = {f"aws:ResourceTag/{OWNER_TAG}": f"location-detection-{environment}"}
    requests = [
        Request(
            "kms:TagResource",
            key_arn(),
            {**owned, f"aws:RequestTag/{OWNER_TAG}": f"location-detection-{other}", "aws:TagKeys": [OWNER_TAG]},
            why="retag as the other environment's",
        )
    ]
    assert decisions(simulator, environment, requests) == {"retag as the other environment's": "ExplicitlyDenied"}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_no_statement_relies_on_cloudformations_own_tags(environment: str) -> None:
    """CloudFormation puts no aws:cloudformation:* tags on KMS keys (cloudFormationSystemTags: false):
    no role may be scoped by them, for any type."""
    _, policies = deploy_role(environment)
    conditions = [s.get("Condition", {}) for _, policy in policies for s in policy["Statement"]]
    keys = {key for condition in conditions for block in condition.values() for key in block}
    assert keys
    assert [key for key in keys if "aws:cloudformation:" in key] == []
