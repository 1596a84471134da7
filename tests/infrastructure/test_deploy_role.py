"""docs/deploy-role.yaml: the OIDC provider, the GitHub roles, the execution role, the artifacts bucket.

The GitHub roles are assumable only by this repository's jobs in the GitHub environment of the same name
(ENV for the deploy role, ENV-changeset for the change-set-only role); the execution role only by
CloudFormation. Together they may deploy every resource template.yaml declares, and no more: no wildcard
actions, "*" resources only for actions AWS cannot scope, nothing of the other environment, no data
reads, no role changing itself. What each role may do call by call is test_deploy_permissions.py's.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from local_api.cfn_template import LOCAL_ACCOUNT_ID, Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
ROLE_TEMPLATE = ROOT / "docs" / "deploy-role.yaml"
ENVIRONMENTS = ("dev", "prod")
OWNER, REPOSITORY = "acme", "location-detection"
REGION = "us-east-1"
#: Actions AWS offers no resource-level permission for (or, for kms:TagResource, not yet: the tagging a
#: CreateKey does): the only ones allowed on "*".
UNSCOPABLE = {
    "cloudformation:ValidateTemplate",
    "kms:CreateKey",
    "kms:TagResource",
    "kms:ListAliases",
    "logs:DescribeLogGroups",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    # A new event source mapping has no ARN yet; the statement narrows it to the stack's functions.
    "lambda:CreateEventSourceMapping",
}


def role_stack(environment: str, **parameters: str) -> Stack:
    values = {"Environment": environment, "GitHubOwner": OWNER, "GitHubRepository": REPOSITORY, **parameters}
    return Stack(load_template(ROLE_TEMPLATE), values, region=REGION)


ROLES = ("DeployRole", "ChangeSetRole", "CloudFormationExecutionRole")
GITHUB_ROLES = {"DeployRole": "{env}", "ChangeSetRole": "{env}-changeset"}


def statements(stack: Stack, roles: tuple[str, ...] = ROLES) -> list[dict[str, Any]]:
    """Every statement of the roles' managed policies, resolved."""
    found = []
    for role in roles:
        assert "Policies" not in stack.properties(role), "all permissions live in the named managed policies"
        for policy_id in (ref["Ref"] for ref in stack.resources[role]["Properties"]["ManagedPolicyArns"]):
            assert stack.resources[policy_id]["Type"] == "AWS::IAM::ManagedPolicy"
            found += stack.properties(policy_id)["PolicyDocument"]["Statement"]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(stack: Stack, action: str, resource: str, roles: tuple[str, ...] = ROLES) -> bool:
    """Whether an Allow statement matches (conditions aside) and no Deny does."""

    def matches(statement: dict[str, Any]) -> bool:
        return any(fnmatchcase(action.lower(), a.lower()) for a in as_list(statement["Action"])) and any(
            fnmatchcase(resource, r) for r in as_list(statement["Resource"])
        )

    found = [s for s in statements(stack, roles) if matches(s)]
    return any(s["Effect"] == "Allow" for s in found) and not any(s["Effect"] == "Deny" for s in found)


@pytest.fixture(params=ENVIRONMENTS)
def environment(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_oidc_provider_is_githubs_for_sts_and_optional() -> None:
    template = load_template(ROLE_TEMPLATE)
    provider = template["Resources"]["GitHubOidcProvider"]

    assert provider["Type"] == "AWS::IAM::OIDCProvider"
    assert provider["Condition"] == "CreateProvider"
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    assert role_stack("dev").condition("CreateProvider")
    assert not role_stack("dev", CreateOidcProvider="false").condition("CreateProvider")


@pytest.mark.parametrize("create_provider", ["true", "false"])
@pytest.mark.parametrize("role", sorted(GITHUB_ROLES))
def test_only_this_repositorys_jobs_in_the_environment_may_assume_the_role(
    environment: str, create_provider: str, role: str
) -> None:
    stack = role_stack(environment, CreateOidcProvider=create_provider)
    (trust,) = stack.properties(role)["AssumeRolePolicyDocument"]["Statement"]
    github_environment = GITHUB_ROLES[role].format(env=environment)

    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    # The provider made here, or the account's existing one: the same ARN either way.
    assert trust["Principal"] == {
        "Federated": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
    }
    assert trust["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:{OWNER}/{REPOSITORY}:environment:{github_environment}",
        }
    }


def test_sessions_last_at_most_an_hour(environment: str) -> None:
    for role in GITHUB_ROLES:
        assert role_stack(environment).properties(role)["MaxSessionDuration"] == 3600, role


def test_no_wildcard_actions_and_star_only_where_aws_cannot_scope(environment: str) -> None:
    for statement in statements(role_stack(environment)):
        for action in as_list(statement["Action"]):
            assert "*" not in action, action
        if "*" in as_list(statement["Resource"]) and statement["Effect"] == "Allow":
            assert set(as_list(statement["Action"])) <= UNSCOPABLE, statement["Sid"]


def test_nothing_of_the_other_environment(environment: str) -> None:
    other = {"dev": "prod", "prod": "dev"}[environment]
    stack = role_stack(environment)
    for logical_id, resource in stack.resources.items():
        if resource["Type"].startswith("AWS::IAM::") and logical_id != "GitHubOidcProvider":
            assert f"-{other}" not in str(stack.properties(logical_id)), logical_id
            assert f"/{other}/" not in str(stack.properties(logical_id)), logical_id


def test_the_execution_role_hands_the_stacks_roles_to_lambda_codedeploy_and_eventbridge_only(environment: str) -> None:
    stack = role_stack(environment)
    (pass_role,) = [
        s for s in statements(stack, ("CloudFormationExecutionRole",)) if "iam:PassRole" in as_list(s["Action"])
    ]
    assert pass_role["Resource"] == f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/location-detection-{environment}-*"
    assert pass_role["Condition"] == {
        "StringEquals": {
            "iam:PassedToService": ["lambda.amazonaws.com", "codedeploy.amazonaws.com", "events.amazonaws.com"]
        }
    }


@pytest.mark.parametrize("role", sorted(GITHUB_ROLES))
def test_the_github_roles_pass_only_the_execution_role_and_only_to_cloudformation(environment: str, role: str) -> None:
    stack = role_stack(environment)
    (pass_role,) = [s for s in statements(stack, (role,)) if "iam:PassRole" in as_list(s["Action"])]
    assert pass_role["Resource"] == stack.arn("CloudFormationExecutionRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    assert not [
        a
        for s in statements(stack, (role,))
        for a in as_list(s["Action"])
        if a.startswith("iam:") and a != "iam:PassRole"
    ]


@pytest.mark.parametrize("role", ROLES)
def test_no_role_can_change_itself_or_another_of_these(environment: str, role: str) -> None:
    stack = role_stack(environment)
    for target in ROLES:
        arn = stack.arn(target)
        for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole"):
            assert not allows(stack, action, arn, (role,)), (role, action, target)


def test_the_function_role_boundary_is_enforced_only_when_asked(environment: str) -> None:
    def boundary_conditions(stack: Stack) -> list[Any]:
        return [s.get("Condition") for s in statements(stack) if "iam:CreateRole" in as_list(s["Action"])]

    assert boundary_conditions(role_stack(environment)) == [None]
    enforced = boundary_conditions(role_stack(environment, RequireFunctionRoleBoundary="true"))
    boundary = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:policy/location-detection-{environment}-function-boundary"
    assert enforced == [{"StringEquals": {"iam:PermissionsBoundary": boundary}}]


def test_the_artifacts_bucket_is_private_tls_only_expiring_and_only_in_the_packaging_account() -> None:
    dev = role_stack("dev")
    props = dev.properties("ArtifactsBucket")
    (deny,) = dev.properties("ArtifactsBucketPolicy")["PolicyDocument"]["Statement"]

    assert props["BucketName"] == f"location-detection-artifacts-{LOCAL_ACCOUNT_ID}-{REGION}"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 90, "how long a commit's package can still be promoted"
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    assert not role_stack("prod", CreateArtifactsBucket="false").condition("CreateArtifacts")


def test_prod_in_another_account_may_read_the_packages_and_nothing_else() -> None:
    dev = role_stack("dev", ArtifactsReaderAccountId="210987654321")
    _, reader = dev.properties("ArtifactsBucketPolicy")["PolicyDocument"]["Statement"]

    assert reader["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert set(reader["Action"]) == {"s3:GetObject", "s3:ListBucket"}
    assert reader["Resource"][1].endswith("/location-detection/*")
