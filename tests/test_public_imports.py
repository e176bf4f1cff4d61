"""Plugins use public API only (issue 21): ``condensery`` itself, and what another plugin declares public.

Every ``.py`` under ``plugins/`` is parsed (never imported) and each import checked:

- ``condensery``: only the names it exports (``condensery.__all__``), never a submodule
  such as ``condensery._engine.runner`` unless it is listed in ``ALLOWED_CORE`` with its reason;
- another plugin: only its package (the names in its ``__all__``) and the modules its
  ``__init__.py`` lists in ``PUBLIC_MODULES``; never a name starting with ``_``.

A plugin's own modules (relative or absolute imports) are free. ``"module:Name"`` texts (the
lazy references given to ``register``) count as imports.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import condensery

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

#: condensery submodules plugins may import directly, each with the reason; none today: every
#: name a plugin needs is exported by ``condensery`` (``_LAZY``), so internals can move freely
ALLOWED_CORE: dict[str, str] = {}

_REFERENCE = re.compile(r"^(condensery[\w.]*):(\w+)$")


@dataclass(frozen=True)
class Import:
    where: str  # path:line
    module: str  # absolute module name
    names: tuple[str, ...]  # the names taken from it (empty for ``import module``)


def plugin_packages() -> list[str]:
    return sorted(p.parent.name for p in PLUGINS.glob("*/__init__.py"))


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


def violations(own: str, found: list[Import], packages: list[str]) -> list[str]:
    """What ``found`` (the imports of a module of plugin ``own``) reaches that is not public."""
    core_names = set(condensery.__all__)
    bad: list[str] = []
    for imp in found:
        top = imp.module.split(".")[0]
        private = [n for n in imp.names if n.startswith("_")]
        if top == "condensery":
            if imp.module != "condensery" and imp.module not in ALLOWED_CORE:
                bad.append(f"{imp.where}: {imp.module} is a private condensery module; import its names from condensery")
            elif imp.module == "condensery":
                hidden = [n for n in imp.names if n not in core_names]
                if hidden:
                    bad.append(f"{imp.where}: condensery does not export {', '.join(hidden)} (add it to _LAZY / __all__)")
        elif top in packages and top != own:
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


def test_declared_public_modules_exist():
    for package in plugin_packages():
        modules, _ = declared(package)
        for module in modules:
            assert (PLUGINS / Path(*module.split("."))).with_suffix(".py").is_file(), module


def test_the_check_catches_private_reaches():
    """The negative self-check: each of these lines, added to a plugin, must fail the test."""
    packages = plugin_packages()
    caught = {
        "from condensery._engine.runner import load_data": "private condensery module",
        "import condensery._engine.recipe": "private condensery module",
        "from condensery import _LAZY": "does not export",
        "from condensery_eval.sets import load_set": "private to the condensery_eval plugin",
        "from condensery_matching.common import real_class_batches": "private to the condensery_matching plugin",
        "from condensery_matching import common": "does not declare common public",
        "from condensery_matching.krr import _private": "leading underscore",
        'REF = "condensery_eval.report:render"': "private to the condensery_eval plugin",
    }
    for line, message in caught.items():
        found = violations("condensery_mgdd", imports_of(line, "synthetic.py"), packages)
        assert len(found) == 1 and message in found[0], (line, found)
    fine = ("from condensery import RunContext, open_task\n"
            "import condensery\n"
            "from condensery_matching import refine_images\n"
            "from condensery_matching.krr import KRRMatcher\n"
            "from condensery_mgdd.tasks import KRRLabeler\n"  # its own module
            "from .generator import MetaGenerator\n")
    assert violations("condensery_mgdd", imports_of(fine, "synthetic.py"), packages) == []
