"""Recipes: YAML + ``--set`` overrides -> a validated, fully resolved plan of a run.

Everything a run will use is validated here, before any data is loaded: unknown section,
unknown component (with the list of valid names), unknown option (with the valid options),
bad value (with the key and why), the model's options. Every problem is one ``UserError`` line.

Two steps: ``validate`` (``recipe_validation``) checks every section against the options
classes the components were registered with, which live in modules without torch, so a bad
recipe fails in well under a second; ``build`` then imports the components and builds them. ``resolve`` does both. This module reads the YAML, applies
``--set`` overrides and builds; nothing here writes a file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.errors import UserError
from ..api.options import suggest
from ..api.runtime_options import RuntimeOptions
from .recipe_catalog import find_recipe
from .recipe_validation import (
    SECTIONS,
    Section,
    Validated,
    _base_class,
    _check_class,
    _check_matcher_presence,
    _matcher_section,
    validate,
)
from .registry import Registry
from .strict_yaml import NotYAML, RefusedYAML, YAMLProblem, parse_yaml, read_yaml

if TYPE_CHECKING:  # the component modules import torch: only once a recipe names valid components
    from ..api.components import Evaluator, Matcher, Synthesizer
    from ..api.data import DatasetSource


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A recipe file's mapping, read strictly (``strict_yaml``): every problem is one line naming the file."""
    path = find_recipe(path)  # a file, else a shipped recipe's name
    try:
        doc = read_yaml(path)
    except YAMLProblem as exc:
        raise UserError(f"recipe '{path}' {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read recipe '{path}' ({exc.strerror}); check that it is a readable file") from None
    if not isinstance(doc, dict):
        raise UserError(f"recipe '{path}' must be a mapping with sections {', '.join(SECTIONS)}")
    _require_text_keys(doc, f"recipe '{path}'")
    return doc


def _require_text_keys(value: Any, where: str, prefix: str = "") -> None:
    """Every key of a recipe is text: sections and options are named, and YAML reads ``1:``,
    ``true:`` or ``null:`` as a number, a boolean or nothing, which no option is called."""
    stack: list[tuple[Any, str]] = [(value, prefix)]
    while stack:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            if isinstance(node, dict) and not isinstance(k, str):
                inside = f" in '{path}'" if path else ""
                raise UserError(f"{where}: the key {k!r}{inside} is not text; sections and options are named "
                                "(quote a key YAML would read as a number, true/false or null)")
            stack.append((v, f"{path}.{k}" if path else str(k)))


def apply_overrides(doc: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides (dotted keys, list indices as numbers; values parsed as YAML)."""
    doc = copy.deepcopy(doc)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set '{item}' must look like KEY=VALUE, e.g. --set synthesizer.ipc=10")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if parts[0] not in SECTIONS:
            raise UserError(f"--set '{key}': unknown section '{parts[0]}'{suggest(parts[0], list(SECTIONS))}; sections: {', '.join(SECTIONS)}")
        value = _override_value(key, raw)
        node: Any = doc
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, key, create=not part.isdigit(), next_is_index=parts[i + 1].isdigit())
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise UserError(f"--set '{key}': index {last} is out of range (the list has {len(node)} items)")
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise UserError(f"--set '{key}': '{'.'.join(parts[:-1])}' holds {node!r}, not a section with keys")
    return doc


def _override_value(key: str, raw: str) -> Any:
    """The value of ``--set KEY=RAW``: RAW read as YAML (strictly), or as the text itself when it is no YAML."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # bytes the shell passed through that no recipe.yaml could store
        raise UserError(f"--set '{key}': the value is not UTF-8 text; retype it") from None
    try:
        value = parse_yaml(raw)
    except NotYAML:
        return raw
    except RefusedYAML as exc:
        raise UserError(f"--set '{key}': the value {exc}") from None
    _require_text_keys(value, f"--set '{key}'", key)
    return value


def _child(node: Any, part: str, key: str, create: bool, next_is_index: bool) -> Any:
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise UserError(f"--set '{key}': '{part}' is not an index of a list of {len(node)} items")
        return node[int(part)]
    if not isinstance(node, dict):
        raise UserError(f"--set '{key}': '{part}' is inside a value that is not a section")
    if part not in node or node[part] is None:
        if not create:
            raise UserError(f"--set '{key}': '{part}' does not exist")
        node[part] = [] if next_is_index else {}
    return node[part]


@dataclass
class Plan:
    """A recipe resolved against the registry: components built, options validated."""

    name: str
    seed: int
    data_name: str
    source: DatasetSource
    model: dict[str, Any]
    synthesizer_name: str | None
    synthesizer: Synthesizer | None
    matcher_name: str | None
    matcher: Matcher | None
    evaluators: list[tuple[str, Evaluator]]
    runtime: RuntimeOptions
    resolved: dict[str, Any] = field(default_factory=dict)


def construct(section: Section, base: type | None = None) -> Any:
    """Import the section's component (only now) and build it from its validated options, named as registered."""
    cls = section.info.check()  # a declared options class that is not the component's own: a plugin bug
    _check_class(section.info, cls, base or _base_class(section.kind))
    return section.info.build(section.options)


def build_matcher(registry: Registry, spec: Any, where: str = "matcher") -> tuple[str, Matcher, dict]:
    """``(name, matcher, resolved spec)`` for a ``{name: ..., **options}`` mapping, validated."""
    section = _matcher_section(registry, spec, where)
    return section.name, construct(section), section.resolved


def build(v: Validated, registry: Registry) -> Plan:
    """Import the components of a validated recipe (only now: torch) and build them."""
    source = construct(v.data)
    synthesizer = construct(v.synthesizer) if v.synthesizer is not None else None
    if v.synthesizer is not None and v.uses_matcher is None:
        _check_matcher_presence(registry, v.synthesizer.name, synthesizer.uses_matcher, v.matcher_spec)
    matcher = construct(v.matcher) if v.matcher is not None else None
    evaluators = [(s.name, construct(s)) for s in v.evaluators]
    return Plan(v.name, v.seed, v.data.name, source, v.model, v.synthesizer.name if v.synthesizer else None,
                synthesizer, v.matcher.name if v.matcher else None, matcher, evaluators, v.runtime, v.resolved)


def resolve(doc: dict[str, Any], registry: Registry, needs_synthesizer: bool = True) -> Plan:
    """Validate ``doc`` (every section, before any component is imported) and build every component it names.

    ``needs_synthesizer=False`` resolves a recipe that only states a task (data, model,
    evaluators, runtime), as ``condensery eval`` and ``generate`` use: no placeholder method.
    Nothing is written here; the run directory is touched only once this returned.
    """
    return build(validate(doc, registry, needs_synthesizer), registry)


def load_recipe(path: str | Path, overrides: list[str] | None, registry: Registry) -> Plan:
    return resolve(apply_overrides(load_yaml(path), overrides or []), registry)
