"""The contract (``condensery.api``) is one package that imports nothing else of condensery.

A method author reads ``condensery/api/`` and nothing else; the engine (``condensery._engine``)
and the services (``condensery.data``, ``condensery.models``) may change under it. Checked
twice: in the source (every import statement of every module of the package, deferred and
``TYPE_CHECKING`` ones included) and at run time (importing every module of the package loads
no other condensery module).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import condensery
import pytest

from .test_import_cycles import import_graph, module_name

API = Path(__file__).resolve().parents[1] / "core" / "condensery" / "api"


def outside_reaches(sources: dict[str, tuple[str, bool]], universe: set[str]) -> list[str]:
    """``module -> target`` for each import of a contract module that leaves ``condensery.api``."""
    graph = import_graph({**dict.fromkeys(universe, ("", False)), **sources})
    return sorted(f"{m} -> {t}" for m in sources for t in graph[m]
                  if t.startswith("condensery") and not t.startswith("condensery.api"))


def condensery_modules() -> set[str]:
    root = API.parents[1]
    return {module_name(p, root)[0] for p in (root / "condensery").rglob("*.py")}


def contract_sources() -> dict[str, tuple[str, bool]]:
    root = API.parents[1]
    return {name: (path.read_text(), package) for path in API.rglob("*.py")
            for name, package in [module_name(path, root)]}


def test_the_contract_imports_nothing_else_of_condensery():
    sources = contract_sources()
    assert {"condensery.api.components", "condensery.api.context", "condensery.api.hookspecs"} <= set(sources)
    bad = outside_reaches(sources, condensery_modules())
    assert not bad, "the contract reaches outside condensery.api:\n" + "\n".join(bad)


@pytest.mark.parametrize("line", [
    "from .._engine.plugins import get_registry",
    "def f():\n    from ..models.factory import model_factory",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..data.realdata import load_raw",
    "import condensery.evaluation",
    "from condensery import training",
])
def test_the_check_catches_a_reach_outside(line):
    universe = condensery_modules()
    assert outside_reaches({"condensery.api.context": (line, False)}, universe)


def test_importing_the_whole_contract_loads_no_other_condensery_module():
    modules = sorted(name for name, _ in contract_sources().items())
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'condensery')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [m for m in loaded if m != "condensery" and not m.startswith("condensery.api")] == []


def test_the_top_level_exports_the_contract_from_the_contract():
    for name in condensery.api.__all__:
        value = getattr(condensery, name)
        assert value is getattr(condensery.api, name), name
        home = getattr(value, "__module__", "")
        assert home.startswith("condensery.api") or not home.startswith("condensery"), (name, home)
