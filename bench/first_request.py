"""Cold start end to end: a new container's import and first authenticated ``GET /api/v1/jobs/{id}``,
against a bare handler that does the least the same answer needs, in fresh interpreters.

The package is the one the release ships (``src/`` and the runtime dependencies of
``src/requirements.txt``, precompiled, run with ``python -S``: see the cold start proxy above). One
``moto_server`` process, started and provisioned from ``template.yaml`` once, outside the timing, plays
AWS over HTTP (``AWS_ENDPOINT_URL``), as the real services are across the network from a container.
Each sample is a new interpreter that reads the API Gateway event from a file and then, timed with
``perf_counter`` from before its first import to the response in hand:

- **ours**: ``import api.rest_api`` and ``lambda_handler(event, context)``: the secret (API keys), the
  runtime configuration (Parameter Store) and the job (DynamoDB), each from the emulator, each through
  our caches, retry layer, logs and metrics;
- **bare**: ``import boto3``, one session, the same three clients, the same three calls with the same
  parameters, the key's SHA-256 looked up in the secret, the item decoded and ``json.dumps``-ed.

The two alternate (the order swapped every other round), so a busy moment of the machine hits both;
judged is the median of the rounds' ratios (as in the cold start proxy: the machine's drift cancels within
a round), and the medians are shown too. The calls are recorded once per variant, in an untimed run, and compared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import child_env, free_port, median, ratio, report, run_child, use_src
from bench.report import Section, method_of, paired_rows

TARGET = 1.10
API_KEY = "ldk_bench_first_request_key"
CLIENT_ID = "cli_bench_first"
VARIANTS = ("ours", "bare")

#: The measured child (``python -S -c``): argv = [variant, event file, trace]. Prints one JSON line to stderr.
_CHILD = r"""
import json, sys, time
variant, event_path, trace = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
with open(event_path) as f:
    given = json.load(f)
event, names = given["event"], given["names"]
calls = []
if trace:  # untimed runs only: which AWS operations the variant makes
    import botocore.client
    original = botocore.client.BaseClient._make_api_call
    def recorded(self, operation, params):
        calls.append(self.meta.service_model.service_id + "." + operation)
        return original(self, operation, params)
    botocore.client.BaseClient._make_api_call = recorded

class Context:
    aws_request_id = "bench-first-request"
    function_name = "bench"
    def get_remaining_time_in_millis(self):
        return 29000

started, cpu_started = time.perf_counter(), time.process_time()
if variant == "ours":
    import api.rest_api
    imported = time.perf_counter()
    response = api.rest_api.lambda_handler(event, Context())
    status = response["statusCode"]
else:
    import boto3
    imported = time.perf_counter()
    import hashlib
    from boto3.dynamodb.types import TypeDeserializer
    session = boto3.session.Session()
    secrets, ssm, dynamodb = session.client("secretsmanager"), session.client("ssm"), session.client("dynamodb")
    stored = json.loads(secrets.get_secret_value(SecretId=names["secret"])["SecretString"])
    key = event["headers"]["x-api-key"]
    client = stored["keys"][hashlib.sha256(key.encode()).hexdigest()]["client_id"]
    config = {}
    pages = {"Path": names["config_path"], "Recursive": False, "WithDecryption": True}
    while True:
        page = ssm.get_parameters_by_path(**pages)
        config.update((p["Name"], p["Value"]) for p in page["Parameters"])
        if not page.get("NextToken"):
            break
        pages["NextToken"] = page["NextToken"]
    job_id = event["rawPath"].rsplit("/", 1)[-1]
    item = dynamodb.get_item(TableName=names["table"], Key={"job_id": {"S": job_id}}, ConsistentRead=True)["Item"]
    decode = TypeDeserializer().deserialize
    job = {k: decode(v) for k, v in item.items()}
    status = 200 if job.get("owner_id") == client else 404
    body = json.dumps({"data": job}, default=str)
done, cpu = time.perf_counter(), time.process_time() - cpu_started
sys.stderr.write("FIRST_REQUEST " + json.dumps(
    {"import": imported - started, "total": done - started, "cpu": cpu, "status": status, "calls": calls}) + "\n")
"""


def run(src: Path, samples: int) -> Section:
    from bench.cold_start import build_package, lambda_environment, precompile

    started = time.perf_counter()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-first-") as scratch:
            event_file = Path(scratch) / "event.json"
            _wait_for(port)
            run_child(
                "bench.first_request",
                ["--child", "--src", str(src), "--event-file", str(event_file)],
                child_env(src, {"AWS_ENDPOINT_URL": endpoint}),
            )
            package = precompile(build_package(src, Path(scratch) / "package"), Path(scratch) / "compiled")
            env = {**lambda_environment(), **child_env(src), "AWS_ENDPOINT_URL": endpoint}
            env.update({"PYTHONPATH": str(package), "PYTHONDONTWRITEBYTECODE": "1"})
            calls = {v: _sample(v, event_file, env, trace=True)["calls"] for v in VARIANTS}
            times: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
            for n in range(samples):
                for variant in VARIANTS if n % 2 == 0 else tuple(reversed(VARIANTS)):
                    times[variant].append(_sample(variant, event_file, env, trace=False))
    finally:
        server.terminate()
        server.wait(timeout=10)
    section = to_section(times, calls)
    section.seconds = time.perf_counter() - started
    return section


def _sample(variant: str, event_file: Path, env: dict[str, str], *, trace: bool) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-S", "-c", _CHILD, variant, str(event_file), "1" if trace else "0"],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in reversed(done.stderr.splitlines()):
        if line.startswith("FIRST_REQUEST "):
            result = dict(json.loads(line.split(" ", 1)[1]))
            if result["status"] != 200:
                raise RuntimeError(f"{variant}: first request answered {result['status']}")
            return result
    raise RuntimeError(f"{variant} reported nothing (exit {done.returncode}):\n{done.stderr[-4000:]}")


def to_section(times: dict[str, list[dict[str, Any]]], calls: dict[str, list[str]]) -> Section:
    imported = {v: median([t["import"] for t in times[v]]) * 1000 for v in VARIANTS}
    cpu = {v: median([t["cpu"] for t in times[v]]) * 1000 for v in VARIANTS}
    after = {v: median([t["total"] - t["import"] for t in times[v]]) * 1000 for v in VARIANTS}
    rows = paired_rows(
        "import + first GET job, ours",
        [t["total"] for t in times["ours"]],
        "bare: import boto3 + 3 clients + the same calls",
        [t["total"] for t in times["bare"]],
        TARGET,
    )
    same = calls["ours"] == calls["bare"]
    notes = [
        f"- Split at the import (medians): ours {imported['ours']:.0f} ms import + {after['ours']:.0f} ms first "
        f"request; bare {imported['bare']:.0f} ms `import boto3` + {after['bare']:.0f} ms for the clients and "
        f"calls. Spread of the totals: ours {min(t['total'] for t in times['ours']) * 1000:.0f}.."
        f"{max(t['total'] for t in times['ours']) * 1000:.0f} ms, bare "
        f"{min(t['total'] for t in times['bare']) * 1000:.0f}..{max(t['total'] for t in times['bare']) * 1000:.0f} ms.",
        f"- CPU time of the same samples (user + system, medians; steadier than wall time on a shared "
        f"machine): ours {cpu['ours']:.0f} ms, bare {cpu['bare']:.0f} ms ({ratio(cpu['ours'], cpu['bare']):.2f}x).",
        f"- AWS calls of the first request (recorded in an untimed run): {', '.join(calls['ours'])}"
        + ("" if same else f" — DIFFER from bare's: {', '.join(calls['bare'])}"),
    ]
    return Section(
        title="Cold start end to end: import + first GET job vs bare boto3",
        method=method_of(__doc__),
        rows=rows,
        notes=notes,
    )


def _wait_for(port: int) -> None:
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


# ------------------------------------------------------------------------------------------- the child
def _prepare(src: Path, event_file: Path) -> None:
    """Provision the emulator, make the client's key and one job, write the GET's event (untimed)."""
    use_src(src)
    from api.rest_api import lambda_handler
    from local_api.cfn_template import Stack, load_template
    from local_api.provision import provision, provision_api_keys
    from local_api.server import LambdaContext, build_event
    from tests import samples

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    stack = Stack(load_template(), {"Environment": "dev"})
    provision(stack, endpoint_url=endpoint)
    provision_api_keys(stack, {API_KEY: (CLIENT_ID, "bench")}, endpoint_url=endpoint)
    env = stack.function_environment()
    os.environ.update(env)
    headers = [("Host", "api.example.test"), ("X-API-Key", API_KEY), ("User-Agent", "bench")]
    import base64

    body = {"blueprint": {"file": base64.b64encode(samples.png()).decode(), "format": "png", "filename": "p.png"}}
    context = LambdaContext("bench-first", stack.function_timeout("ApiFunction"))
    posted = [*headers, ("Content-Type", "application/json")]
    created = lambda_handler(build_event("POST", "/api/v1/jobs", posted, json.dumps(body).encode()), context)
    if created["statusCode"] != 201:
        raise RuntimeError(f"create: {created['statusCode']} {created['body']}")
    job_id = json.loads(created["body"])["data"]["job_id"]
    names = {"secret": env["API_KEYS_SECRET_NAME"], "config_path": env["CONFIG_PATH"], "table": env["JOBS_TABLE"]}
    event = build_event("GET", f"/api/v1/jobs/{job_id}", headers, b"")
    event_file.write_text(json.dumps({"event": event, "names": names}), encoding="utf-8")
    report({"job_id": job_id})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--event-file", type=Path, required=True)
    args = parser.parse_args()
    _prepare(args.src, args.event_file)


if __name__ == "__main__":
    main()
