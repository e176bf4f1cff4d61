"""No import cycles among the modules of the core and the built-in plugins.

The graph is read from the source (``ast``, nothing imported): an edge for every ``import``
statement of a module, wherever it stands -- at module level, under ``if TYPE_CHECKING``, or
inside a function. A deferred import keeps start-up fast, but it still ties the two modules
together; a cycle through one is the same tangle, only found later. A package's
``__init__`` counts as the module of the package; importing a submodule does not count as
importing its package (Python has it loaded already), so a package whose ``__init__`` lists
its submodules is no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "core", ROOT / "plugins")


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """(dotted name, whether it is a package ``__init__``) of ``path`` under ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if package else parts), package


def imported(module: str, package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The known modules ``node`` (in ``module``) imports: for ``from X import y``, ``X.y`` when it is
    a module, else ``X``; a name not known (a third-party module) is dropped."""
    if isinstance(node, ast.Import):
        targets = {a.name for a in node.names}
    else:
        if node.level:
            base = module.split(".") if package else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
        else:
            target = node.module or ""
        subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}
        targets = subs or {target}
        if len(subs) < len(node.names):
            targets.add(target)
    out = set()
    for target in targets:
        while target and target not in known:  # ``import a.b.c`` of a name inside a module
            target = target.rpartition(".")[0]
        if target and target != module:
            out.add(target)
    return out


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the modules it imports, from ``{module: (source text, is package)}``."""
    known = set(sources)
    graph: dict[str, set[str]] = {}
    for module, (text, package) in sources.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= imported(module, package, node, known)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def project_sources() -> dict[str, tuple[str, bool]]:
    sources = {}
    for root in SOURCES:
        for path in root.rglob("*.py"):
            if "__pycache__" not in path.parts:
                name, package = module_name(path, root)
                sources[name] = (path.read_text(encoding="utf-8"), package)
    return sources


def test_no_import_cycles_among_core_and_plugin_modules():
    sources = project_sources()
    assert "condensery.api.context" in sources and "condensery_eval.sets" in sources
    found = cycles(import_graph(sources))
    assert not found, "import cycles (cut one edge of each):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_check_finds_a_cycle_through_a_deferred_or_type_checking_import():
    sources = {
        "pkg": ("", True),
        "pkg.a": ("from . import b\n", False),
        "pkg.b": ("def f():\n    from .c import g\n", False),
        "pkg.c": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n", False),
        "pkg.d": ("import pkg.a\n", False),
    }
    assert cycles(import_graph(sources)) == [["pkg.a", "pkg.b", "pkg.c"]]
    sources["pkg.c"] = ("import json\n", False)
    assert cycles(import_graph(sources)) == []


def test_a_package_listing_its_submodules_is_no_cycle():
    sources = {
        "pkg": ("from .a import A\nfrom .b import B\n", True),
        "pkg.a": ("from .b import B\n", False),
        "pkg.b": ("X = 1\n", False),
    }
    assert cycles(import_graph(sources)) == []
