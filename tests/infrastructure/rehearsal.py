"""The first deploy, rehearsed offline: what CloudFormation would receive and what it would create.

``translated(name)`` is ``template.yaml`` after the SAM transform (``samtranslator``, the library
CloudFormation's ``AWS::Serverless-2016-10-31`` transform and ``sam validate`` run), for one of
``PARAMETER_SETS``: each environment's ``samconfig.toml`` overrides, with and without JWT. It is computed
once per parameter set and process. ``deployed(name)`` resolves it (``local_api.cfn_template.Stack``) with
the same parameters, account and region. ``create_in_moto(name)`` creates it in moto's CloudFormation
(inside an active ``mock_aws``), after the adaptations below, and says which types moto skipped.

moto 5.2.5 creates tables, buckets, roles, keys, aliases, parameters, log groups, topics and functions
for real (some properties aside: ``MOTO_DROPS``); for the types in ``MOTO_SKIPPED`` it only warns and
creates nothing. ``create_in_moto`` records
those warnings, and test_rehearsal.py fails on any skipped type the table does not list, so nothing is
skipped silently; it also fails on a listed type moto creates after all (the table must stay true).

To add a resource type to template.yaml:
1. If moto cannot create it, add it to ``MOTO_SKIPPED`` with the reason (and, if it breaks moto's
   create_stack, to ``adapt_for_moto``).
2. Add its CloudFormation handler permissions to ``cfn_permissions.HANDLERS`` (with their source) and, if
   its actions act on something other than the resource's own ARN, to ``cfn_permissions.TARGETS``;
   test_deploy_permissions.py then checks the deploy roles for it.
3. Add its logical id to ``EXPECTED_RESOURCES`` in test_rehearsal.py and assert what matters about it.
To add a function: give its ``CodeUri`` an entry in ``CODE_URIS`` and its AWS calls a scenario in
test_function_permissions.py.
"""

from __future__ import annotations

import copy
import functools
import json
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from samcli.cli.types import CfnParameterOverridesType
from samcli.yamlhelper import yaml_parse
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from local_api.cfn_template import LOCAL_ACCOUNT_ID, Stack

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = LOCAL_ACCOUNT_ID
REGION = "us-east-1"
#: Where `.ci/release package` puts each function's code: the artifacts bucket, under the commit (the
#: rehearsal uploads a small zip there).
ARTIFACTS_BUCKET = f"location-detection-artifacts-{ACCOUNT}-{REGION}"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
#: One package for every function (the same CodeUri, src/): sam package uploads it once, by its hash.
PACKAGE_URI = f"s3://{ARTIFACTS_BUCKET}/location-detection/{COMMIT}/0123456789abcdef0123456789abcdef"
CODE_URIS = dict.fromkeys(("ApiFunction", "JobEventsFunction", "PipelineTaskFunction", "SweepFunction"), PACKAGE_URI)
JWT = {"JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example", "JwtAudience": "example-client"}
#: The optional pipeline (a Step Functions state machine of another stack: Epic 3's).
PIPELINE = {"PipelineStateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:location-detection-pipeline"}
#: name -> (environment, with a JWT issuer); the sets in WITH_PIPELINE also name a pipeline.
PARAMETER_SETS = {
    "dev": ("dev", False),
    "prod": ("prod", False),
    "dev-jwt": ("dev", True),
    "prod-jwt": ("prod", True),
    "dev-pipeline": ("dev", False),
}
WITH_PIPELINE = frozenset({"dev-pipeline"})

#: Resource types moto 5.2.5's CloudFormation does not create (it warns "Tried to parse ... but it's not
#: supported" and goes on), and what covers them instead.
MOTO_SKIPPED = {
    "AWS::ApiGatewayV2::Api": "no ApiGatewayV2 in moto's CloudFormation; the translated template is asserted",
    "AWS::ApiGatewayV2::Stage": "no ApiGatewayV2 in moto's CloudFormation; the translated template is asserted",
    "AWS::ApiGatewayV2::Integration": "no ApiGatewayV2 in moto's CloudFormation; translated template asserted",
    "AWS::ApiGatewayV2::Route": "no ApiGatewayV2 in moto's CloudFormation; the translated template is asserted",
    "AWS::ApiGatewayV2::Authorizer": "no ApiGatewayV2 in moto's CloudFormation; translated template asserted",
    "AWS::S3::BucketPolicy": "not in moto's CloudFormation; test_template.py asserts the TLS-only policy",
    "AWS::SecretsManager::Secret": "not in moto's CloudFormation; its translated properties are asserted",
    "AWS::SNS::TopicPolicy": "not in moto's CloudFormation; test_hardening.py asserts the policy",
    "AWS::SNS::Subscription": "not in moto's CloudFormation; test_hardening.py asserts the subscription",
    "AWS::CloudWatch::Alarm": "not in moto's CloudFormation; test_hardening.py asserts every alarm",
    "AWS::Lambda::Alias": "not in moto's CloudFormation; the translated alias (and what points at it) is asserted",
    "AWS::CodeDeploy::Application": "no CodeDeploy in moto's CloudFormation; the translated template is asserted",
    "AWS::CodeDeploy::DeploymentGroup": "no CodeDeploy in moto's CloudFormation; translated template asserted",
    "AWS::SQS::QueuePolicy": "not in moto's CloudFormation; test_events_template.py asserts the TLS-only policies",
}


#: Properties moto 5.2.5's CloudFormation accepts but does not apply (the resource is created without
#: them); test_rehearsal.py asserts them on the translated template instead.
MOTO_DROPS = {
    "AWS::DynamoDB::Table": ("TimeToLiveSpecification", "SSESpecification", "PointInTimeRecoverySpecification"),
    "AWS::S3::Bucket": (
        "VersioningConfiguration",
        "PublicAccessBlockConfiguration",
        "LifecycleConfiguration",
        "CorsConfiguration",
        "OwnershipControls",
    ),
    "AWS::Lambda::Function": ("Architectures", "TracingConfig", "LoggingConfig"),
    "AWS::Lambda::Permission": ("(physical id)",),
    "AWS::Lambda::Version": ("(physical id)",),
    "AWS::Events::EventBus": ("(physical id)",),
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _pairs(text: str) -> dict[str, str]:
    """``Key=Value Key=Value`` as sam parses it (the parser skips what it cannot read: all must come through)."""
    parsed: dict[str, str] = CfnParameterOverridesType().convert(text, None, None)
    assert len(parsed) == len(text.split()), f"unparsed pairs in {text!r}"
    return parsed


@functools.cache
def samconfig() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)


def stack_tags(environment: str) -> dict[str, str]:
    """The tags `sam deploy` gives the stack (and CloudFormation every taggable resource in it)."""
    return _pairs(samconfig()[environment]["deploy"]["parameters"]["tags"])


def stack_name(environment: str) -> str:
    return str(samconfig()[environment]["deploy"]["parameters"]["stack_name"])


def parameters(name: str) -> dict[str, str]:
    environment, jwt = PARAMETER_SETS[name]
    values = _pairs(samconfig()[environment]["deploy"]["parameters"]["parameter_overrides"])
    return {**values, **(JWT if jwt else {}), **(PIPELINE if name in WITH_PIPELINE else {})}


def environment_of(name: str) -> str:
    return PARAMETER_SETS[name][0]


@functools.cache
def source_template() -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))
    return document


@functools.cache
def _translated(name: str) -> str:
    template = copy.deepcopy(source_template())
    for logical_id, uri in CODE_URIS.items():
        template["Resources"][logical_id]["Properties"]["CodeUri"] = uri
    unknown = {
        i for i, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    } - CODE_URIS.keys()
    assert not unknown, f"give {sorted(unknown)} a CodeUri in rehearsal.CODE_URIS"
    environment = environment_of(name)
    pseudo = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::StackName": stack_name(environment),
        "AWS::URLSuffix": "amazonaws.com",
    }
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    output = translator.translate(template, {**parameters(name), **pseudo}, get_managed_policy_map=dict)
    return json.dumps(output)


def translated(name: str) -> dict[str, Any]:
    """The translated template of a parameter set (a fresh copy: callers may change it)."""
    document: dict[str, Any] = json.loads(_translated(name))
    return document


def deployed(name: str) -> Stack:
    """The translated template resolved with the parameter set, in the rehearsal's account and region."""
    stack = Stack(translated(name), parameters(name), region=REGION, account_id=ACCOUNT)
    assert stack.resolve({"Ref": "AWS::StackName"}) == stack_name(environment_of(name))
    return stack


def adapt_for_moto(template: dict[str, Any]) -> dict[str, Any]:
    """What moto 5.2.5 needs to create the translated template, each change with its reason."""
    adapted = copy.deepcopy(template)
    aliases = {
        i: r["Properties"]["FunctionName"] for i, r in adapted["Resources"].items() if r["Type"] == "AWS::Lambda::Alias"
    }
    for resource in adapted["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Permission" and props.get("FunctionName", {}).get("Ref") in aliases:
            # moto skips the alias, and a permission naming it then fails create_stack: grant on the
            # function instead (the translated template's permission names the alias: asserted).
            props["FunctionName"] = aliases[props["FunctionName"]["Ref"]]
        if resource["Type"] == "AWS::KMS::Key" and "Tags" in props:
            # moto reads a key's Tags in the KMS API's shape (TagKey/TagValue), not CloudFormation's
            # (Key/Value), and fails with KeyError 'TagKey'. The translated template keeps CloudFormation's.
            props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
    return adapted


@dataclass(frozen=True)
class MotoStack:
    name: str
    status: str
    skipped: frozenset[str]
    resources: dict[str, dict[str, Any]]  # logical id -> list_stack_resources summary


def create_in_moto(name: str) -> MotoStack:
    """Create the parameter set's stack in moto (a `mock_aws` must be active), with its code in the bucket."""
    import io
    import zipfile

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    for uri in CODE_URIS.values():
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("api/rest_api.py", "def lambda_handler(event, context):\n    return {}\n")
        s3.put_object(Bucket=bucket, Key=key, Body=package.getvalue())

    environment = environment_of(name)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cloudformation.create_stack(
            StackName=stack_name(environment),
            TemplateBody=json.dumps(adapt_for_moto(translated(name))),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters(name).items()],
            Capabilities=["CAPABILITY_IAM"],
            Tags=[{"Key": k, "Value": v} for k, v in stack_tags(environment).items()],
        )
    skipped = {
        str(w.message).split("Tried to parse ", 1)[1].split(" ", 1)[0]
        for w in caught
        if "Tried to parse " in str(w.message)
    }
    (description,) = cloudformation.describe_stacks(StackName=stack_name(environment))["Stacks"]
    summaries = cloudformation.list_stack_resources(StackName=stack_name(environment))["StackResourceSummaries"]
    return MotoStack(
        name=name,
        status=description["StackStatus"],
        skipped=frozenset(skipped),
        resources={s["LogicalResourceId"]: s for s in summaries},
    )
