"""Plugins and tools use the public API only, and that API is small.

Every ``.py`` under ``plugins/`` and ``tools/`` (and ``studies/``) is parsed (never imported)
and each import checked:

- ``condensery``: only the names it exports (``condensery.__all__``: the contract and a few
  helpers);
- ``condensery.M`` for ``M`` in ``condensery.PUBLIC_MODULES``: only the names in ``M.__all__``;
  any other module of condensery (the engine ``condensery._engine``, the contract's internals)
  is private;
- another plugin (from a plugin): only its package's ``__all__`` and the modules its
  ``__init__.py`` lists in ``PUBLIC_MODULES``; never a name starting with ``_``. A plugin's
  own modules (relative or absolute imports) are free.

``"module:Name"`` texts (the lazy references given to ``register``) count as imports. The
top level exports at most ``MAX_EXPORTS`` names, and each helper beside the contract is used
by two or more plugins, or by a tool or the documentation.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import condensery
import condensery.api

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
MAX_EXPORTS = 35

_REFERENCE = re.compile(r"^(condensery[\w.]*):(\w+)$")


@dataclass(frozen=True)
class Import:
    where: str  # path:line
    module: str  # absolute module name
    names: tuple[str, ...]  # the names taken from it (empty for ``import module``)


def plugin_packages() -> list[str]:
    return sorted(p.parent.name for p in PLUGINS.glob("*/__init__.py"))


def tool_files() -> list[Path]:
    """The tools and studies a user runs: held to the plugins' rule, because they are what a
    user copies to measure something of their own."""
    return sorted([*(ROOT / "tools").glob("*.py"), *(ROOT / "studies").rglob("*.py")])


def _literal(tree: ast.Module, name: str) -> tuple[str, ...]:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            return tuple(ast.literal_eval(node.value))
    return ()


def declared(package: str) -> tuple[set[str], set[str]]:
    """(public modules, public package names) a plugin declares in its ``__init__.py``."""
    tree = ast.parse((PLUGINS / package / "__init__.py").read_text())
    modules = {f"{package}.{m}" for m in _literal(tree, "PUBLIC_MODULES")}
    return modules, set(_literal(tree, "__all__"))


@cache
def core_public() -> dict[str, frozenset[str]]:
    """Public condensery module -> the names it exports."""
    public = {"condensery": frozenset(condensery.__all__)}
    for name in condensery.PUBLIC_MODULES:
        module = importlib.import_module(f"condensery.{name}")
        public[f"condensery.{name}"] = frozenset(module.__all__)
    return public


def imports_of(source: str, where: str) -> list[Import]:
    """Absolute imports and ``"module:Name"`` references of one file (relative ones are its own)."""
    out: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        at = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            out += [Import(at, a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(Import(at, node.module, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (m := _REFERENCE.match(node.value)):
            out.append(Import(at, m.group(1), (m.group(2),)))
    return out


def core_violation(imp: Import) -> str | None:
    """Why ``imp`` (of a condensery module) reaches past the public API, or None."""
    public = core_public()
    if imp.module not in public:
        return f"{imp.where}: {imp.module} is a private condensery module; import from condensery or its PUBLIC_MODULES"
    hidden = [n for n in imp.names if n not in public[imp.module]]
    if hidden:
        return f"{imp.where}: {imp.module} does not export {', '.join(hidden)} (its __all__)"
    return None


def violations(own: str | None, found: list[Import], packages: list[str]) -> list[str]:
    """What ``found`` (the imports of a module of plugin ``own``; ``""`` for a tool or study) reaches
    that is not public."""
    bad: list[str] = []
    for imp in found:
        top = imp.module.split(".")[0]
        private = [n for n in imp.names if n.startswith("_")]
        if top == "condensery":
            problem = core_violation(imp)
            if problem:
                bad.append(problem)
        elif own is not None and top in packages and top != own:
            modules, names = declared(top)
            if imp.module == top:
                hidden = [n for n in imp.names if n not in names and f"{top}.{n}" not in modules]
                if hidden:
                    bad.append(f"{imp.where}: {top} does not declare {', '.join(hidden)} public (its __all__)")
            elif imp.module not in modules:
                bad.append(f"{imp.where}: {imp.module} is private to the {top} plugin (not in its PUBLIC_MODULES)")
            elif private:
                bad.append(f"{imp.where}: {', '.join(private)} from {imp.module} is private (leading underscore)")
    return bad


def test_plugins_import_only_public_api():
    packages = plugin_packages()
    assert {"condensery_eval", "condensery_matching", "condensery_mgdd"} <= set(packages)
    bad: list[str] = []
    for path in sorted(PLUGINS.rglob("*.py")):
        own = path.relative_to(PLUGINS).parts[0]
        bad += violations(own, imports_of(path.read_text(), str(path.relative_to(PLUGINS))), packages)
    assert not bad, "plugins reach private modules:\n" + "\n".join(bad)


def test_tools_and_studies_import_only_public_api():
    files = tool_files()
    assert {"probe_recipe.py", "bench_matchers.py", "mgdd_study.py"} <= {p.name for p in files}
    packages = plugin_packages()
    bad: list[str] = []
    for path in files:
        bad += violations("", imports_of(path.read_text(), str(path.relative_to(ROOT))), packages)
    assert not bad, "tools or studies reach private modules:\n" + "\n".join(bad)


def test_the_studies_live_in_studies():
    """A one-off study (``*_study.py``) is no tool: it goes in ``studies/``, next to the results it made."""
    assert not sorted((ROOT / "tools").glob("*_study.py"))
    assert len(sorted((ROOT / "studies").glob("*_study.py"))) >= 5


def test_declared_public_modules_exist():
    for package in plugin_packages():
        modules, _ = declared(package)
        for module in modules:
            assert (PLUGINS / Path(*module.split("."))).with_suffix(".py").is_file(), module
    for module, names in core_public().items():
        assert names, f"{module} declares no public names"
        for name in names:
            assert getattr(importlib.import_module(module), name) is not None, f"{module}.{name}"


def test_no_exported_name_is_also_a_submodule_of_its_package():
    """A lazily exported name that is also a submodule would be shadowed by it once imported."""
    for module in ("condensery", *(f"condensery.{m}" for m in condensery.PUBLIC_MODULES)):
        path = Path(importlib.import_module(module).__file__)
        if path.name != "__init__.py":
            continue
        clash = [n for n in core_public()[module] if (path.parent / f"{n}.py").is_file() or (path.parent / n).is_dir()]
        assert not clash, f"{module} exports {clash}, which are also its submodules"


def test_the_top_level_is_the_contract_and_a_short_list_of_shared_helpers():
    exported = condensery.__all__
    assert len(exported) == len(set(exported)) <= MAX_EXPORTS, len(exported)
    assert set(condensery.api.__all__) <= set(exported)  # the whole contract
    plugin_use: dict[str, set[str]] = {}
    for path in PLUGINS.rglob("*.py"):
        for imp in imports_of(path.read_text(), str(path)):
            if imp.module == "condensery":
                for name in imp.names:
                    plugin_use.setdefault(name, set()).add(path.relative_to(PLUGINS).parts[0])
    user_texts = [p.read_text() for p in [*tool_files(), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]]
    unshared = []
    for name in set(exported) - set(condensery.api.__all__):
        users = [t for t in user_texts if re.search(rf"\b{name}\b", t)]
        if len(plugin_use.get(name, ())) < 2 and not users:
            unshared.append(f"{name}: plugins {sorted(plugin_use.get(name, ()))}, no tool or doc")
    assert not unshared, "helpers exported but not shared; move them to a public module:\n" + "\n".join(unshared)


def test_the_check_catches_private_reaches():
    """The negative self-check: each of these lines, added to a plugin, must fail the test."""
    packages = plugin_packages()
    caught = {
        "from condensery._engine.runner import run": "private condensery module",
        "import condensery._engine.recipe": "private condensery module",
        "from condensery.api.context import RunContext": "private condensery module",
        "from condensery import lazy_exports": "does not export",
        "from condensery import predict": "does not export",
        "from condensery.training import _label_loss": "does not export",
        "from condensery_eval.sets import load_set": "private to the condensery_eval plugin",
        "from condensery_matching.common import real_class_batches": "private to the condensery_matching plugin",
        "from condensery_matching import common": "does not declare common public",
        "from condensery_matching.krr import _private": "leading underscore",
        'REF = "condensery_eval.report:render"': "private to the condensery_eval plugin",
        'REF = "condensery._engine.recipe:load_yaml"': "private condensery module",
    }
    for line, message in caught.items():
        found = violations("condensery_mgdd", imports_of(line, "synthetic.py"), packages)
        assert len(found) == 1 and message in found[0], (line, found)
    fine = ("from condensery import RunContext, open_task\n"
            "import condensery\n"
            "from condensery.training import predict\n"
            "from condensery.api.files import atomic_path\n"
            "from condensery_matching import refine_images\n"
            "from condensery_matching.krr import KRRMatcher\n"
            "from condensery_mgdd.tasks import KRRLabeler\n"  # its own module
            "from .generator import MetaGenerator\n")
    assert violations("condensery_mgdd", imports_of(fine, "synthetic.py"), packages) == []
