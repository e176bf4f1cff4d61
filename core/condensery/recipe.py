"""Recipes: YAML + ``--set`` overrides -> a validated, fully resolved plan of a run.

Everything a run will use is validated here, before any data is loaded: unknown section,
unknown component (with the list of valid names), unknown option (with the valid options),
bad value (with the key and why). Every problem is one ``UserError`` line.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import UserError
from .options import suggest, validate_options
from .plugins import Registry
from .runtime_options import RuntimeOptions

if TYPE_CHECKING:  # the component modules import torch: only once a recipe names valid components
    from .components import Evaluator, Matcher, Synthesizer
    from .data.source import DatasetSource

SECTIONS = ("name", "seed", "data", "model", "synthesizer", "evaluators", "runtime")
REQUIRED = ("name", "data", "synthesizer")


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe '{path}' does not exist; give the path to a .yaml recipe (see recipes/)")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"recipe '{path}' is not valid YAML{where}: {problem}") from None
    if not isinstance(doc, dict):
        raise UserError(f"recipe '{path}' must be a mapping with sections {', '.join(SECTIONS)}")
    return doc


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
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node: Any = doc
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, key, create=not part.isdigit(), next_is_index=parts[i + 1].isdigit())
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise UserError(f"--set '{key}': index {last} is out of range (the list has {len(node)} items)")
            node[int(last)] = value
        else:
            node[last] = value
    return doc


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


def _section(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise UserError(f"recipe section '{key}' must be a mapping with at least 'name'")
    if "name" not in value or not isinstance(value["name"], str):
        raise UserError(f"recipe section '{key}' needs a 'name' (a text naming the component)")
    return dict(value)


def _base_class(kind: str) -> type:
    from .components import Evaluator, Matcher, Synthesizer
    from .data.source import DatasetSource

    return {"dataset": DatasetSource, "synthesizer": Synthesizer, "matcher": Matcher, "evaluator": Evaluator}[kind]


def _check_names(doc: dict[str, Any], registry: Registry) -> None:
    """Every component the recipe names exists, checked before any is imported (fast errors)."""
    named: list[tuple[str, Any]] = []
    for key, kind in (("data", "dataset"), ("synthesizer", "synthesizer")):
        if isinstance(doc.get(key), dict):
            named.append((kind, doc[key].get("name")))
    synth = doc.get("synthesizer")
    if isinstance(synth, dict) and isinstance(synth.get("matcher"), dict):
        named.append(("matcher", synth["matcher"].get("name")))
    for spec in doc.get("evaluators") or [] if isinstance(doc.get("evaluators"), list) else []:
        if isinstance(spec, dict):
            named.append(("evaluator", spec.get("name")))
    for kind, name in named:
        if isinstance(name, str):
            registry.get(kind, name)


def _build(registry: Registry, kind: str, spec: dict[str, Any], where: str, base: type | None = None) -> tuple[str, Any, dict]:
    base = base or _base_class(kind)
    name = spec.pop("name")
    info = registry.get(kind, name)
    cls = info.obj
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise UserError(f"{kind} '{name}' from {info.source} is not a {base.__name__} subclass; its plugin is broken")
    options = validate_options(cls.Options, spec, f"{where} '{name}'")
    return name, cls(options), {"name": name, **options.model_dump(mode="json")}


def build_matcher(registry: Registry, spec: Any, where: str = "matcher") -> tuple[str, Matcher, dict]:
    """``(name, matcher, resolved spec)`` for a ``{name: ..., **options}`` mapping, validated."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise UserError(f"{where} must be a mapping with a 'name'")
    return _build(registry, "matcher", dict(spec), where)


def resolve(doc: dict[str, Any], registry: Registry, needs_synthesizer: bool = True) -> Plan:
    """Validate ``doc`` and build every component it names.

    ``needs_synthesizer=False`` resolves a recipe that only states a task (data, model,
    evaluators, runtime), as ``condensery eval`` and ``generate`` use: no placeholder method.
    """
    unknown = [k for k in doc if k not in SECTIONS]
    if unknown:
        k = unknown[0]
        raise UserError(f"unknown recipe section '{k}'{suggest(k, list(SECTIONS))}; valid sections: {', '.join(SECTIONS)}")
    for key in REQUIRED:
        if key not in doc and (needs_synthesizer or key != "synthesizer"):
            raise UserError(f"recipe lacks the required section '{key}'")
    name = doc["name"]
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise UserError("recipe 'name' must be a non-empty text without '/' (it names the run folder)")
    seed = doc.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"recipe 'seed' must be an integer, got {seed!r}")
    if not 0 <= seed < 2**32:
        raise UserError(f"recipe 'seed' must be in 0..{2**32 - 1} (what numpy and torch seed from), got {seed}")

    _check_names(doc, registry)
    rt_raw = doc.get("runtime") or {}
    if not isinstance(rt_raw, dict):
        raise UserError("recipe section 'runtime' must be a mapping")
    runtime = validate_options(RuntimeOptions, rt_raw, "runtime")

    data_name, source, data_resolved = _build(registry, "dataset", _section(doc, "data"), "data")

    model = dict(doc.get("model") or {"name": "convnet"})
    if not isinstance(model.get("name"), str):
        raise UserError("recipe section 'model' needs a 'name' (a registered model or a timm model name)")
    _check_model_name(registry, model["name"])

    synth_name = synthesizer = matcher_name = matcher = None
    synth_resolved: dict[str, Any] | None = None
    if "synthesizer" in doc:
        synth_spec = _section(doc, "synthesizer")
        matcher_spec = synth_spec.pop("matcher", None)
        synth_name, synthesizer, synth_resolved = _build(registry, "synthesizer", synth_spec, "synthesizer")
        if synthesizer.uses_matcher:
            if matcher_spec is None:
                raise UserError(f"synthesizer '{synth_name}' needs a 'matcher' section, e.g. matcher: {{name: distribution}}; valid matchers: {', '.join(registry.names('matcher'))}")
            matcher_name, matcher, m_resolved = build_matcher(registry, matcher_spec, "synthesizer.matcher")
            synth_resolved["matcher"] = m_resolved
        elif matcher_spec is not None:
            raise UserError(f"synthesizer '{synth_name}' takes no matcher; remove synthesizer.matcher")

    ev_specs = doc.get("evaluators", [{"name": "hard-label"}])
    if not isinstance(ev_specs, list) or not ev_specs:
        raise UserError("recipe section 'evaluators' must be a non-empty list, e.g. [{name: hard-label}]")
    evaluators, ev_resolved = [], []
    for i, spec in enumerate(ev_specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise UserError(f"evaluators[{i}] must be a mapping with a 'name'")
        ev_name, ev, resolved = _build(registry, "evaluator", dict(spec), f"evaluators[{i}]")
        evaluators.append((ev_name, ev))
        ev_resolved.append(resolved)

    resolved = {
        "name": name, "seed": seed, "data": data_resolved, "model": model,
        **({"synthesizer": synth_resolved} if synth_resolved is not None else {}), "evaluators": ev_resolved,
        "runtime": runtime.model_dump(mode="json"),
    }
    return Plan(name, seed, data_name, source, model, synth_name, synthesizer, matcher_name, matcher,
                evaluators, runtime, resolved)


def _check_model_name(registry: Registry, name: str) -> None:
    if name in registry.components["model"]:
        return
    import timm

    from .models import convnet  # noqa: F401

    if not timm.is_model(name):
        valid = registry.names("model")
        raise UserError(
            f"unknown model '{name}'{suggest(name, valid)}; use one of {', '.join(valid)} or any timm model name"
        )


def load_recipe(path: str | Path, overrides: list[str] | None, registry: Registry) -> Plan:
    return resolve(apply_overrides(load_yaml(path), overrides or []), registry)
