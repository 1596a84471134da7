"""Memory added by finalising a 50 MB upload, against a baseline measured in the same run.

The emulated S3 runs in its own process (``moto_server``), so the numbers are the finaliser's own. Each
measurement runs in a fresh child process: it imports the code, builds its clients, warms up on a small
object, then resets the kernel's peak-RSS counter (``/proc/self/clear_refs``) and reads ``VmHWM`` after
the work. Three workloads:

- ``finalise``: ``UploadService.finalise`` of a 50 MB upload (streamed SHA-256 in 1 MB chunks, then a
  server-side copy) — the code under test;
- ``read-whole``: the naive baseline, ``get_object()["Body"].read()`` then ``hashlib.sha256`` of it;
- ``direct-4mb``: ``JobService.create_job`` of a 4 MB file sent in the request body (it must be in memory).

Run with ``make bench``; writes nothing, prints a table and the ratio finalise / read-whole.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIG = 50 * 1024 * 1024
SMALL = 4 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _child(workload: str, endpoint: str, *args: str) -> dict[str, object]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", workload, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _run_child(workload: str, args: list[str]) -> None:
    import hashlib

    import boto3
    import requests

    from api.rest_api import Dependencies
    from local_api.cfn_template import Stack, load_template
    from local_api.provision import provision
    from services.job_service import BlueprintFile, RequestInfo
    from services.upload_service import UploadService
    from tests import samples
    from utils.settings import Settings

    stack = Stack(load_template(), {"Environment": "dev"})
    provision(stack, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    env = {**os.environ, **stack.function_environment()}
    deps = Dependencies.from_settings(Settings.from_environ(env))
    service = deps.job_service()
    uploads = UploadService(service)
    info = RequestInfo("req_bench", "req_bench")
    s3 = boto3.client("s3")
    bucket = env["BLUEPRINTS_BUCKET"]

    def upload(size: int) -> str:
        ticket = uploads.create_upload("plan.pdf", "pdf", size)
        content = samples.pdf() + b"\0" * (size - len(samples.pdf()))
        response = requests.post(
            ticket["url"], data=ticket["fields"], files={"file": ("plan.pdf", content)}, timeout=60
        )
        response.raise_for_status()
        return str(ticket["upload_id"])

    if workload == "prepare":  # in a process of its own, so its buffers never count against a workload
        print(json.dumps({"uploads": [upload(BIG), upload(BIG)]}))
        return
    big_id = args[0] if args else ""
    direct = samples.png(extra=b"z" * SMALL) if workload == "direct-4mb" else b""
    uploads.finalise(upload(1024 * 1024), info)  # warm up: every client and code path touched once

    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _kib("VmRSS")
    started = time.perf_counter()
    if workload == "finalise":
        uploads.finalise(big_id, info)
    elif workload == "read-whole":
        key = s3.list_objects_v2(Bucket=bucket, Prefix=f"uploads/{big_id}/")["Contents"][0]["Key"]
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        hashlib.sha256(data).hexdigest()
        del data
    else:
        service.create_job(BlueprintFile(direct, "png", "plan.png"), info)
    seconds = time.perf_counter() - started
    peak = _kib("VmHWM")
    print(json.dumps({"added_mib": (peak - before) / 1024, "seconds": seconds}))


def main() -> int:
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        ids = _child("prepare", endpoint)["uploads"]
        assert isinstance(ids, list)
        results = {
            "finalise": _child("finalise", endpoint, ids[0]),
            "read-whole": _child("read-whole", endpoint, ids[1]),
            "direct-4mb": _child("direct-4mb", endpoint),
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"{'workload':<34}{'peak RSS added':>16}{'time':>10}")
    labels = {
        "finalise": "finalise a 50 MB upload",
        "read-whole": "baseline: read 50 MB whole + hash",
        "direct-4mb": "direct create of a 4 MB file",
    }
    added = {name: float(str(figures["added_mib"])) for name, figures in results.items()}
    for name, figures in results.items():
        print(f"{labels[name]:<34}{added[name]:>13.2f} MiB{float(str(figures['seconds'])):>9.2f}s")
    ratio = added["finalise"] / max(added["read-whole"], 0.1)
    print(f"finalise / baseline memory ratio: {ratio:.2f}x (target: finalise adds at most 32 MiB)")
    return 0 if added["finalise"] <= 32 else 1


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        _run_child(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(main())
