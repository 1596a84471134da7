"""The architecture of src/, enforced: which layer may import which, and how large a module or function
may grow. Standard library only (``ast``): the rules below are the ones docs/architecture.md explains.

A layer is a top-level package of src/ (``api`` and ``workers``, the two entry layers, ``services``,
``storage``, ``models``, ``utils``); an
import is forbidden when its first name is in the layer's row. Every import counts: at the top of the
module, inside a function (a lazy import) or relative (``from ..storage import x``).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

#: Development-only code: it may import src/, never the other way round (none of it is deployed).
DEV_ONLY = ("local_api", "ops", "bench", "tests")
#: Stands for "any import outside the standard library and the layer itself".
NOT_STDLIB = "<anything but the standard library>"
#: The one module of a layer allowed what its layer is not, and why.
ALLOWED_EXCEPTIONS = {
    ("api.dependencies", "storage"): "the dependency setup: it builds the stores, once",
    ("workers.dependencies", "storage"): "the workers' dependency setup: it builds their stores, once",
}


@dataclass(frozen=True)
class Rule:
    layer: str
    may_not_import: tuple[str, ...]


# fmt: off
RULES = (
    #    layer        may not import
    Rule("api",      ("workers", "storage", "boto3", "botocore", *DEV_ONLY)),  # services (api.dependencies excepted)
    Rule("workers",  ("api", "storage", "boto3", "botocore", *DEV_ONLY)),  # the same, beside api, for non-HTTP events
    Rule("services", ("api", "workers", "boto3", "botocore", *DEV_ONLY)),  # storage does every AWS call
    Rule("storage",  ("services", "api", "workers", *DEV_ONLY)),
    Rule("models",   (NOT_STDLIB,)),
    Rule("utils",    ("services", "api", "workers", "storage", "models", *DEV_ONLY)),
)
# fmt: on
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


# ------------------------------------------------------------------------------------------- the checker
def imported_names(module: str, source: str) -> Iterator[tuple[str, int]]:
    """Every module ``source`` (the code of ``module``, a dotted name) imports, absolute, with its line."""
    package = module.split(".")[:-1]  # a package's own code is its ``__init__`` module
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the module's own package
                base = package[: len(package) - node.level + 1]
                yield ".".join([*base, *([node.module] if node.module else [])]), node.lineno
            else:
                yield node.module or "", node.lineno


def _forbidden(rule: Rule, imported: str) -> str | None:
    """What ``imported`` breaks of ``rule`` (None: nothing)."""
    top = imported.split(".", maxsplit=1)[0]
    for banned in rule.may_not_import:
        if banned == NOT_STDLIB:
            if top != rule.layer and top not in sys.stdlib_module_names:
                return banned
        elif top == banned:
            return banned
    return None


def layer_violations(modules: Mapping[str, str], rules: tuple[Rule, ...] = RULES) -> list[str]:
    """``module:line imports name (layer may not import banned)`` for each import a rule forbids.

    ``modules`` maps dotted module names (``api.handlers.jobs``) to their source.
    """
    by_layer = {rule.layer: rule for rule in rules}
    found = []
    for module, source in sorted(modules.items()):
        rule = by_layer.get(module.split(".")[0])
        if rule is None:
            found.append(f"{module}: in no layer of the rules")
            continue
        for imported, line in imported_names(module, source):
            banned = _forbidden(rule, imported)
            if banned is not None and (module, banned) not in ALLOWED_EXCEPTIONS:
                found.append(f"{module}:{line} imports {imported} ({rule.layer} may not import {banned})")
    return found


def size_violations(modules: Mapping[str, str]) -> list[str]:
    """Modules over ``MAX_MODULE_LINES`` lines and functions over ``MAX_FUNCTION_LINES``."""
    found = []
    for module, source in sorted(modules.items()):
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{module}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{module}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})")
    return found


def environ_readers(modules: Mapping[str, str]) -> list[str]:
    """Modules other than ``utils.settings`` that read the environment (``os.environ``, ``os.getenv``)."""
    found = []
    for module, source in sorted(modules.items()):
        if module == "utils.settings":
            continue
        for node in ast.walk(ast.parse(source)):
            read = (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")) or (
                isinstance(node, ast.ImportFrom) and node.module == "os"
            )
            if read:
                found.append(f"{module}:{node.lineno} reads the environment (only utils.settings may)")
    return found


def src_modules(root: Path = SRC) -> dict[str, str]:
    """Every module of ``root`` by dotted name (a package's own code as ``package.__init__``)."""
    return {
        ".".join(path.relative_to(root).with_suffix("").parts): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.py"))
    }


# --------------------------------------------------------------------------------------------- src itself
def test_every_import_in_src_keeps_to_the_layer_rules() -> None:
    assert layer_violations(src_modules()) == []


def test_every_top_level_package_of_src_is_a_layer_of_the_rules() -> None:
    packages = {path.name for path in SRC.iterdir() if (path / "__init__.py").is_file()}
    assert packages == {rule.layer for rule in RULES}


def test_no_module_or_function_of_src_outgrows_a_screen() -> None:
    assert size_violations(src_modules()) == []


def test_only_the_settings_read_the_environment() -> None:
    assert environ_readers(src_modules()) == []


# ----------------------------------------------------------------------------- the checker, on purpose
@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "api.handlers.x",
            "from storage import Stores\n",
            "api.handlers.x:1 imports storage (api may not import storage)",
        ),
        ("api.x", "import boto3\n", "api.x:1 imports boto3 (api may not import boto3)"),
        ("api.x", "from ..storage.jobs_table import JobsTable\n", "api.x:1 imports storage.jobs_table"),
        ("api.__init__", "from ..storage import Stores\n", "api.__init__:1 imports storage"),
        ("api.x", "def f():\n    import storage.base\n", "api.x:2 imports storage.base"),
        ("services.x", "from api.http import Request\n", "services.x:1 imports api.http (services may not"),
        (
            "services.x",
            "from botocore.exceptions import ClientError\n",
            "services.x:1 imports botocore.exceptions (services may not import botocore)",
        ),
        ("storage.x", "from services import ids\n", "storage.x:1 imports services (storage may not import services)"),
        ("storage.x", "import api\n", "storage.x:1 imports api"),
        (
            "models.x",
            "from utils.clock import iso_utc\n",
            f"models.x:1 imports utils.clock (models may not import {NOT_STDLIB})",
        ),
        ("models.x", "import boto3\n", "models.x:1 imports boto3"),
        ("utils.x", "from models.job import Job\n", "utils.x:1 imports models.job (utils may not import models)"),
        ("utils.x", "from services.auth import Client\n", "utils.x:1 imports services.auth"),
        (
            "services.x",
            "import local_api.server\n",
            "services.x:1 imports local_api.server (services may not import local_api)",
        ),
        ("utils.x", "from tests import samples\n", "utils.x:1 imports tests"),
        ("storage.x", "from bench import common\n", "storage.x:1 imports bench"),
        ("api.x", "from ops.cli import main\n", "api.x:1 imports ops.cli"),
        (
            "workers.stream_consumer",
            "from storage.event_bus import EventBus\n",
            "workers.stream_consumer:1 imports storage.event_bus (workers may not import storage)",
        ),
        ("workers.x", "import boto3\n", "workers.x:1 imports boto3 (workers may not import boto3)"),
        ("workers.x", "from api.http import ok\n", "workers.x:1 imports api.http (workers may not import api)"),
        ("api.x", "from workers import dependencies\n", "api.x:1 imports workers (api may not import workers)"),
        ("services.x", "import workers.stream_consumer\n", "services.x:1 imports workers.stream_consumer"),
        ("workers.x", "from storage import Stores\n", "workers.x:1 imports storage (workers may not import storage)"),
        ("scripts.x", "import os\n", "scripts.x: in no layer of the rules"),
    ],
)
def test_the_checker_fails_on_a_deliberate_violation(module: str, source: str, expected: str) -> None:
    found = layer_violations({module: source})
    assert len(found) == 1, found
    assert found[0].startswith(expected), found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("api.dependencies", "from storage import Stores\n"),  # the one exception
        ("workers.dependencies", "from storage.event_bus import EventBus\n"),  # and the workers' one
        ("workers.stream_consumer", "from services.job_events import JobEvents\nfrom utils import retry\n"),
        ("workers.dependencies", "from storage import Stores\n"),
        ("workers.sweep", "from services.sweep import Sweep\nfrom workers import dependencies\n"),
        ("api.handlers.jobs", "from services.job_service import JobService\nfrom models.job import Job\n"),
        ("services.x", "from storage.jobs_table import JobsTable\nfrom utils import retry\n"),
        ("storage.x", "from models.job import Job\nimport boto3\nfrom botocore.exceptions import ClientError\n"),
        ("models.x", "import re\nfrom dataclasses import dataclass\nfrom models.errors import InvalidJobId\n"),
        ("models.x", "from .errors import InvalidJobId\nfrom __future__ import annotations\n"),
        ("storage.__init__", "from .jobs_table import JobsTable\n"),
        ("utils.x", "import boto3\nfrom utils.errors import AppError\n"),
    ],
)
def test_the_checker_lets_allowed_imports_through(module: str, source: str) -> None:
    assert layer_violations({module: source}) == []


def test_the_size_checker_fails_on_a_long_module_and_a_long_function() -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_FUNCTION_LINES))
    long_function = f"def too_long():\n{body}"
    assert size_violations({"utils.x": long_function}) == [
        f"utils.x:1 too_long: {MAX_FUNCTION_LINES + 1} lines (at most 50)"
    ]
    long_module = "".join(f"X{n} = {n}\n" for n in range(MAX_MODULE_LINES + 1))
    assert size_violations({"utils.y": long_module}) == [f"utils.y: {MAX_MODULE_LINES + 1} lines (at most 300)"]
    assert size_violations({"utils.z": "".join(f"X{n} = {n}\n" for n in range(MAX_MODULE_LINES))}) == []


def test_the_environment_checker_fails_outside_the_settings() -> None:
    assert environ_readers({"services.x": "import os\nTABLE = os.environ['JOBS_TABLE']\n"}) == [
        "services.x:2 reads the environment (only utils.settings may)"
    ]
    assert environ_readers({"api.x": "from os import getenv\n"}) == [
        "api.x:1 reads the environment (only utils.settings may)"
    ]
    assert environ_readers({"utils.settings": "import os\nE = os.environ\n"}) == []
