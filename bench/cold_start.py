"""Cold start proxy: importing the handler's module against ``import boto3`` alone, in fresh interpreters.

A Lambda cold start is the runtime's own start, then the import of the handler's module (the "init"
phase), then the first invocation. The first part is AWS's; the second is ours, and its floor is
``import boto3``, which any handler that talks to AWS pays. Each sample is one new interpreter that
times, with ``perf_counter``, only the import statement; the two variants alternate (ABAB..., the order
swapped every other round) so that a busy moment of the machine hits both. Judged: the median over the
rounds of the ratio of the two imports of one round. The speed of this shared machine drifts by more
than the difference judged (boto3's own import took 146 ms in one run and 264 ms in the next): a round's
two imports are a second apart and see the same machine, so their ratio cancels the drift that the
ratio of the two medians keeps. The medians are shown too, reported.
Three settings, each handler against boto3 in the same setting:

- **development**: this virtualenv and ``src/``, bytecode cached (one discarded warm-up of each first):
  the proxy as issue 6 defines it, held to issue 6's target (1.15x);
- **sam build alone**: the package ``sam build`` makes — ``src/`` plus the runtime dependencies of
  ``src/requirements.txt`` copied from this virtualenv without any ``__pycache__`` — run with ``python -S``
  (no site-packages: only what the package holds) and ``PYTHONDONTWRITEBYTECODE=1`` (``/var/task`` is
  read-only: nothing compiled at one cold start is kept for the next). ``sam build`` ships no bytecode,
  so every cold start compiles every module it imports, boto3's and ours. Reported, not judged: no
  release ships it (a ``sam deploy`` by hand would);
- **as released**: the same package after ``python -m compileall --invalidation-mode unchecked-hash``
  (bytecode that needs no writable directory and no source timestamps), which is what ``.ci/release
  package`` (``deploy.yml``) ships: the setting issue 21 judges ("the package as deployed: precompiled,
  runtime dependencies only").
"""

from __future__ import annotations

import compileall
import importlib.metadata
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, child_env, median
from bench.report import Row, Section, method_of, paired_rows

#: Issue 21: the package as released (precompiled, runtime dependencies only). Issue 6's development
#: proxy (this virtualenv, bytecode cached) keeps its own target.
TARGET = 1.10
DEVELOPMENT_TARGET = 1.15
HANDLER_MODULE = "api.rest_api"
SAM_BUILD, RELEASED = "sam build alone", "as released (precompiled)"

_TIMED_IMPORT = (
    "import time\nstarted = time.perf_counter()\nimport {module}\nprint(repr(time.perf_counter() - started))\n"
)
_ADDED_MODULES = (
    "import sys\nimport boto3\nbefore = set(sys.modules)\nimport {module}\n"
    "print(' '.join(sorted(m for m in set(sys.modules) - before if m.split('.')[0] not in "
    "('api', 'services', 'storage', 'utils', 'models'))))\n"
)


def lambda_environment() -> dict[str, str]:
    """The variables the template gives the function (what ``Settings`` reads)."""
    from local_api.cfn_template import Stack, load_template

    return Stack(load_template(), {"Environment": "dev"}).function_environment()


def time_import(module: str, env: dict[str, str], flags: tuple[str, ...] = ()) -> float:
    """Seconds taken by ``import module`` in a new interpreter."""
    done = subprocess.run(
        [sys.executable, *flags, "-c", _TIMED_IMPORT.format(module=module)],
        env=env,
        cwd=tempfile.gettempdir(),  # not the repository: its directory must not shadow the package
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip().splitlines()[-1])


def added_modules(env: dict[str, str]) -> list[str]:
    """Third-party and standard modules the handler's import loads that ``import boto3`` does not."""
    done = subprocess.run(
        [sys.executable, "-c", _ADDED_MODULES.format(module=HANDLER_MODULE)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.split()


# ------------------------------------------------------------------------------- the deployed package
def runtime_distributions(requirements: Path = ROOT / "src" / "requirements.txt") -> list[str]:
    """The distributions ``src/requirements.txt`` (what ``sam build`` installs) names, with their dependencies
    (extras left out)."""
    wanted = [m.group(0) for line in requirements.read_text().splitlines() if (m := re.match(r"[A-Za-z0-9._-]+", line))]
    found: list[str] = []
    while wanted:
        name = wanted.pop()
        if name.lower() in (f.lower() for f in found):
            continue
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # a marker kept it out of this virtualenv: not part of the package either
        found.append(name)
        for requirement in requires:
            if "extra ==" not in requirement and (m := re.match(r"[A-Za-z0-9._-]+", requirement)):
                wanted.append(m.group(0))
    return sorted(found)


def build_package(src: Path, dest: Path) -> Path:
    """``src/`` and the runtime distributions' files, without bytecode: what ``sam build`` puts in
    ``.aws-sam/build/ApiFunction``."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), ignore_dangling_symlinks=True)
    for name in runtime_distributions():
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or []:
            relative = Path(str(file))
            if relative.parts[0] == ".." or relative.suffix == ".pyc" or "__pycache__" in relative.parts:
                continue  # console scripts outside site-packages; bytecode
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(distribution.locate_file(file))), target)
    return dest


def precompile(package: Path, dest: Path) -> Path:
    shutil.copytree(package, dest)
    compileall.compile_dir(
        dest, quiet=2, workers=os.cpu_count() or 1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    return dest


# ---------------------------------------------------------------------------------------- measuring
def compare(env: dict[str, str], samples: int, flags: tuple[str, ...] = ()) -> dict[str, list[float]]:
    """``samples`` imports of the handler and of boto3, alternating; seconds per import."""
    variants = {"handler": HANDLER_MODULE, "boto3": "boto3"}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(samples):
        order = list(variants) if round_number % 2 == 0 else list(reversed(variants))
        for name in order:
            times[name].append(time_import(variants[name], env, flags))
    return times


def rows(setting: str, times: dict[str, list[float]], limit: float | None) -> list[Row]:
    return paired_rows(
        f"{setting}: `import {HANDLER_MODULE}`", times["handler"], "`import boto3`", times["boto3"], limit
    )


def run(src: Path, samples: int, deployed_samples: int) -> Section:
    started = time.perf_counter()
    lambda_env = lambda_environment()
    env = child_env(src, lambda_env)
    for module in (HANDLER_MODULE, "boto3"):  # warm-up: bytecode compiled and cached, files in the page cache
        time_import(module, env)
    development = compare(env, samples)
    table = rows("development", development, DEVELOPMENT_TARGET)
    deployed: dict[str, dict[str, list[float]]] = {}
    if deployed_samples:
        with tempfile.TemporaryDirectory(prefix="bench-package-") as scratch:
            package = build_package(src, Path(scratch) / "package")
            compiled = precompile(package, Path(scratch) / "compiled")
            for setting, path in ((SAM_BUILD, package), (RELEASED, compiled)):
                package_env = {**lambda_env, **{k: v for k, v in env.items() if k.startswith("AWS_")}}
                package_env.update(
                    {"PYTHONPATH": str(path), "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.environ["PATH"]}
                )
                deployed[setting] = compare(package_env, deployed_samples, ("-S",))
                table += rows(setting, deployed[setting], TARGET if setting == RELEASED else None)
    handler, boto3 = median(development["handler"]) * 1000, median(development["boto3"]) * 1000
    extra = added_modules(env)
    notes = [
        f"- Development: our code adds {handler - boto3:.1f} ms to the import (medians); spread of the "
        f"handler's samples {min(development['handler']) * 1000:.0f}..{max(development['handler']) * 1000:.0f} ms, "
        f"of boto3's {min(development['boto3']) * 1000:.0f}..{max(development['boto3']) * 1000:.0f} ms.",
        f"- Modules outside our own that the handler's import loads beyond `import boto3`: "
        f"{', '.join(f'`{m}`' for m in extra) if extra else 'none'}.",
        "- No boto3 client is created at import: clients are built lazily on first use (`utils/aws.py`).",
    ]
    if deployed:
        plain, fast = deployed[SAM_BUILD], deployed[RELEASED]
        saved = median(plain["handler"]) - median(fast["handler"])
        notes.append(
            f"- Without bytecode, compiling is most of the import: precompiling the package saves "
            f"{saved * 1000:.0f} ms of every cold start ({median(plain['handler']) * 1000:.0f} -> "
            f"{median(fast['handler']) * 1000:.0f} ms for the handler's import). Package: `src/` + "
            f"{', '.join(runtime_distributions())}."
        )
    section = Section(
        title="Cold start proxy: import of the handler module vs `import boto3`",
        method=method_of(__doc__),
        rows=table,
        notes=notes,
    )
    section.seconds = time.perf_counter() - started
    return section
