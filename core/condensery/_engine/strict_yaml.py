"""Reading YAML a person wrote (recipes, ``--set`` and ``--option`` values) strictly.

PyYAML's safe loader runs no code, but two of its defaults are wrong for configuration:

- a key given twice in one mapping keeps the last value, so a recipe's second
  ``synthesizer:`` section silently replaces the first; here it is an error naming the key
  and both lines (keys brought in by a ``<<:`` merge may still be overridden: that is what a
  merge is for);
- aliases are expanded without limit: a few hundred bytes of nested aliases ("billion
  laughs") load fast as shared objects but become 10^9 values once validation, ``deepcopy``
  or ``yaml.safe_dump`` walks them. Aliases stay allowed (a recipe may share a section with
  ``&``/``*``, and ``recipe.yaml`` in a run directory is written with them when a recipe
  shared one), but the document's expanded size is counted on the node graph before anything
  is built, and an alias inside its own anchor is refused.

Problems are raised as ``YAMLProblem`` text without a file name: each caller knows what it
read and what the way out is, and puts both into its one-line ``UserError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: values one document may hold once its aliases are expanded; a large recipe holds a few hundred
MAX_VALUES = 100_000
#: sections within sections; a recipe nests 4 deep, and what walks it later (validation, deepcopy) recurses
MAX_DEPTH = 64
_MERGE = "tag:yaml.org,2002:merge"


class YAMLProblem(ValueError):
    """What is wrong with a YAML text, with its line; worded to follow the name of what was read."""


class NotYAML(YAMLProblem):
    """The text is not YAML at all (a syntax error, or not UTF-8)."""


class RefusedYAML(YAMLProblem):
    """Valid YAML that configuration must not be: a duplicate key, an alias bomb, a loop, deep nesting."""


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys and bounds what aliases expand to."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node, MAX_VALUES, MAX_DEPTH)
        return self.construct_document(node)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first_line
                except TypeError:  # an unhashable key: SafeLoader reports it below
                    continue
                line = key_node.start_mark.line + 1
                if seen:
                    raise RefusedYAML(f"has the key {_shown(key)} twice in one mapping (lines {first_line[key]} "
                                      f"and {line}); keep one of them")
                first_line[key] = line
        return super().construct_mapping(node, deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, limit: int, max_depth: int) -> None:
    """Refuse a document whose aliases expand past ``limit`` values, or refer to themselves, or
    that nests deeper than ``max_depth``.

    Each node's expanded size is computed once (aliases share nodes), without recursion, so
    the check costs the size of the document as written, not as expanded.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: meeting one again is an alias loop
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(child)] for child in children)
            depth[key] = 1 + max((depth[id(child)] for child in children), default=0)
            if depth[key] > max_depth:
                raise RefusedYAML(f"nests values more than {max_depth} deep (line {node.start_mark.line + 1}); "
                                  "configuration is a few sections deep")
            if size[key] > limit:
                raise RefusedYAML(f"expands its aliases to more than {limit} values (line {node.start_mark.line + 1}); "
                                  "write the values out, or share fewer of them")
            continue
        if key in size:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise RefusedYAML(f"has an alias inside its own anchor (line {child.start_mark.line + 1}); "
                                  "a value cannot contain itself")
            if id(child) not in size:
                stack.append((child, False))


def _shown(key: Any) -> str:
    return repr(key) if isinstance(key, str) else f"{key!r} ({type(key).__name__})"


def parse_yaml(text: str) -> Any:
    """``text`` as one YAML document, strictly; ``NotYAML`` or ``RefusedYAML`` otherwise."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 -- StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NotYAML(f"is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise RefusedYAML("nests its values too deeply to be configuration") from None


def read_yaml(path: str | Path) -> Any:
    """The YAML file at ``path``, strictly; ``YAMLProblem`` when it is not UTF-8 or not acceptable YAML.

    ``OSError`` (missing, unreadable) is left to the caller, which knows the way out.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotYAML(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                      "save it as UTF-8") from None
    return parse_yaml(text)
