"""docs/deploy-role.yaml: the OIDC provider and the deploy role of one environment (docs/deploy.md).

The role must be assumable only by this repository's jobs in the GitHub environment of the same name, must
be able to deploy every resource template.yaml declares, and no more: no wildcard actions, "*" resources
only for actions AWS cannot scope, nothing of the other environment, no data reads, no deleting what the
stack retains, no changing itself.
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
}


def role_stack(environment: str, **parameters: str) -> Stack:
    values = {"Environment": environment, "GitHubOwner": OWNER, "GitHubRepository": REPOSITORY, **parameters}
    return Stack(load_template(ROLE_TEMPLATE), values, region=REGION)


def statements(stack: Stack) -> list[dict[str, Any]]:
    """Every statement of the role's managed policies, resolved."""
    role = stack.properties("DeployRole")
    found = []
    for policy_id in (ref["Ref"] for ref in stack.resources["DeployRole"]["Properties"]["ManagedPolicyArns"]):
        assert stack.resources[policy_id]["Type"] == "AWS::IAM::ManagedPolicy"
        found += stack.properties(policy_id)["PolicyDocument"]["Statement"]
    assert "Policies" not in role, "all permissions live in the named managed policies"
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(stack: Stack, action: str, resource: str) -> bool:
    """Whether an Allow statement matches (conditions aside) and no Deny does."""

    def matches(statement: dict[str, Any]) -> bool:
        return any(fnmatchcase(action.lower(), a.lower()) for a in as_list(statement["Action"])) and any(
            fnmatchcase(resource, r) for r in as_list(statement["Resource"])
        )

    found = [s for s in statements(stack) if matches(s)]
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
def test_only_this_repositorys_jobs_in_the_environment_may_assume_the_role(
    environment: str, create_provider: str
) -> None:
    stack = role_stack(environment, CreateOidcProvider=create_provider)
    (trust,) = stack.properties("DeployRole")["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    # The provider made here, or the account's existing one: the same ARN either way.
    assert trust["Principal"] == {
        "Federated": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
    }
    assert trust["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:{OWNER}/{REPOSITORY}:environment:{environment}",
        }
    }


def test_sessions_last_at_most_an_hour(environment: str) -> None:
    assert role_stack(environment).properties("DeployRole")["MaxSessionDuration"] == 3600


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


def test_the_role_hands_the_function_role_to_lambda_only(environment: str) -> None:
    (pass_role,) = [s for s in statements(role_stack(environment)) if "iam:PassRole" in as_list(s["Action"])]
    assert pass_role["Resource"] == f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/location-detection-{environment}-*"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}


def test_the_role_cannot_change_itself(environment: str) -> None:
    stack = role_stack(environment)
    own = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{stack.properties('DeployRole')['RoleName']}"
    for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PassRole"):
        assert not allows(stack, action, own), action


def test_the_function_role_boundary_is_enforced_only_when_asked(environment: str) -> None:
    def boundary_conditions(stack: Stack) -> list[Any]:
        return [s.get("Condition") for s in statements(stack) if "iam:CreateRole" in as_list(s["Action"])]

    assert boundary_conditions(role_stack(environment)) == [None]
    enforced = boundary_conditions(role_stack(environment, RequireFunctionRoleBoundary="true"))
    boundary = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:policy/location-detection-{environment}-function-boundary"
    assert enforced == [{"StringEquals": {"iam:PermissionsBoundary": boundary}}]
