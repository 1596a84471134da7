"""The README's curl examples, run verbatim against the local API (they must keep working)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import API_KEY, ROOT, LocalServer

pytestmark = pytest.mark.e2e


def readme_examples() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- readme-example -->\s*```bash\n(.*?)```", text, re.S)
    assert len(blocks) >= 3, "README.md lost its marked example blocks"
    return "\n".join(blocks)  # one shell: later blocks use the variables of earlier ones


def test_readme_curl_examples_work_verbatim(local_server: LocalServer, tmp_path: Path) -> None:
    script = readme_examples()
    assert "API=http://127.0.0.1:3000" in script
    script = script.replace("API=http://127.0.0.1:3000", f"API={local_server.url}", 1)
    script = script.replace("API_KEY=ldk_...", f"API_KEY={API_KEY}", 1)

    env = {**os.environ, "LOCAL_API_STATE": local_server.state_file}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"status":"healthy"' in out
    assert out.count('"status":"pending"') >= 2  # the PNG create and the poll of the PDF job
    assert out.count('"status":"cancelled"') >= 3  # two cancels, then the lists show the job again
    assert "HTTP/1.1 204" in out
    assert "access-control-allow-origin: *" in out.lower()
    assert '"code":"INVALID_FILE_FORMAT"' in out
    assert '"detected_format":"gif"' in out
    assert '"blueprint_filename":"ground-floor.png"' in out
    assert out.count('"status":"success"') == 11  # every call but the deliberate GIF, 401 and erased-job errors
    # The upload's job, erased: its blueprint, the upload's old version, its result and its feedback.
    assert '"objects_deleted":4' in out
    assert '"code":"JOB_NOT_FOUND"' in out
    assert out.lower().count("idempotent-replayed: true") == 1
    assert out.lower().count('ratelimit-policy: "jobs";q=') == 2, "the create and its replay"
    assert re.search(r'(?im)^ratelimit: "uploads";r=\d+;t=\d+', out), "the upload spent one of the budget"
    assert len(set(re.findall(r"(?im)^location: (\S+)", out))) == 1, "the retry replayed the one job"
    assert '"code":"UNAUTHORIZED"' in out
    assert "Location Detection job API" in out
    assert '"model_version":"room-detector-2026.11"' in out  # the downloaded result
    assert '"feedback_count":1' in out
