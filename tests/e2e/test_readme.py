"""The README's curl examples, run verbatim against the local API (they must keep working)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, LocalServer

pytestmark = pytest.mark.e2e


def readme_examples() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- readme-example -->\s*```bash\n(.*?)```", text, re.S)
    assert found, "README.md lost its marked example block"
    return found.group(1)


def test_readme_curl_examples_work_verbatim(local_server: LocalServer, tmp_path: Path) -> None:
    script = readme_examples()
    assert "API=http://127.0.0.1:3000" in script
    script = script.replace("API=http://127.0.0.1:3000", f"API={local_server.url}", 1)

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"status":"healthy"' in out
    assert out.count('"status":"pending"') >= 2  # the PNG create and the poll of the PDF job
    assert out.count('"status":"cancelled"') == 2
    assert "HTTP/1.1 204" in out
    assert "access-control-allow-origin: *" in out.lower()
    assert '"code":"INVALID_FILE_FORMAT"' in out
    assert '"detected_format":"gif"' in out
