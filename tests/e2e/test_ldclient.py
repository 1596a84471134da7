"""``ldclient`` (clients/python) against the local API over HTTP, run as a person or a script runs it.

Each command is a real process (``python -m ldclient`` from the checkout, the same code as the installed
``ldclient``) with ``LD_API_URL`` / ``LD_API_KEY`` or a config file. Retries are proven through a small
loopback proxy that loses the first create's answer after the API made the job, then answers 429 and 503
with ``Retry-After``: the create still makes exactly one job.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ldclient import ApiError, Client, Created, RetryPolicy
from tests import samples
from tests.e2e.conftest import API_KEY, OTHER_API_KEY, ROOT, LocalServer

pytestmark = pytest.mark.e2e

SOURCE = ROOT / "clients" / "python" / "src"
RESULT_FILE = ROOT / "examples" / "result.json"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error(self) -> dict[str, Any]:
        return dict(json.loads(self.stderr.strip().splitlines()[-1])["error"])


def _env(url: str | None, key: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LD_", "AWS_ENDPOINT_URL"))}
    env["PYTHONPATH"] = str(SOURCE)
    env["XDG_CONFIG_HOME"] = str(Path(extra.pop("home", "/nonexistent")))  # no personal config file
    if url:
        env["LD_API_URL"] = url
    if key:
        env["LD_API_KEY"] = key
    env.update(extra)
    return env


def ldclient(*args: str, url: str | None, key: str | None = API_KEY, **extra: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "ldclient", *args],
        env=_env(url, key, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _ops(server: LocalServer, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["LOCAL_API_STATE"] = server.state_file
    command = [sys.executable, "-m", "ops", "--local", "jobs", *args]
    subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60, check=True)


def test_submit_direct_and_presigned_then_get_list_and_cancel(local_server: LocalServer, tmp_path: Path) -> None:
    small = _file(tmp_path, "ground floor.png", samples.png(extra=os.urandom(8)))
    large = _file(tmp_path, "site.pdf", samples.pdf(extra=os.urandom(5 * 1024 * 1024)))  # over the 4 MB direct limit

    submitted = ldclient("--json", "submit", str(small), str(large), url=local_server.url)

    assert submitted.code == 0, submitted.stderr
    by_file = {Path(r["file"]).name: r for r in submitted.json}
    assert by_file["ground floor.png"]["upload"] == "direct"
    assert by_file["site.pdf"]["upload"] == "presigned"
    for path in (small, large):
        job = by_file[path.name]["job"]
        assert job["status"] == "pending"
        assert job["blueprint_filename"] == path.name
        assert job["blueprint_size"] == path.stat().st_size
        assert job["blueprint_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()  # the bytes arrived intact
    job_id = by_file["site.pdf"]["job"]["job_id"]

    shown = ldclient("--json", "get", job_id, url=local_server.url)
    assert shown.code == 0
    assert shown.json["job_id"] == job_id
    listed = ldclient("--json", "list", "--status", "pending", "--all", url=local_server.url)
    assert {r["job"]["job_id"] for r in submitted.json} <= {j["job_id"] for j in listed.json}
    assert all(j["status"] == "pending" for j in listed.json)
    assert len(ldclient("--json", "list", "--limit", "1", url=local_server.url).json) == 1

    for _ in range(2):  # idempotent
        cancelled = ldclient("--json", "cancel", job_id, url=local_server.url)
        assert cancelled.code == 0, cancelled.stderr
        assert cancelled.json["status"] == "cancelled"
    human = ldclient("list", "--status", "cancelled", url=local_server.url)
    assert human.code == 0
    assert job_id in human.stdout


def test_submit_wait_follows_jobs_to_their_final_status(local_server: LocalServer, tmp_path: Path) -> None:
    done_file = _file(tmp_path, "done.png", samples.png(extra=os.urandom(8)))
    dropped_file = _file(tmp_path, "dropped.png", samples.png(extra=os.urandom(8)))
    hashes = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in (done_file, dropped_file)}
    command = [sys.executable, "-m", "ldclient", "--json", "submit", str(done_file), str(dropped_file), "--wait"]
    waiting = subprocess.Popen(command, env=_env(local_server.url, API_KEY), stdout=subprocess.PIPE, text=True)
    try:
        with Client(local_server.url, API_KEY) as api:
            ids = _wait_for_jobs(api, hashes)
            _ops(local_server, "complete", ids["done.png"], "--start", "--result", str(RESULT_FILE))
            api.cancel_job(ids["dropped.png"])
        stdout, _ = waiting.communicate(timeout=60)
    finally:
        waiting.kill()

    assert waiting.returncode == 4  # one job ended cancelled
    final = {Path(r["file"]).name: r["job"] for r in json.loads(stdout)}
    assert final["done.png"]["status"] == "completed"
    assert final["done.png"]["result_url"].startswith("http://127.0.0.1:")
    assert final["dropped.png"]["status"] == "cancelled"

    job_id = final["done.png"]["job_id"]
    rated = ldclient(
        "--json", "feedback", job_id, "--rating", "5", "--corrections", '{"merge": ["room_1"]}', url=local_server.url
    )
    assert rated.code == 0, rated.stderr
    assert rated.json["rating"] == 5
    assert rated.json["corrections"] == {"merge": ["room_1"]}
    assert rated.json["feedback_count"] == 1
    refused = ldclient("--json", "cancel", job_id, url=local_server.url)
    assert refused.code == 1
    assert refused.error["code"] == "JOB_ALREADY_COMPLETED"
    assert refused.error["request_id"].startswith("req_")
    assert ldclient("feedback", job_id, "--rating", "9", url=local_server.url).code == 2  # usage


def test_submit_wait_shows_each_step_of_the_pipeline_as_it_happens(local_server: LocalServer, tmp_path: Path) -> None:
    """A person's ``submit --wait``: a line on stderr per change of status, progress or stage, each step
    driven by the operator CLI once ldclient showed the one before (so none is polled past)."""
    plan = _file(tmp_path, "steps.png", samples.png(extra=os.urandom(8)))
    stage = "room_segmentation_and_labelling"  # 31 characters: the line is wider than an 80-column terminal
    command = [sys.executable, "-m", "ldclient", "submit", str(plan), "--wait", "--no-progress"]
    env = _env(local_server.url, API_KEY, PYTHONUNBUFFERED="1", COLUMNS="80")
    waiting = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert waiting.stderr is not None
        steps = [
            ("start",),
            ("progress", "40", "--stage", "preprocessing"),
            ("progress", "40", "--stage", stage),
            ("progress", "85"),
            ("complete", "--result", str(RESULT_FILE)),
        ]
        for step in steps:
            lines.append(waiting.stderr.readline().rstrip("\n"))
            job_id = lines[0].split(":", 1)[0]
            _ops(local_server, step[0], job_id, *step[1:])
        stdout, rest = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    lines += rest.splitlines()

    assert waiting.returncode == 0, rest
    assert job_id.startswith("job_")
    assert lines == [
        f"{job_id}: pending",
        f"{job_id}: processing",
        f"{job_id}: processing (40 preprocessing)",
        f"{job_id}: processing (40 {stage})",
        f"{job_id}: processing (85 {stage})",  # a report without a stage keeps the last one
        f"{job_id}: completed (100 {stage})",
    ]
    assert job_id in stdout
    assert "completed" in stdout


def test_erase_takes_the_job_then_get_and_a_second_erase_exit_1(local_server: LocalServer, tmp_path: Path) -> None:
    plan = _file(tmp_path, "erase me.png", samples.png(extra=os.urandom(8)))
    job_id = ldclient("--json", "submit", str(plan), url=local_server.url).json[0]["job"]["job_id"]
    _ops(local_server, "complete", job_id, "--start", "--result", str(RESULT_FILE))
    mine = ldclient(
        "--json", "submit", str(_file(tmp_path, "mine.png", samples.png(extra=os.urandom(8)))), url=local_server.url
    )
    not_bobs = mine.json[0]["job"]["job_id"]

    erased = ldclient("--json", "erase", job_id, url=local_server.url)

    assert erased.code == 0, erased.stderr
    assert set(erased.json) == {"job_id", "erased_at", "objects_deleted"}
    assert (erased.json["job_id"], erased.json["objects_deleted"]) == (job_id, 2)  # the blueprint and the result
    human = ldclient("erase", not_bobs, url=local_server.url, key=OTHER_API_KEY)
    assert human.code == 1, "another client's job: 404"
    assert "JOB_NOT_FOUND" in human.stderr
    for args in (("get", job_id), ("erase", job_id)):
        gone = ldclient("--json", *args, url=local_server.url)
        assert gone.code == 1, args
        assert gone.error["code"] == "JOB_NOT_FOUND"
    table = ldclient("erase", not_bobs, url=local_server.url)
    assert table.code == 0, table.stderr
    assert "objects_deleted" in table.stdout
    assert "mine.png" not in table.stdout, "the receipt names no file"


def _wait_for_jobs(api: Client, hashes: dict[str, str]) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = {hashes[j["blueprint_hash"]]: j["job_id"] for j in api.list_jobs() if j["blueprint_hash"] in hashes}
        if len(found) == len(hashes):
            return found
        time.sleep(0.2)
    raise AssertionError("ldclient submit never created its jobs")


def test_exit_codes_and_configuration(local_server: LocalServer, tmp_path: Path) -> None:
    url = local_server.url
    missing_key = ldclient("list", url=url, key=None, home=str(tmp_path))
    assert missing_key.code == 2
    assert "no API key" in missing_key.stderr
    bad_key = ldclient("--json", "list", url=url, key="ldk_not_a_key")
    assert (bad_key.code, bad_key.error["code"], bad_key.error["status"]) == (1, "UNAUTHORIZED", 401)
    unknown = ldclient("--json", "get", "job_20200101T000000_0000000000000000", url=url)
    assert (unknown.code, unknown.error["code"]) == (1, "JOB_NOT_FOUND")
    assert ldclient("submit", str(tmp_path / "nope.png"), url=url).code == 2
    plan = _file(tmp_path, "plan.png", samples.png(extra=os.urandom(8)))
    assert ldclient("submit", str(plan), "--idempotency-key", "has space", url=url).code == 2

    # 413 both ways: a direct body over the transport's limit, and a declared size over 50 MB.
    big = _file(tmp_path, "big.pdf", samples.pdf(extra=os.urandom(7 * 1024 * 1024)))
    too_big = ldclient("--json", "submit", str(big), "--upload", "direct", url=url)
    assert too_big.code == 1
    assert too_big.json[0]["error"]["code"] == "PAYLOAD_TOO_LARGE"
    huge = _file(tmp_path, "huge.pdf", samples.pdf())
    with huge.open("r+b") as sparse:
        sparse.truncate(50 * 1024 * 1024 + 1)  # no 50 MB written: the API refuses the declared size first
    refused = ldclient("--json", "submit", str(huge), url=url)
    assert refused.code == 1
    assert refused.json[0]["error"]["code"] == "FILE_TOO_LARGE"
    assert refused.json[0]["error"]["details"]["max_bytes"] == 50 * 1024 * 1024
    closed = f"http://127.0.0.1:{_closed_port()}"
    unreachable = ldclient("--retries", "2", "list", url=closed)
    assert unreachable.code == 3
    assert "NetworkError" in unreachable.stderr

    # A config file (chmod 600) works without the environment; the environment wins over it.
    config = tmp_path / "ldclient.toml"
    config.write_text(f'api_url = "{url}"\napi_key = "{OTHER_API_KEY}"\n')
    config.chmod(0o600)
    from_file = ldclient("--config", str(config), "--json", "list", url=None, key=None)
    assert from_file.code == 0, from_file.stderr
    assert "warning" not in from_file.stderr
    overridden = ldclient("--config", str(config), "--json", "list", url=None, key="ldk_not_a_key")
    assert overridden.code == 1
    config.chmod(0o644)
    assert "others may read it" in ldclient("--config", str(config), "list", url=None, key=None).stderr

    pending = _file(tmp_path, "slow.png", samples.png(extra=os.urandom(8)))
    timed_out = ldclient("--json", "submit", str(pending), "--wait", "--timeout", "1", url=url)
    assert timed_out.code == 5
    assert timed_out.json[0]["job"]["status"] == "pending"
    assert timed_out.json[0]["error"]["code"] == "WaitTimeout"


def _closed_port() -> int:
    from local_api.server import free_port

    return free_port()


#: The proxy's own answers, by fault (the status it answers): the error code.
FAULT_CODES = {"409": "CONFLICT", "429": "RATE_LIMITED", "500": "INTERNAL_ERROR", "503": "SERVICE_UNAVAILABLE"}


@dataclass
class FaultyProxy:
    """In front of the API: the first create lands and loses its answer; then 429, then 503; then through.
    With ``faults=[]`` it only records what passes (the creates' keys, times and answers). ``route``
    picks the requests the faults apply to and that are recorded (``POST /api/v1/jobs`` unless told)."""

    upstream: str
    faults: list[str] = field(default_factory=lambda: ["lose", "429", "503"])
    route: Callable[[str, str], bool] = lambda method, path: method == "POST" and path == "/api/v1/jobs"
    #: When each routed request came, and its Idempotency-Key ("" without one).
    attempts: list[tuple[float, str]] = field(default_factory=list)
    #: The status each routed request was answered with (the proxy's own fault or the API's), in order.
    answers: list[int] = field(default_factory=list)
    #: Each of those answers' Retry-After (None without one).
    retry_after: list[str | None] = field(default_factory=list)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        routed = self.route(handler.command, urlsplit(handler.path).path)
        fault = self.faults.pop(0) if routed and self.faults else None
        if routed:
            self.attempts.append((time.monotonic(), handler.headers.get("Idempotency-Key", "")))
        if fault in FAULT_CODES:
            status, code = int(fault), FAULT_CODES[fault]
            payload = json.dumps({"status": "error", "error": {"code": code, "message": "try later"}}).encode()
            self._answer(handler, status, [("Retry-After", "1"), ("Content-Type", "application/json")], payload)
            self.answers.append(status)
            self.retry_after.append("1")
            return
        status, headers, answer = self._forward(handler, body)
        if routed:
            self.answers.append(status)
            self.retry_after.append(next((v for k, v in headers if k.lower() == "retry-after"), None))
        if fault == "lose":  # the API made the job; the client never hears of it
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(handler, status, headers, answer)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(urlsplit(self.upstream).netloc, timeout=30)
        try:
            upstream.request(handler.command, handler.path, body=body, headers=dict(handler.headers.items()))
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@contextmanager
def serving(proxy: FaultyProxy) -> Iterator[str]:
    """The proxy on a loopback port: yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            proxy.handle(self)

        do_POST = do_DELETE = do_GET  # noqa: N815 - http.server's names

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def faulty_proxy(local_server: LocalServer) -> Iterator[tuple[FaultyProxy, str]]:
    proxy = FaultyProxy(local_server.url)
    with serving(proxy) as url:
        yield proxy, url


def test_a_lost_answer_then_429_and_503_make_one_job(
    faulty_proxy: tuple[FaultyProxy, str], local_server: LocalServer, tmp_path: Path
) -> None:
    proxy, url = faulty_proxy
    path = _file(tmp_path, "retried.png", samples.png(extra=os.urandom(8)))

    run = ldclient("--json", "submit", str(path), url=url)

    assert run.code == 0, run.stderr
    assert proxy.faults == []
    assert proxy.answers == [201, 429, 503, 201], "the first answer was made, then lost"
    times, keys = zip(*proxy.attempts, strict=True)
    assert len(keys) == 4
    assert len(set(keys)) == 1, "one Idempotency-Key for every attempt of the create"
    assert times[2] - times[1] >= 0.95  # Retry-After: 1 after the 429
    assert times[3] - times[2] >= 0.95  # and after the 503
    assert run.json[0]["replayed"] is True
    with Client(local_server.url, API_KEY) as api:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert [j["job_id"] for j in api.list_jobs() if j["blueprint_hash"] == digest] == [run.json[0]["job"]["job_id"]]


def test_progress_is_reported_as_the_bytes_go(local_server: LocalServer, tmp_path: Path) -> None:
    path = _file(tmp_path, "plan.pdf", samples.pdf(extra=os.urandom(1024 * 1024)))
    size = path.stat().st_size
    for strategy, direct_limit in (("direct", 4 * 1024 * 1024), ("presigned", 1024)):
        created, events = _create_with_progress(local_server.url, path, direct_limit)
        assert created.path == strategy
        assert created.job["blueprint_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
        sent = [s for s, _ in events]
        assert sent == sorted(sent)
        assert {t for _, t in events} == {size}
        assert sent[0] == 0
        assert sent[-1] == size
        assert len(sent) >= 5, events  # 256 KB chunks


def _create_with_progress(url: str, path: Path, direct_limit: int) -> tuple[Created, list[tuple[int, int]]]:
    events: list[tuple[int, int]] = []
    with Client(url, API_KEY, direct_limit=direct_limit, retry=RetryPolicy(attempts=2)) as api:
        created = api.create_job(path, progress=lambda sent, total: events.append((sent, total)))
    return created, events


def test_the_installed_command_is_there() -> None:
    """``make install`` puts ``ldclient`` into the venv (pip install of clients/python)."""
    command = Path(sys.executable).with_name("ldclient")
    assert command.is_file(), "run make install (it installs clients/python into .venv)"
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert version.returncode == 0
    assert version.stdout.strip() == "ldclient 0.1.0"


def test_the_exit_codes_are_documented_alike_in_help_and_the_readme() -> None:
    """The codes the command returns (ldclient.cli's constants) are the ones ``--help`` and the README list."""
    from ldclient import cli

    returned = {value for name, value in vars(cli).items() if name.startswith("EXIT_")}
    assert returned == {0, 1, 2, 3, 4, 5}
    help_text = subprocess.run(
        [sys.executable, "-m", "ldclient", "--help"], env=_env(None, None), capture_output=True, text=True, check=True
    ).stdout
    epilog = " ".join(help_text.split("Exit codes:", 1)[1].split())
    assert {int(n) for n in re.findall(r"(?:^|; )(\d) ", epilog)} == returned, epilog
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Command-line client (`ldclient`)", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\d) \| (.+) \|$", section, re.M))
    assert {int(n) for n in rows} == returned
    # The same meaning in both places, by its key words.
    for code, words in {1: "refused", 2: "usage", 3: "unreachable", 4: "--wait", 5: "timed out"}.items():
        assert words in rows[str(code)], (code, rows[str(code)])
        assert re.search(rf"(?:^|; ){code} [^;]*{re.escape(words)}", epilog), (code, epilog)


def test_its_dependencies_stay_out_of_the_lambda_and_are_pinned() -> None:
    """httpx and rich (ldclient's) never enter the Lambda's requirements; the dev install pins them."""
    import tomllib

    project = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]}
    assert names == {"httpx", "rich"}
    lambda_requirements = (ROOT / "src" / "requirements.txt").read_text()
    pinned_for_lambda = set(re.findall(r"^([A-Za-z0-9_.-]+)==", lambda_requirements, re.M))
    assert pinned_for_lambda == {"boto3", "botocore", "python-dateutil"}
    assert (ROOT / "requirements.txt").read_text().split("\n# ")[-1].strip().endswith("-r src/requirements.txt")
    for requirements in ("requirements-dev.txt", "constraints-dev.txt"):
        pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (ROOT / requirements).read_text(), re.M))
        assert names <= {name.lower() for name in pins}, requirements


def _erasing(upstream: str, faults: list[str]) -> FaultyProxy:
    return FaultyProxy(upstream, faults, route=lambda method, path: method == "POST" and path.endswith("/erase"))


def test_an_erasure_answered_503_then_409_conflict_is_retried_until_it_is_done(
    local_server: LocalServer, tmp_path: Path
) -> None:
    """The contract: an erasure cut short by a 503 is finished by calling again; a 409 CONFLICT (a
    completion was writing) is to be retried."""
    job_id = _submitted(local_server, tmp_path, "erase retried.png")
    proxy = _erasing(local_server.url, ["503", "409"])
    with serving(proxy) as url:
        run = ldclient("--json", "erase", job_id, url=url)
    assert run.code == 0, run.stderr
    assert (run.json["job_id"], proxy.answers) == (job_id, [503, 409, 200])
    times = [at for at, _ in proxy.attempts]
    assert [b - a >= 0.95 for a, b in itertools.pairwise(times)] == [True, True], "Retry-After honoured"
    with Client(local_server.url, API_KEY) as api, pytest.raises(ApiError) as gone:
        api.get_job(job_id)
    assert gone.value.code == "JOB_NOT_FOUND"


@pytest.mark.parametrize("fault", ["lose", "500"])
def test_an_erasure_whose_answer_is_lost_or_500_is_not_retried(
    local_server: LocalServer, tmp_path: Path, fault: str
) -> None:
    """A lost answer (the API erased the job) or an internal error: the job may be gone, a retry would
    read 404 JOB_NOT_FOUND and hide what happened; the caller is told instead (exit 1 or 3)."""
    job_id = _submitted(local_server, tmp_path, f"erase {fault}.png")
    proxy = _erasing(local_server.url, [fault])
    with serving(proxy) as url:
        run = ldclient("--json", "erase", job_id, url=url)
    assert run.code != 0
    assert len(proxy.attempts) == 1, "one attempt"
    with Client(local_server.url, API_KEY) as api:
        if fault == "lose":
            with pytest.raises(ApiError):
                api.get_job(job_id)  # erased: the answer was made, then lost
        else:
            assert api.get_job(job_id)["job_id"] == job_id  # the proxy answered; the API never saw it


def _submitted(local_server: LocalServer, tmp_path: Path, name: str) -> str:
    run = ldclient(
        "--json", "submit", str(_file(tmp_path, name, samples.png(extra=os.urandom(8)))), url=local_server.url
    )
    assert run.code == 0, run.stderr
    return str(run.json[0]["job"]["job_id"])
