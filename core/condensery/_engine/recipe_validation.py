"""Recipe validation: every section checked against its component's options, no component imported.

``validate`` checks every section against the options classes the components were
registered with, which live in modules without torch, so a bad recipe fails in well under
a second. Reading the YAML, ``--set`` overrides and building the components are
``condensery._engine.recipe``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..api.errors import UserError
from ..api.options import Options, suggest, validate_options
from ..api.runtime_options import RuntimeOptions
from ..models.options import validate_model_spec
from .registry import ComponentInfo, Registry

SECTIONS = ("name", "seed", "data", "model", "synthesizer", "evaluators", "runtime")
REQUIRED = ("name", "data", "synthesizer")


def _section(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise UserError(f"recipe section '{key}' must be a mapping with at least 'name'")
    if "name" not in value or not isinstance(value["name"], str):
        raise UserError(f"recipe section '{key}' needs a 'name' (a text naming the component)")
    return dict(value)


def _base_class(kind: str) -> type:
    from ..api.components import Evaluator, Matcher, Synthesizer
    from ..api.data import DatasetSource

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


@dataclass
class Section:
    """One component's recipe section, validated; the component itself is not imported yet."""

    kind: str
    name: str
    info: ComponentInfo
    options: Options

    @property
    def resolved(self) -> dict[str, Any]:
        return {"name": self.name, **self.options.model_dump(mode="json")}


def _check_class(info: ComponentInfo, cls: Any, base: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise UserError(f"{info.kind} '{info.name}' from {info.source} is not a {base.__name__} subclass; its plugin is broken")


def validate_section(registry: Registry, kind: str, spec: dict[str, Any], where: str) -> Section:
    """``spec`` (``{name, **options}``) validated against its component's options.

    A component registered with its options (``register(..., options="module:Class")``) is
    not imported here, so a bad value fails before torch; one registered without is imported
    to read its ``Options`` (slower, but a plugin need not declare them).
    """
    spec = dict(spec)
    name = spec.pop("name")
    info = registry.get(kind, name)
    if info.options is None:  # the component is imported anyway: check it is one
        _check_class(info, info.obj, _base_class(kind))
    options_cls = info.options_class
    if not (isinstance(options_cls, type) and issubclass(options_cls, BaseModel)):
        raise UserError(f"{kind} '{name}' from {info.source} declares options {options_cls!r}, not a pydantic "
                        "model; its plugin is broken")
    return Section(kind, name, info, validate_options(options_cls, spec, f"{where} '{name}'"))


def _matcher_section(registry: Registry, spec: Any, where: str) -> Section:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise UserError(f"{where} must be a mapping with a 'name'")
    return validate_section(registry, "matcher", spec, where)


def _uses_matcher(section: Section) -> bool | None:
    """Whether the synthesizer takes a matcher, as far as is known without importing it."""
    if section.info.options is None:  # registered without options, so imported already: the class says
        return bool(getattr(section.info.obj, "uses_matcher", False))
    declared = getattr(type(section.options), "uses_matcher", None)  # checked against the class by ``check``
    return None if declared is None else bool(declared)  # None: known once the class is imported


def _check_matcher_presence(registry: Registry, synth_name: str, uses: bool, matcher_spec: Any) -> None:
    if uses and matcher_spec is None:
        raise UserError(f"synthesizer '{synth_name}' needs a 'matcher' section, e.g. matcher: {{name: distribution}}; "
                        f"valid matchers: {', '.join(registry.names('matcher'))}")
    if not uses and matcher_spec is not None:
        raise UserError(f"synthesizer '{synth_name}' takes no matcher; remove synthesizer.matcher")


@dataclass
class Validated:
    """A recipe whose every section is validated, before any component is imported (``validate``)."""

    name: str
    seed: int
    runtime: RuntimeOptions
    data: Section
    model: dict[str, Any]
    synthesizer: Section | None
    #: whether the synthesizer takes its matcher; None: only its class says (checked by ``build``)
    uses_matcher: bool | None
    matcher_spec: Any
    matcher: Section | None
    evaluators: list[Section]

    @property
    def resolved(self) -> dict[str, Any]:
        """The fully resolved recipe (every default written out), as ``recipe.yaml`` stores it."""
        synth: dict[str, Any] | None = None
        if self.synthesizer is not None:
            synth = self.synthesizer.resolved
            if self.matcher is not None:
                synth["matcher"] = self.matcher.resolved
        return {
            "name": self.name, "seed": self.seed, "data": self.data.resolved, "model": self.model,
            **({"synthesizer": synth} if synth is not None else {}),
            "evaluators": [s.resolved for s in self.evaluators],
            "runtime": self.runtime.model_dump(mode="json"),
        }


def validate(doc: dict[str, Any], registry: Registry, needs_synthesizer: bool = True) -> Validated:
    """Validate every section of ``doc``; no component module is imported, nothing is written.

    Sections are checked against the options classes their components were registered with
    (modules without torch), so any mistake -- unknown section, component or option, a bad
    value, a model option -- is one ``UserError`` line at the speed of a YAML parse. Only a
    component registered without its options is imported to read them, and
    only a model name that is not registered needs timm (asked last).
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

    data = validate_section(registry, "dataset", _section(doc, "data"), "data")

    model_raw = doc.get("model") or {"name": "convnet"}
    if not isinstance(model_raw, dict) or not isinstance(model_raw.get("name"), str):
        raise UserError("recipe section 'model' needs a 'name' (a registered model or a timm model name)")
    registered_model = model_raw["name"] in registry.components["model"]
    model = validate_model_spec(registry, model_raw) if registered_model else None

    synth = matcher = None
    uses_matcher: bool | None = None
    matcher_spec: Any = None
    if "synthesizer" in doc:
        synth_spec = _section(doc, "synthesizer")
        matcher_spec = synth_spec.pop("matcher", None)
        synth = validate_section(registry, "synthesizer", synth_spec, "synthesizer")
        uses_matcher = _uses_matcher(synth)
        if uses_matcher is not None:
            _check_matcher_presence(registry, synth.name, uses_matcher, matcher_spec)
        if matcher_spec is not None:
            matcher = _matcher_section(registry, matcher_spec, "synthesizer.matcher")

    ev_specs = doc.get("evaluators", [{"name": "hard-label"}])
    if not isinstance(ev_specs, list):  # [] is a producer recipe: its run ends after the set, with no results
        raise UserError("recipe section 'evaluators' must be a list, e.g. [{name: hard-label}] ([] to judge nothing)")
    evaluators = []
    for i, spec in enumerate(ev_specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise UserError(f"evaluators[{i}] must be a mapping with a 'name'")
        evaluators.append(validate_section(registry, "evaluator", spec, f"evaluators[{i}]"))

    if model is None:  # whether the name is a timm model only timm knows (torch): after every other section
        model = validate_model_spec(registry, model_raw)
    return Validated(name, seed, runtime, data, model, synth, uses_matcher, matcher_spec, matcher, evaluators)
