"""Declared dependencies are true: every third-party import is declared (the package's in
``dependencies``, the tests' and benchmarks' there or in the ``dev`` extra), every declared
dependency is used, and the declared minimum versions are those of ``.ci/minimum.txt``, which
``make test-minimum`` installs to run a smoke subset of the tests."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import cache
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]
# dev tools that are run, not imported: the file that runs each
TOOLS = {"ruff": "Makefile", "pre-commit": ".pre-commit-config.yaml"}
_REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9a-zA-Z.]*)$")


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def minima(requirements: list[str]) -> dict[str, str]:
    """{name: minimum} of requirements written ``name>=X`` (the only form genlab uses)."""
    found = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement.strip())
        assert match, f"{requirement!r}: write dependencies as name>=minimum"
        found[normalized(match.group(1))] = match.group(2)
    return found


def constraint_pins() -> dict[str, str]:
    """{name: version} of the ``name==version`` lines of .ci/minimum.txt."""
    pins = {}
    for line in (REPO / ".ci" / "minimum.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[normalized(name)] = version
    return pins


def _importorskip(node: ast.AST) -> str | None:
    """The module of a ``pytest.importorskip("module")`` call."""
    if (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "importorskip"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return str(node.args[0].value)
    return None


def imported_modules(*folders: str) -> set[str]:
    """Top-level names of the absolute imports (and ``pytest.importorskip`` calls) in the .py
    files under ``folders``."""
    names = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
                elif _importorskip(node):
                    names.add(_importorskip(node).split(".")[0])
    return names


def third_party(modules: set[str]) -> dict[str, str]:
    """{module: its distribution} for the modules that are neither stdlib nor genlab's (of
    several distributions that provide a module, a declared one)."""
    owners = importlib.metadata.packages_distributions()
    declared = {
        *minima(project()["dependencies"]),
        *minima(project()["optional-dependencies"]["dev"]),
    }
    found = {}
    for module in sorted(modules - set(sys.stdlib_module_names) - {"genlab", "tests"}):
        assert module in owners, f"import {module}: no installed distribution provides it"
        names = sorted({normalized(name) for name in owners[module]})
        found[module] = next((n for n in names if n in declared), names[0])
    return found


def test_declared_minima_are_the_pinned_minima():
    declared = minima(project()["dependencies"]) | minima(project()["optional-dependencies"]["dev"])
    assert declared == constraint_pins()


def test_every_import_of_the_package_is_a_dependency():
    used = third_party(imported_modules("src/genlab"))
    declared = set(minima(project()["dependencies"]))
    assert {m: d for m, d in used.items() if d not in declared} == {}


def test_every_import_of_tests_and_benchmarks_is_declared():
    used = third_party(imported_modules("tests", "benchmarks"))
    declared = set(minima(project()["dependencies"])) | set(
        minima(project()["optional-dependencies"]["dev"])
    )
    assert {m: d for m, d in used.items() if d not in declared} == {}


def test_every_dependency_is_used():
    package = set(third_party(imported_modules("src/genlab")).values())
    assert set(minima(project()["dependencies"])) - package == set()
    development = set(third_party(imported_modules("tests", "benchmarks")).values())
    dev = set(minima(project()["optional-dependencies"]["dev"]))
    assert dev - development - set(TOOLS) == set()
    for tool, runner in TOOLS.items():
        assert tool in dev and tool in (REPO / runner).read_text()


def test_the_pre_commit_ruff_is_the_declared_minimum():
    """pre-commit's ruff hook and the dev extra agree, so both lint the same way."""
    rev = re.search(
        r"ruff-pre-commit\s+rev: v([0-9.]+)", (REPO / ".pre-commit-config.yaml").read_text()
    )
    assert rev and rev.group(1) == constraint_pins()["ruff"]
