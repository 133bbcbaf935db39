"""The service installs from ``pyproject.toml``'s runtime dependencies alone (the Docker image
does exactly that): every third-party module that ``app``, ``matching`` or ``schemas`` imports
must come from one of them, not from the ``dev`` extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"app", "matching", "schemas"}
# Imported only by developer tools, which run with the dev extra installed.
DEV_ONLY = {"yaml": "app/openapi_doc.py render_yaml (regenerates openapi.yaml)"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for package in OWN:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - OWN - set(sys.stdlib_module_names) - set(DEV_ONLY)


def test_every_imported_package_is_a_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_normalise(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    distributions = packages_distributions()
    missing = {}
    for module in sorted(_imported_top_level_modules()):
        names = {_normalise(d) for d in distributions.get(module, [])}
        assert names, f"{module} is imported but no installed distribution provides it"
        if not names & runtime:
            missing[module] = sorted(names)
    assert not missing, f"imported by the service but not runtime dependencies in pyproject.toml: {missing}"
