"""Every AWS call the shipped code makes is allowed by the function's role, and by its boundary.

Each scenario drives the code the way production does (``lambda_handler`` with API Gateway's events, and
the job service through the operator CLI, as the pipeline would) against moto, while ``aws_calls``
records every AWS call, presigned URL and presigned POST. Each call becomes the IAM requests AWS
evaluates for it (action, resource ARN with the real names, context), and a real policy engine
(``iam_simulator``) evaluates them against the translated template's role policy and against
docs/deploy-role.yaml's FunctionRoleBoundary (what RequireFunctionRoleBoundary would enforce).
The role also grants nothing the scenarios do not use (unless ``GRANTED_FOR_PATHS_NOT_RUN`` says why)
and nothing on "*" but X-Ray's two write actions.

To add a scenario: a function in ``SCENARIOS`` (it runs inside the ``aws`` fixture, with the dev stack's
tables, buckets, parameters and secret). To add a function: its role and scenarios, its CodeUri in
rehearsal.CODE_URIS (the workers' functions, the sweep's included: test_worker_permissions.py, on this
module's helpers).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local_api.cfn_template import Stack, load_template
from ops.cli import main as ops_main
from tests import samples
from tests.conftest import OTHER_API_KEY, create_body, invoke
from tests.infrastructure import rehearsal
from tests.infrastructure.aws_calls import Call, iam_requests, lambda_runtime_requests, recording
from tests.infrastructure.iam_simulator import Policies, Request, Simulator, refused
from utils import clock

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = rehearsal.ACCOUNT, rehearsal.REGION
ROLE = "ApiFunctionRole"
#: What the role grants that no scenario reaches, and the code path that needs it (none: the erasure
#: scenarios reach the claim's and the idempotency record's deletes and the claim's condition check).
GRANTED_FOR_PATHS_NOT_RUN: dict[str, str] = {}


def created(reply: Any, status: int = 201) -> Any:
    assert reply.status == status, reply.body
    return reply.data


def new_job(content: bytes | None = None) -> str:
    body = create_body(content or samples.png(extra=b"scenario " + base64.b64encode(Path(__file__).read_bytes()[:8])))
    return str(created(invoke("POST", "/api/v1/jobs", json_body=body))["job_id"])


def ops(*argv: str) -> None:
    assert ops_main(["--env", "dev", *argv]) == 0, argv


# ------------------------------------------------------------------------------------------ scenarios
def health() -> None:
    assert invoke("GET", "/health", api_key=None).status == 200
    assert invoke("GET", "/api/v1/openapi.json", api_key=None).status == 200


def create_from_json_and_data_url() -> None:
    new_job(samples.png(extra=b"json"))
    data_url = "data:application/pdf;base64," + base64.b64encode(samples.pdf(extra=b"data url")).decode()
    created(invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"file": data_url, "filename": "plan.pdf"}}))


def create_from_multipart_and_raw() -> None:
    boundary = "b0undary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="site.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + samples.jpg(extra=b"form")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    created(invoke("POST", "/api/v1/jobs", body=form, headers=headers))
    raw = invoke(
        "POST", "/api/v1/jobs?filename=plan.png", body=samples.png(extra=b"raw"), headers={"Content-Type": "image/png"}
    )
    created(raw)


def create_with_an_idempotency_key_twice() -> None:
    body, headers = create_body(samples.png(extra=b"idempotent")), {"Idempotency-Key": "scenario-1"}
    first = invoke("POST", "/api/v1/jobs", json_body=body, headers=headers)
    again = invoke("POST", "/api/v1/jobs", json_body=body, headers=headers)
    assert (first.status, again.status, again.headers.get("Idempotent-Replayed")) == (201, 201, "true")


def upload_then_finalise() -> None:
    content = samples.png(extra=b"uploaded")
    upload = created(
        invoke("POST", "/api/v1/uploads", json_body={"format": "png", "filename": "plan.png", "size": len(content)})
    )
    response = requests.post(upload["url"], data=upload["fields"], files={"file": ("blob", content)}, timeout=10)
    assert response.status_code in (200, 201, 204), response.text
    created(invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"upload_id": upload["upload_id"]}}))


def rate_limited_then_replayed() -> None:
    """The limiter's calls: a spend from idle, spends in the burst, one refused (the default burst is 20);
    a replay reads the budget."""
    upload = {"format": "png", "filename": "plan.png", "size": 10}
    # Time stands still for the burst: on a loaded machine 21 requests can take longer than one refill.
    frozen, real = clock.wall_source(), clock.wall_source
    clock.wall_source = lambda: frozen
    try:
        statuses = [invoke("POST", "/api/v1/uploads", json_body=upload).status for _ in range(21)]
    finally:
        clock.wall_source = real
    assert statuses[0] == 201
    assert statuses[-1] == 429
    body, headers = create_body(samples.png(extra=b"limited")), {"Idempotency-Key": "limited-1"}
    assert invoke("POST", "/api/v1/jobs", json_body=body, headers=headers).status == 201
    replay = invoke("POST", "/api/v1/jobs", json_body=body, headers=headers)
    assert "RateLimit" in replay.headers, "the budget was read, not spent"


def read_list_and_cancel() -> None:
    job_id = new_job(samples.png(extra=b"read and cancel"))
    assert invoke("GET", f"/api/v1/jobs/{job_id}").status == 200
    assert invoke("GET", f"/api/v1/jobs/{job_id}", api_key=OTHER_API_KEY).status == 404
    assert invoke("GET", "/api/v1/jobs?limit=1").status == 200
    assert invoke("GET", "/api/v1/jobs?status=pending&limit=100").status == 200
    assert invoke("DELETE", f"/api/v1/jobs/{job_id}").status == 200
    assert invoke("DELETE", f"/api/v1/jobs/{job_id}").status == 200


def complete_read_and_give_feedback(tmp_path: Path) -> None:
    job_id = new_job(samples.png(extra=b"completed"))
    ops("jobs", "complete", job_id, "--start", "--result", str(ROOT / "examples" / "result.json"))
    job = created(invoke("GET", f"/api/v1/jobs/{job_id}"), 200)
    assert requests.get(job["result_url"], timeout=10).status_code == 200
    created(invoke("POST", f"/api/v1/jobs/{job_id}/feedback", json_body={"rating": 4, "comment": "close"}))
    # The same bytes again: the preview comes from the cache.
    assert invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"completed"))).status == 201


def fail_a_job() -> None:
    job_id = new_job(samples.png(extra=b"failed"))
    ops("jobs", "fail", job_id, "--start", "--code", "MODEL_ERROR", "--message", "no rooms found")
    ops("jobs", "show", job_id)


def erase_jobs_in_every_state(tmp_path: Path) -> None:
    """A completed job with feedback made under an Idempotency-Key, a processing one, one from an upload."""
    key = {"Idempotency-Key": "scenario-erase"}
    completed = created(invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"erase")), headers=key))
    ops("jobs", "complete", completed["job_id"], "--start", "--result", str(ROOT / "examples" / "result.json"))
    created(invoke("POST", f"/api/v1/jobs/{completed['job_id']}/feedback", json_body={"rating": 2}))
    processing = new_job(samples.png(extra=b"erase processing"))
    ops("jobs", "start", processing)
    content = samples.png(extra=b"erase upload")
    upload = created(
        invoke("POST", "/api/v1/uploads", json_body={"format": "png", "filename": "plan.png", "size": len(content)})
    )
    posted = requests.post(upload["url"], data=upload["fields"], files={"file": ("blob", content)}, timeout=10)
    assert posted.status_code in (200, 201, 204), posted.text
    from_upload = created(invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"upload_id": upload["upload_id"]}}))
    for job_id in (completed["job_id"], processing, from_upload["job_id"]):
        assert created(invoke("POST", f"/api/v1/jobs/{job_id}/erase"), 200)["job_id"] == job_id
    assert invoke("POST", f"/api/v1/jobs/{processing}/erase").status == 404


SCENARIOS: dict[str, Callable[..., None]] = {
    "health": health,
    "create from JSON and a data URL": create_from_json_and_data_url,
    "create from multipart and a raw body": create_from_multipart_and_raw,
    "create with an Idempotency-Key, twice": create_with_an_idempotency_key_twice,
    "upload, then finalise": upload_then_finalise,
    "rate limited, then a replay": rate_limited_then_replayed,
    "read, list and cancel": read_list_and_cancel,
    "complete, read, give feedback": complete_read_and_give_feedback,
    "fail a job": fail_a_job,
    "erase jobs in every state": erase_jobs_in_every_state,
}


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator() as sim:
        yield sim


@pytest.fixture(scope="module")
def translated_dev() -> Stack:
    return rehearsal.deployed("dev")


@pytest.fixture
def restore_environ() -> Iterator[None]:
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def role_policies(stack: Stack, role: str = ROLE) -> list[tuple[str, dict[str, Any]]]:
    return [(p["PolicyName"], p["PolicyDocument"]) for p in stack.properties(role)["Policies"]]


def boundary_policy(environment: str = "dev") -> list[tuple[str, dict[str, Any]]]:
    roles = Stack(
        load_template(ROOT / "docs" / "deploy-role.yaml"),
        {"Environment": environment, "GitHubOwner": "acme", "GitHubRepository": "location-detection"},
        region=REGION,
        account_id=ACCOUNT,
    )
    return [("FunctionRoleBoundary", roles.properties("FunctionRoleBoundary")["PolicyDocument"])]


def requests_of(calls: list[Call], stack: Stack, why: str) -> list[Request]:
    return [request for call in calls for request in iam_requests(call, ACCOUNT, stack, why)]


def evaluate(
    simulator: Simulator, stack: Stack, requests: list[Request], boundary: bool = False, role: str = ROLE
) -> list[str]:
    principal = stack.arn(role)
    identity = role_policies(stack, role)
    bounded = boundary_policy() if boundary else ()
    key_ids = set(stack.of_type("AWS::KMS::Key"))
    keys = {stack.arn(i): stack.properties(i)["KeyPolicy"] for i in key_ids}
    problems = refused(
        simulator.evaluate(
            principal, ACCOUNT, Policies(identity, bounded), [r for r in requests if r.resource not in keys]
        )
    )
    for key, policy in keys.items():
        on_key = [r for r in requests if r.resource == key]
        problems += refused(simulator.evaluate(principal, ACCOUNT, Policies(identity, bounded, policy), on_key))
    return problems


def run_scenario(name: str, stack: Stack, tmp_path: Path) -> list[Request]:
    """Run one scenario, recording its calls: the IAM requests they make."""
    run = SCENARIOS[name]
    with recording() as recorder:
        run(tmp_path) if run.__code__.co_argcount else run()
    return requests_of(recorder.calls, stack, name)


# --------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_call_of_the_scenario_is_allowed_by_the_role_and_its_boundary(
    scenario: str,
    aws: Stack,
    simulator: Simulator,
    translated_dev: Stack,
    tmp_path: Path,
    restore_environ: None,
) -> None:
    requests_made = run_scenario(scenario, translated_dev, tmp_path)

    assert requests_made, "a scenario that makes no AWS call proves nothing"
    assert evaluate(simulator, translated_dev, requests_made) == []
    assert evaluate(simulator, translated_dev, requests_made, boundary=True) == []


def test_what_lambda_does_with_the_role_is_allowed(simulator: Simulator, translated_dev: Stack) -> None:
    runtime = lambda_runtime_requests(translated_dev, "ApiFunction", ACCOUNT, REGION)
    assert {r.action for r in runtime} == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert evaluate(simulator, translated_dev, runtime) == []
    assert evaluate(simulator, translated_dev, runtime, boundary=True) == []


@pytest.mark.parametrize("role", ["ApiFunctionRole", "SweepFunctionRole"])
def test_an_erasing_role_may_not_list_a_whole_bucket_nor_touch_what_is_not_a_jobs(
    simulator: Simulator, translated_dev: Stack, role: str
) -> None:
    """The erasure grants, scoped: versions listed one job's prefix at a time, deleted under job prefixes."""
    blueprints = translated_dev.properties("BlueprintsBucket")["BucketName"]
    forbidden = [
        Request("s3:ListBucketVersions", f"arn:aws:s3:::{blueprints}", {}),
        Request("s3:ListBucketVersions", f"arn:aws:s3:::{blueprints}", {"s3:prefix": "blueprints/"}),
        Request("s3:DeleteObjectVersion", f"arn:aws:s3:::{blueprints}/elsewhere/x"),
        Request("s3:PutBucketVersioning", f"arn:aws:s3:::{blueprints}"),
        Request("s3:PutLifecycleConfiguration", f"arn:aws:s3:::{blueprints}"),
    ]
    principal, identity = translated_dev.arn(role), role_policies(translated_dev, role)
    decided = simulator.evaluate(principal, ACCOUNT, Policies(identity), forbidden)
    assert [d.request.describe() for d in decided if d.allowed] == []


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_codedeploy_may_shift_the_alias_and_read_the_canary_alarms_within_the_boundary(
    simulator: Simulator, name: str
) -> None:
    """What CodeDeploy does with DeploymentRole during a deploy (AWS's AWSCodeDeployRoleForLambdaLimited
    lists these for a Lambda deployment), and that the role's other neighbours are out of reach."""
    stack = rehearsal.deployed(name)
    alias = stack.ref("ApiFunctionAliaslive")
    alarms = [
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{stack.properties(a)['AlarmName']}"
        for a in ("CanaryErrorsAlarm", "CanaryApi5xxAlarm")
    ]
    needed = [
        Request("lambda:GetAlias", alias, why="read where live points"),
        Request("lambda:UpdateAlias", alias, why="shift live's traffic"),
        Request("lambda:GetProvisionedConcurrencyConfig", alias, why="check provisioned concurrency"),
        *(Request("cloudwatch:DescribeAlarms", a, why="watch the canary alarm") for a in alarms),
    ]
    other = "prod" if rehearsal.environment_of(name) == "dev" else "dev"
    forbidden = [
        Request("lambda:UpdateAlias", alias.replace(f"-{rehearsal.environment_of(name)}-", f"-{other}-")),
        Request("lambda:InvokeFunction", alias),
        Request("lambda:UpdateFunctionCode", stack.arn("ApiFunction")),
    ]
    principal, identity = stack.arn("DeploymentRole"), role_policies(stack, "DeploymentRole")
    boundary = boundary_policy(rehearsal.environment_of(name))
    assert refused(simulator.evaluate(principal, ACCOUNT, Policies(identity, boundary), needed)) == []
    decided = simulator.evaluate(principal, ACCOUNT, Policies(identity), forbidden)
    assert [d.request.describe() for d in decided if d.allowed] == []


def test_the_role_grants_nothing_the_code_does_not_use(
    aws: Stack, translated_dev: Stack, tmp_path: Path, restore_environ: None
) -> None:
    """Least privilege, both ways: every granted action is used by some scenario (or Lambda itself)."""
    used = {r.action for name in SCENARIOS for r in run_scenario(name, translated_dev, tmp_path)}
    used |= {r.action for r in lambda_runtime_requests(translated_dev, "ApiFunction", ACCOUNT, REGION)}
    granted = {
        action
        for _, policy in role_policies(translated_dev)
        for statement in policy["Statement"]
        for action in rehearsal.as_list(statement["Action"])
    }
    assert granted - used - set(GRANTED_FOR_PATHS_NOT_RUN) == set()
    assert set(GRANTED_FOR_PATHS_NOT_RUN) <= granted


def test_nothing_is_granted_on_star_but_x_rays_two_write_actions(translated_dev: Stack) -> None:
    on_star = {
        action
        for _, policy in role_policies(translated_dev)
        for statement in policy["Statement"]
        if "*" in rehearsal.as_list(statement["Resource"])
        for action in rehearsal.as_list(statement["Action"])
    }
    assert on_star == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_the_recorded_calls_are_mapped_as_iam_sees_them(translated_dev: Stack) -> None:
    """The mapping itself, on calls whose IAM form is documented (Service Authorization Reference)."""
    secret = translated_dev.properties("ApiKeysSecret")["Name"]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table"
    write = {"TransactItems": [{"Put": {"TableName": "a"}}, {"ConditionCheck": {"TableName": "b"}}]}
    copy = {"Bucket": "b", "Key": "to", "CopySource": {"Bucket": "c", "Key": "from"}}
    cases: list[tuple[Call, list[tuple[str, str]]]] = [
        (
            Call("dynamodb", "Query", {"TableName": "t", "IndexName": "owner-created-index"}, REGION),
            [("dynamodb:Query", f"{table}/t/index/owner-created-index")],
        ),
        (
            Call("dynamodb", "TransactWriteItems", write, REGION),
            [("dynamodb:PutItem", f"{table}/a"), ("dynamodb:ConditionCheckItem", f"{table}/b")],
        ),
        (
            Call("s3", "HeadObject", {"Bucket": "b", "Key": "k/x"}, REGION),
            [("s3:GetObject", "arn:aws:s3:::b/k/x"), ("s3:ListBucket", "arn:aws:s3:::b")],
        ),
        (
            Call("s3", "CopyObject", copy, REGION),
            [("s3:GetObject", "arn:aws:s3:::c/from"), ("s3:PutObject", "arn:aws:s3:::b/to")],
        ),
        (
            Call("s3", "PresignedPost", {"Bucket": "b", "Key": "uploads/u/${filename}"}, REGION, True),
            [("s3:PutObject", "arn:aws:s3:::b/uploads/u/${filename}")],
        ),
        (
            Call("s3", "DeleteObject", {"Bucket": "b", "Key": "k", "VersionId": "v"}, REGION),
            [("s3:DeleteObjectVersion", "arn:aws:s3:::b/k")],
        ),
        (
            Call(
                "s3",
                "DeleteObjects",
                {"Bucket": "b", "Delete": {"Objects": [{"Key": "j/a", "VersionId": "v"}, {"Key": "j/b"}]}},
                REGION,
            ),
            [("s3:DeleteObjectVersion", "arn:aws:s3:::b/j/a"), ("s3:DeleteObject", "arn:aws:s3:::b/j/b")],
        ),
        (
            Call("s3", "ListObjectVersions", {"Bucket": "b", "Prefix": "j/"}, REGION),
            [("s3:ListBucketVersions", "arn:aws:s3:::b")],
        ),
        (
            Call("s3", "PutObjectTagging", {"Bucket": "b", "Key": "k"}, REGION),
            [("s3:PutObjectTagging", "arn:aws:s3:::b/k")],
        ),
        (
            Call("ssm", "GetParametersByPath", {"Path": "/location-detection/dev/"}, REGION),
            [("ssm:GetParametersByPath", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/location-detection/dev/")],
        ),
        (
            Call("secretsmanager", "GetSecretValue", {"SecretId": secret}, REGION),
            [
                ("secretsmanager:GetSecretValue", translated_dev.ref("ApiKeysSecret")),
                ("kms:Decrypt", translated_dev.arn("ApiKeysSecretKey")),
            ],
        ),
        (Call("sts", "GetCallerIdentity", {}, REGION), []),
    ]
    for call, expected in cases:
        assert [(r.action, r.resource) for r in iam_requests(call, ACCOUNT, translated_dev, "")] == expected, call
    (decrypt,) = [
        r
        for r in iam_requests(
            Call("secretsmanager", "GetSecretValue", {"SecretId": secret}, REGION), ACCOUNT, translated_dev, ""
        )
        if r.action == "kms:Decrypt"
    ]
    assert decrypt.context["kms:ViaService"] == f"secretsmanager.{REGION}.amazonaws.com"
    with pytest.raises(AssertionError, match="no IAM mapping"):
        iam_requests(Call("sqs", "ReceiveMessage", {}, REGION), ACCOUNT, translated_dev, "")


def test_the_recorder_sees_clients_calls_and_presigned_urls() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws(), recording() as recorder:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="recorded-bucket")
        s3.put_object(Bucket="recorded-bucket", Key="a", Body=b"x")
        s3.generate_presigned_url("get_object", Params={"Bucket": "recorded-bucket", "Key": "a"})
        s3.generate_presigned_post("recorded-bucket", "uploads/u/plan.png")
    seen = [(c.operation, c.params.get("Key"), c.presigned) for c in recorder.calls]
    assert seen == [
        ("CreateBucket", None, False),
        ("PutObject", "a", False),
        ("GetObject", "a", True),
        ("PresignedPost", "uploads/u/plan.png", True),
    ]
    assert json.dumps([c.params.get("Bucket") for c in recorder.calls]) == json.dumps(["recorded-bucket"] * 4)
