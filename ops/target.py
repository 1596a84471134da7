"""Which AWS the operator CLI talks to, expressed as the environment variables the Lambda's code reads.

- ``--local``: the emulated AWS of a running ``make run``, found through the state file it writes
  (``.local-api.json`` at the repository root, or ``LOCAL_API_STATE``), with fake credentials,
  ``us-east-1`` and the dev names from ``template.yaml``.
- ``--env dev|prod``: the real AWS credential chain (profile, SSO, environment, instance role) and the
  names ``template.yaml`` gives that environment in the credentials' account and region (bucket names
  carry both: STS ``GetCallerIdentity``, which needs no permission, says which account); a name variable
  already set in the environment (``JOBS_TABLE``, ...) wins, unless ``ENVIRONMENT`` says it belongs to
  another environment.

Everything here must run before anything creates a boto3 client: boto3 reads the endpoint, credentials
and region from ``os.environ`` when a client is built.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3

from local_api.cfn_template import LOCAL_ACCOUNT_ID, Stack, load_template

ROOT = Path(__file__).resolve().parent.parent
#: Where ``make run`` says where it is (``local_api.server.STATE_FILE``; ``LOCAL_API_STATE`` moves it).
DEFAULT_STATE_FILE = ROOT / ".local-api.json"
LOCAL_REGION = "us-east-1"
LOCAL_ENVIRONMENT = "dev"
ENVIRONMENTS = ("dev", "prod")
NO_LOCAL_API = "no local API running: start it with make run"

_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": LOCAL_REGION,
    "AWS_DEFAULT_REGION": LOCAL_REGION,
}
#: Real credentials and endpoint overrides that must not leak into (or redirect) calls meant for emulated AWS.
_NOT_FOR_LOCAL = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


class TargetError(Exception):
    """The requested target cannot be used (no local API, unknown environment); the message says why."""


@dataclass(frozen=True)
class Target:
    """What the CLI is about to act on, for one line on stderr."""

    environment: str
    description: str


def state_file(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("LOCAL_API_STATE") or DEFAULT_STATE_FILE)


def read_local_state(path: Path) -> tuple[str, str]:
    """``(api_url, aws_endpoint_url)`` of the running local API, or ``TargetError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(f"{NO_LOCAL_API} (no {path})") from None
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror}") from None
    try:
        state = json.loads(text)
        api_url, endpoint = state["api_url"], state["aws_endpoint_url"]
    except (ValueError, TypeError, KeyError):
        raise TargetError(f"{path} is not a local API state file; restart make run") from None
    if not isinstance(api_url, str) or not isinstance(endpoint, str) or not endpoint.startswith("http"):
        raise TargetError(f"{path} is not a local API state file; restart make run")
    return api_url, endpoint


def check_reachable(url: str, state_path: Path, timeout: float = 2.0) -> None:
    """Fail fast when the state file is stale (``make run`` was killed), instead of retrying for seconds."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            pass
    except OSError:
        raise TargetError(f"{NO_LOCAL_API} (nothing answers at {url}; {state_path} is stale)") from None


def template_environment(
    environment: str, account_id: str = LOCAL_ACCOUNT_ID, region: str = LOCAL_REGION
) -> dict[str, str]:
    """The functions' environment variables (the API's and the workers': ``Stack.process_environment``) as
    ``template.yaml`` resolves them for ``environment``."""
    stack = Stack(load_template(), {"Environment": environment}, region=region, account_id=account_id)
    return stack.process_environment()


def caller_account_and_region() -> tuple[str, str]:
    """The account and region of the AWS credentials in use (``GetCallerIdentity`` needs no permission)."""
    session = boto3.session.Session()
    region = session.region_name or LOCAL_REGION
    identity = session.client("sts", region_name=region).get_caller_identity()
    return str(identity["Account"]), region


def select_local(environ: MutableMapping[str, str]) -> Target:
    path = state_file(environ)
    api_url, endpoint = read_local_state(path)
    check_reachable(endpoint, path)
    for name in [*_NOT_FOR_LOCAL, *(k for k in environ if k.startswith("AWS_ENDPOINT_URL_"))]:
        environ.pop(name, None)
    environ.update(_FAKE_CREDENTIALS)
    environ["AWS_ENDPOINT_URL"] = endpoint
    # The local API provisions the dev stack's names; set them outright so a shell set up for prod
    # cannot point the CLI at tables the emulator does not have.
    environ.update(template_environment(LOCAL_ENVIRONMENT))
    return Target(LOCAL_ENVIRONMENT, f"local API {api_url} (emulated AWS at {endpoint})")


def select_environment(
    environment: str | None,
    environ: MutableMapping[str, str],
    account_and_region: Callable[[], tuple[str, str]] = caller_account_and_region,
) -> Target:
    env = environment or environ.get("ENVIRONMENT") or "dev"
    if env not in ENVIRONMENTS:
        raise TargetError(f"ENVIRONMENT={env!r} is not one of {', '.join(ENVIRONMENTS)}; pass --env dev or --env prod")
    # Names already in the environment are kept (the tests' emulated account, a personal stack), but only
    # when they are for this environment: a shell set up for dev must never send `--env prod` to dev's tables.
    keep_preset = environ.get("ENVIRONMENT") in (None, "", env)
    names = template_environment(env, *account_and_region())
    for name, value in names.items():
        if not (keep_preset and environ.get(name)):
            environ[name] = value
    environ["ENVIRONMENT"] = env
    return Target(env, f"AWS environment {env} (jobs table {environ['JOBS_TABLE']})")
